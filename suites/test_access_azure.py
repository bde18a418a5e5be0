"""ACCESS-002: the Azure principals who can re-point the DNS identity or widen its rights are within what is allowed.

The paths are aksid/access/azure.py's: a role assignment at the identity or the zone, or above them, whose role
allows writing federated credentials on the identity, assigning it to compute, or writing role assignments on the
identity or the zone. Allowed by default (issue #26): Owner and User Access Administrator at subscription scope or
above; the cluster control plane's Managed Identity Operator (`az aks pod-identity add` grants it on the identity).
Anyone else is named in access_allowed (`azure:<object id>`).
"""

from __future__ import annotations

from typing import Any

from aksid.access.azure import AzurePath, UnknownRole, azure_paths, control_plane_principals
from aksid.arm_ids import role_guid
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.modes import LIVE_MODES
from aksid.snapshot import EvidenceUnavailable, Snapshot


def dns_identity(snapshot: Snapshot, target: Target) -> dict[str, dict[str, Any]]:
    """The identity named IDENTITY_NAME (the tutorial's `${AZ_DNS_DOMAIN/./-}-identity`)."""
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    return {f"identity/{identity['name']}": identity}


def paths_to(snapshot: Snapshot, target: Target, identity: dict[str, Any]) -> list[AzurePath]:
    """Every Azure path to the identity, each marked allowed (and why) or not. Raises EvidenceUnavailable when a role
    definition a path hangs on was not read."""
    try:
        return azure_paths(
            snapshot.azure.access_assignments(), snapshot.azure.role_definitions(), identity, target.zone_id,
            subscription_id=target.subscription_id,
            control_plane=control_plane_principals(snapshot.azure.managed_cluster()),
            allowed_ids=target.allowed_access()["azure"])
    except UnknownRole as exc:
        raise EvidenceUnavailable(f"what the assignments allow cannot be told: {exc}") from exc


@check(
    "ACCESS-002", "only allowed Azure principals can re-point the DNS identity or widen its rights", "high",
    remediation="Remove the role assignment (`az role assignment delete --ids <assignment id>`), or narrow it to a "
                "role without the operation; allow a principal on purpose with --aksid-set "
                "access_allowed=azure:<object id>.",
    subjects=dns_identity,
    modes=LIVE_MODES,  # who else holds roles in the tenant is not in a repository's files
    reads=("azure:accessAssignments", "azure:roleDefinitions", "azure:identities", "azure:managedCluster"),
    groups=("azure:accessAssignments",),
)
def test_only_allowed_principals_can_repoint_identity(subject: dict[str, Any], snapshot: Snapshot, target: Target,
                                                      evidence: Evidence) -> None:
    """Whoever can add a federated credential to the DNS identity can exchange their own tokens for it; whoever can
    assign it to compute takes its token from IMDS there; whoever can write role assignments on it or on the zone can
    do either, or widen its rights over the zone. None of it shows in the cluster: RBAC-* and WI-* judge the rights
    the identity holds and the credentials it has, not who may change them tomorrow."""
    evidence.arm("identities", subject, "id", "name")
    evidence.target(target, "zone_id", "access_allowed")
    evidence.arm_count("accessAssignments", snapshot.azure.access_assignments())
    paths = paths_to(snapshot, target, subject)
    definitions = {role_guid(str(d.get("id", ""))): d for d in snapshot.azure.role_definitions()}
    by_id = {str(a.get("id")): a for a in snapshot.azure.access_assignments()}
    for assignment_id, guid in dict.fromkeys((path.assignment_id, path.role_guid) for path in paths):
        evidence.arm("accessAssignments", by_id[assignment_id], "properties.principalId",
                     "properties.roleDefinitionId", "properties.scope")
        evidence.arm("roleDefinitions", definitions[guid], "properties.roleName")
    if any(path.principal in control_plane_principals(snapshot.azure.managed_cluster()) for path in paths):
        evidence.arm("managedCluster", snapshot.azure.managed_cluster() or {}, "identity.principalId")
    extra = [path for path in paths if path.allowed is None]
    assignments = sorted({path.assignment_id for path in extra})
    if assignments:
        evidence.fix("az role assignment delete --ids " + " ".join(assignments))
    assert not extra, (
        f"{len({p.principal for p in extra})} Azure principal(s) beyond the allowed ones can re-point identity "
        f"{subject['name']} or widen its rights: {'; '.join(path.describe() for path in extra)}")
