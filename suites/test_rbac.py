"""RBAC: who can act on the zone — exactly the DNS identity, with exactly DNS Zone Contributor on it."""

from __future__ import annotations

from typing import Any

import pytest

from aksid import facts
from aksid.arm_ids import (
    DNS_ZONE_CONTRIBUTOR,
    MANAGED_IDENTITY_OPERATOR,
    can_write_dns,
    contains,
    normalise,
    role_guid,
    role_name,
    same_id,
)
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.external_dns import is_external_dns
from aksid.identity_models import POD_IDENTITY
from aksid.modes import LIVE_MODES
from aksid.redact import looks_secret
from aksid.snapshot import EvidenceUnavailable, Snapshot, not_resolvable, placeholder

CERT_MANAGER = "cert-manager.io/v1"


def _role(assignment: dict[str, Any]) -> str:
    return role_guid(assignment["properties"]["roleDefinitionId"])


def _scope(assignment: dict[str, Any]) -> str:
    return assignment["properties"]["scope"]


# -- what a plan or template leaves unknown (static mode), judged on what is known -------------------

def _role_known(assignment: dict[str, Any]) -> bool:
    return not placeholder(assignment["properties"].get("roleDefinitionId"))


def _scope_known(assignment: dict[str, Any]) -> bool:
    return not placeholder(_scope(assignment))


def _of_anyone(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Assignments whose principal the files do not let anyone work out: they may be any identity's."""
    return [a for a in snapshot.azure.role_assignments() if not_resolvable((a.get("properties") or {}).get("principalId"))]


def _may_write_dns(snapshot: Snapshot, assignment: dict[str, Any]) -> bool:
    if not _role_known(assignment):
        return True
    definitions = {role_guid(d.get("id", "")): d for d in snapshot.azure.role_definitions()}
    return can_write_dns(_role(assignment), definitions.get(_role(assignment)))


def _undecided(snapshot: Snapshot, question: str, assignments: list[dict[str, Any]]) -> EvidenceUnavailable:
    """The error for a verdict that hangs on values the files leave open, naming where each is declared."""
    sources = snapshot.document.get("sources") or {}
    parts = []
    for assignment in assignments:
        props = assignment.get("properties") or {}
        place = sources.get(str(assignment.get("id", "")).lower()) or {}
        open_values = [f"{what} {value}" for what, value in (("scope", props.get("scope")),
                                                              ("role", props.get("roleDefinitionId")),
                                                              ("principal", props.get("principalId")))
                       if placeholder(value)]
        parts.append(f"{place.get('address') or assignment.get('id')} ({'; '.join(open_values)})")
    return EvidenceUnavailable(f"{question} depends on {', '.join(parts)}, which the files leave unknown until apply")


def _describe(snapshot: Snapshot, assignment: dict[str, Any]) -> str:
    """Role, scope and the assignment's name: what `az role assignment delete --ids` needs."""
    props = assignment.get("properties") or {}
    name = assignment.get("name") or str(assignment.get("id", "")).rsplit("/", 1)[-1]
    return f"{role_name(_role(assignment), snapshot.azure.role_definitions())} at {props.get('scope')} (assignment {name})"


def _assignment_evidence(evidence: Evidence, assignments: list[dict[str, Any]]) -> None:
    for assignment in assignments:
        evidence.arm("roleAssignments", assignment, "properties.principalId", "properties.roleDefinitionId",
                     "properties.scope")


def _delete(snapshot: Snapshot, assignments: list[dict[str, Any]]) -> str:
    """The command that deletes the assignments; in static mode, the plan's resources that declare them."""
    sources = snapshot.document.get("sources") or {}
    declared = [sources.get(str(a.get("id", "")).lower()) for a in assignments]
    if assignments and all(place and place.get("address") for place in declared):
        return "; ".join(f"remove {place['address']} ({place['file']}:{place.get('line')})"
                         for place in declared if place)
    return "az role assignment delete --ids " + " ".join(str(a.get("id")) for a in assignments)


def dns_identities(snapshot: Snapshot, target: Target) -> dict[str, dict[str, Any]]:
    """The identity named IDENTITY_NAME (the tutorial's `${AZ_DNS_DOMAIN/./-}-identity`)."""
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    return {f"identity/{identity['name']}": identity}


# -- RBAC-001 -----------------------------------------------------------------------------------

@check(
    "RBAC-001", "the DNS identity holds DNS Zone Contributor scoped to the zone", "high",
    remediation="az role assignment create --assignee-object-id <principalId> --assignee-principal-type "
                "ServicePrincipal --role 'DNS Zone Contributor' --scope <zone id>",
    subjects=dns_identities,
    reads=("azure:roleAssignments", "azure:identities", "azure:roleDefinitions"),
    link=("identity → role", "role → zone"),
)
def test_dns_identity_is_zone_contributor(subject: dict[str, Any], snapshot: Snapshot, target: Target,
                                          evidence: Evidence) -> None:
    principal = (subject.get("properties") or {}).get("principalId")
    evidence.arm("identities", subject, "name", "properties.principalId")
    evidence.target(target, "zone_id")
    _assignment_evidence(evidence, facts.role_assignments(snapshot, principal))
    evidence.arm_count("roleAssignments", snapshot.azure.role_assignments())
    evidence.fix(f"az role assignment create --assignee-object-id {principal} --assignee-principal-type "
                 f"ServicePrincipal --role 'DNS Zone Contributor' --scope {target.zone_id}")
    on_zone = [
        a for a in facts.role_assignments(snapshot, principal)
        if _role(a) == DNS_ZONE_CONTRIBUTOR and same_id(_scope(a), target.zone_id)
    ]
    held = ", ".join(_describe(snapshot, a) for a in facts.role_assignments(snapshot, principal)) or "no role at all"
    open_ = [a for a in facts.role_assignments(snapshot, principal) + _of_anyone(snapshot)
             if (not _role_known(a) or _role(a) == DNS_ZONE_CONTRIBUTOR)
             and (not _scope_known(a) or same_id(_scope(a), target.zone_id))
             and not (_role_known(a) and _scope_known(a))]
    if not on_zone and open_:
        raise _undecided(snapshot, f"whether identity {subject['name']} holds DNS Zone Contributor on the zone", open_)
    assert on_zone, (
        f"identity {subject['name']} (principal {principal}) does not hold DNS Zone Contributor on {target.zone_id}; "
        f"it holds {held}: cert-manager and external-dns cannot write the zone")


# -- RBAC-002 -----------------------------------------------------------------------------------

def _allowances(target: Target) -> list[tuple[str, str]]:
    """(role GUID or name, scope id) pairs the DNS identity may hold: DNS Zone Contributor on the zone, rbac_allowed."""
    return [(DNS_ZONE_CONTRIBUTOR, target.zone_id), *target.allowed_roles()]


def _allowed(snapshot: Snapshot, target: Target, assignment: dict[str, Any]) -> bool | None:
    """Whether an allowance covers the assignment; None when that hangs on a value the files leave unknown (a role
    no allowance names is a finding at any scope, and a scope no allowance names is one for any role)."""
    guid = _role(assignment)
    name = role_name(guid, snapshot.azure.role_definitions()).lower()
    role_fits = [scope for role, scope in _allowances(target) if not _role_known(assignment) or role.lower() in (guid, name)]
    scope_fits = [scope for scope in role_fits if not _scope_known(assignment) or same_id(_scope(assignment), scope)]
    if not scope_fits:
        return False
    return True if _role_known(assignment) and _scope_known(assignment) else None


@check(
    "RBAC-002", "the DNS identity holds no other role, at no other scope", "critical",
    remediation="Remove the extra assignments (`az role assignment delete --ids <id>`); the identity needs DNS Zone "
                "Contributor on the zone only (allow more with --aksid-set rbac_allowed=ROLE@SCOPE).",
    subjects=dns_identities,
    reads=("azure:roleAssignments", "azure:identities", "azure:roleDefinitions"),
    link="identity → role",
    groups=("azure:roleAssignments",),
)
def test_dns_identity_holds_nothing_else(subject: dict[str, Any], snapshot: Snapshot, target: Target,
                                         evidence: Evidence) -> None:
    principal = (subject.get("properties") or {}).get("principalId")
    evidence.arm("identities", subject, "name", "properties.principalId")
    evidence.target(target, "zone_id", "rbac_allowed")
    _assignment_evidence(evidence, facts.role_assignments(snapshot, principal))
    extra = [a for a in facts.role_assignments(snapshot, principal) if _allowed(snapshot, target, a) is False]
    evidence.fix(_delete(snapshot, extra))
    open_ = [a for a in facts.role_assignments(snapshot, principal) if _allowed(snapshot, target, a) is None]
    open_ += [a for a in _of_anyone(snapshot) if _allowed(snapshot, target, a) is not True and _may_write_dns(snapshot, a)]
    if open_ and not extra:
        raise _undecided(snapshot, f"whether identity {subject['name']} holds only what is allowed", open_)
    assert not extra, (
        f"identity {subject['name']} also holds {'; '.join(_describe(snapshot, a) for a in extra)}: every pod bound "
        "to it can use that too")


# -- RBAC-003 -----------------------------------------------------------------------------------

def kubelet_identity(snapshot: Snapshot, target: Target) -> dict[str, dict[str, Any]]:
    cluster = snapshot.azure.managed_cluster() or {}
    kubelet = ((cluster.get("properties") or {}).get("identityProfile") or {}).get("kubeletidentity")
    if not kubelet or not kubelet.get("objectId"):
        raise NotApplicable(f"cluster {target.cluster_name} has no kubelet managed identity")
    resource_id = str(kubelet.get("resourceId") or "")
    # named by the identity; in static mode an id the files leave open (an ARM expression, "known after apply") is no
    # name, so the cluster's names it (its last `/` segment was a piece of the expression)
    name = target.cluster_name if placeholder(resource_id) or "/" not in resource_id else resource_id.rsplit("/", 1)[-1]
    return {f"kubelet/{name}": kubelet}


@check(
    "RBAC-003", "the kubelet (node pool) identity holds no right to write the zone", "critical",
    remediation="Remove the assignment (`az role assignment delete --ids <id>`): every pod on the node pool can "
                "take the kubelet identity through IMDS, so the zone would be writable by all of them.",
    subjects=kubelet_identity,
    reads=("azure:roleAssignments", "azure:managedCluster", "azure:roleDefinitions"),
    link="kubelet identity → zone",  # its own principal, drawn beside the DNS identity's chain
)
def test_kubelet_cannot_write_zone(subject: dict[str, Any], snapshot: Snapshot, target: Target,
                                   evidence: Evidence) -> None:
    cluster = snapshot.azure.managed_cluster() or {}
    evidence.arm("managedCluster", cluster, "properties.identityProfile.kubeletidentity.objectId")
    evidence.target(target, "zone_id")
    definitions = {role_guid(d.get("id", "")): d for d in snapshot.azure.role_definitions()}
    held = facts.role_assignments(snapshot, subject["objectId"])
    _assignment_evidence(evidence, held)
    for assignment in held:
        if contains(_scope(assignment), target.zone_id) and definitions.get(_role(assignment)):
            evidence.arm("roleDefinitions", definitions[_role(assignment)], "properties.roleName",
                         "properties.permissions")
    writers = [a for a in held if _scope_known(a) and _role_known(a) and contains(_scope(a), target.zone_id)
               and can_write_dns(_role(a), definitions.get(_role(a)))]
    evidence.fix(_delete(snapshot, writers))
    open_ = [a for a in held + _of_anyone(snapshot) if not (_scope_known(a) and _role_known(a))
             and (not _scope_known(a) or contains(_scope(a), target.zone_id)) and _may_write_dns(snapshot, a)]
    if open_ and not writers:
        raise _undecided(snapshot, "whether the kubelet identity can write the zone", open_)
    assert not writers, (
        f"the kubelet identity (object {subject['objectId']}) can write zone {target.domain} through "
        f"{'; '.join(_describe(snapshot, a) for a in writers)}: any pod on the nodes can change the zone")


# -- RBAC-004 -----------------------------------------------------------------------------------

def dns_clients(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, dict[str, Any]]]:
    """Everything configured to reach Azure DNS: issuers' azureDNS solvers, external-dns and its azure.json."""
    subjects: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind in ("ClusterIssuer", "Issuer"):
        for issuer in snapshot.kube.list(CERT_MANAGER, kind):
            solvers = ((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or []
            if any("azureDNS" in (solver.get("dns01") or {}) for solver in solvers):
                ns = issuer["metadata"].get("namespace")
                subjects[f"{kind.lower()}/{ns + '/' if ns else ''}{issuer['metadata']['name']}"] = ("issuer", issuer)
    for deployment in snapshot.kube.deployments():
        if not is_external_dns(deployment):
            continue
        ns, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        subjects[f"deployment/{ns}/{name}"] = ("deployment", deployment)
        for volume in deployment["spec"]["template"]["spec"].get("volumes") or []:
            secret_name = (volume.get("secret") or {}).get("secretName")
            if secret_name:
                subjects[f"secret/{ns}/{secret_name}"] = ("secret", {"namespace": ns, "name": secret_name})
    if not subjects:
        raise NotApplicable("no azureDNS solver and no external-dns deployment found")
    return subjects


def _secret_settings(container: dict[str, Any]) -> list[str]:
    found = [e["name"] for e in container.get("env") or [] if e.get("name") in ("AZURE_CLIENT_SECRET", "aadClientSecret")]
    for arg in container.get("args") or []:
        if arg.startswith("--azure-client-secret") or "aadClientSecret" in arg:
            found.append(arg.split("=", 1)[0])
    return found


@check(
    "RBAC-004", "no client secret is used for DNS access", "high",
    remediation="Use the managed identity: drop clientSecretSecretRef/clientID/tenantID from the azureDNS solver "
                "(or use managedIdentity.clientID), set useManagedIdentityExtension: true and remove aadClientSecret "
                "from external-dns' azure.json, then delete the service principal's secret.",
    subjects=dns_clients,
    reads=("kube:ClusterIssuer", "kube:Issuer", "kube:Deployment", "kube:Secret"),
    link="identity → role",
)
def test_no_client_secret(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, evidence: Evidence) -> None:
    kind, obj = subject
    if kind == "issuer":
        for index, solver in enumerate(obj["spec"]["acme"]["solvers"]):
            if "azureDNS" in (solver.get("dns01") or {}):
                evidence.kube(obj, f"spec.acme.solvers[{index}].dns01.azureDNS.clientSecretSecretRef",
                              f"spec.acme.solvers[{index}].dns01.azureDNS.managedIdentity")
        evidence.fix(f"kubectl edit {obj['kind'].lower()} {obj['metadata']['name']}: remove clientSecretSecretRef, "
                     "clientID and tenantID from its azureDNS solver (managedIdentity is used instead), then delete "
                     "the service principal's secret")
        secret_solvers = [
            s["dns01"]["azureDNS"] for s in obj["spec"]["acme"]["solvers"]
            if "clientSecretSecretRef" in ((s.get("dns01") or {}).get("azureDNS") or {})
        ]
        assert not secret_solvers, (
            f"{obj['kind']} {obj['metadata']['name']} authenticates to Azure DNS with a client secret "
            f"(secret {secret_solvers[0]['clientSecretSecretRef'].get('name')}, client {secret_solvers[0].get('clientID')})")
    elif kind == "deployment":
        for index, container in enumerate(obj["spec"]["template"]["spec"].get("containers", [])):
            evidence.kube(obj, f"spec.template.spec.containers[{index}].args",
                          *(f"spec.template.spec.containers[{index}].env[{e}].name"
                            for e, _ in enumerate(container.get("env") or [])))
        evidence.fix(f"kubectl -n {obj['metadata'].get('namespace')} edit deployment {obj['metadata']['name']}: "
                     "remove AZURE_CLIENT_SECRET / --azure-client-secret and use the managed identity")
        found = [f"{c['name']}: {s}" for c in obj["spec"]["template"]["spec"].get("containers", []) for s in _secret_settings(c)]
        assert not found, f"deployment {obj['metadata']['name']} passes a client secret ({', '.join(found)})"
    else:
        secret = snapshot.kube.get("v1", "Secret", obj["namespace"], obj["name"])
        evidence.kube_count("v1/Secret", snapshot.kube.list("v1", "Secret", obj["namespace"]), obj["namespace"],
                            note=f"looked for {obj['name']}")
        if secret is None and snapshot.document.get("mode") == "static":
            # repositories do not hold Secrets: external-dns' tutorial makes azure.json with `kubectl create secret`
            pytest.skip(f"Secret {obj['namespace']}/{obj['name']} mounted by external-dns is not in the files (created "
                        "outside the repository); its azure.json can only be judged live, with --aksid-read-secrets")
        assert secret is not None, f"Secret {obj['namespace']}/{obj['name']} mounted by external-dns does not exist"
        for key, value in (secret.get("data") or {}).items():
            settings = value.get("redactedJson") if isinstance(value, dict) else None
            if settings is None:
                continue
            evidence.kube(secret, f'data["{key}"].redactedJson')
            evidence.fix(f"set useManagedIdentityExtension: true and remove aadClientSecret from {key} of Secret "
                         f"{obj['namespace']}/{obj['name']}, then delete the service principal's secret")
            secrets = [k for k, v in settings.items() if looks_secret(k) and v not in ("", None)]
            assert not secrets, (
                f"Secret {obj['namespace']}/{obj['name']} key {key} sets {', '.join(secrets)}: external-dns "
                "authenticates with a service principal secret")


# -- RBAC-005 -----------------------------------------------------------------------------------

def control_plane(snapshot: Snapshot, target: Target) -> dict[str, dict[str, Any]]:
    cluster = snapshot.azure.managed_cluster()
    if not cluster:
        raise NotApplicable(f"managed cluster {target.cluster_name} not found")
    identity = cluster.get("identity") or {}
    user_assigned = (identity.get("userAssignedIdentities") or {}).values()
    principals = [p for p in [identity.get("principalId"), *(v.get("principalId") for v in user_assigned)] if p]
    if not principals:
        raise NotApplicable(f"cluster {target.cluster_name} uses a service principal, not a managed identity")
    return {f"controlplane/{target.cluster_name}": {"principals": principals}}


@check(
    "RBAC-005", "the control plane holds Managed Identity Operator on the DNS identity, and nowhere broader", "medium",
    remediation="az role assignment create --assignee-object-id <control plane principal> --role 'Managed Identity "
                "Operator' --scope <DNS identity id>; remove Managed Identity Operator at resource-group or "
                "subscription scope.",
    subjects=control_plane,
    modes=LIVE_MODES,
    model=POD_IDENTITY,  # the add-on assigns the identity to the node pool; workload identity needs no such right
    reads=("azure:roleAssignments", "azure:managedCluster", "azure:identities"),
    link="binding → identity",
)
def test_control_plane_operates_only_identities(subject: dict[str, Any], snapshot: Snapshot, target: Target,
                                                evidence: Evidence) -> None:
    cluster = snapshot.azure.managed_cluster() or {}
    evidence.arm("managedCluster", cluster, "identity.principalId", "identity.userAssignedIdentities")
    operator = [
        a for p in subject["principals"] for a in facts.role_assignments(snapshot, p)
        if _role(a) == MANAGED_IDENTITY_OPERATOR
    ]
    _assignment_evidence(evidence, operator)
    dns_identity = snapshot.azure.identity_named(target.identity_name)
    if dns_identity is not None:
        evidence.arm("identities", dns_identity, "id")
        evidence.fix(f"az role assignment create --assignee-object-id {subject['principals'][0]} --role 'Managed "
                     f"Identity Operator' --scope {dns_identity['id']}")
        assert any(same_id(_scope(a), dns_identity["id"]) for a in operator), (
            f"the control plane of {target.cluster_name} does not hold Managed Identity Operator on {dns_identity['id']}: "
            "the add-on cannot assign the DNS identity to the node pool")
    broad = [a for a in operator if "/providers/microsoft.managedidentity/userassignedidentities/" not in normalise(_scope(a))]
    evidence.fix(_delete(snapshot, broad))
    assert not broad, (
        f"the control plane holds Managed Identity Operator at {', '.join(_scope(a) for a in broad)}: it can "
        "assign every identity there to the node pool")
