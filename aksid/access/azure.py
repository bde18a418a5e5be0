"""The Azure side of the access graph: which principals' role assignments let them re-point the DNS identity or
widen its rights (ACCESS-002, `aksid who-can`).

A path is `principal → role at a scope → identity` (or `→ zone`): one role assignment (evidence: the snapshot's
`accessAssignments`, listed with `$filter=atScope()` at the identity's and the zone's resource ids, so every
assignment at them or above them: resource group, subscription, management groups, root) whose role definition
(`roleDefinitions`) allows one of these operations:

- `Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write` on the identity: add a
  federated credential that trusts the caller's own issuer and subject (Owner, Contributor, Managed Identity
  Contributor);
- `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action` on the identity: attach it to compute the caller
  controls and take its token from IMDS there (Managed Identity Operator; Owner, Contributor);
- `Microsoft.Authorization/roleAssignments/write` on the identity: grant anyone any role on it (so all of the above);
- `Microsoft.Authorization/roleAssignments/write` on the zone or above: widen the identity's rights, or take the
  same rights directly (Owner, User Access Administrator, Role Based Access Control Administrator).

Role definitions are evaluated as learn.microsoft.com "Understand Azure role definitions" states: an operation is
allowed when an entry of `actions` matches it and no entry of `notActions` of the same permission does (NotActions
subtract; they are not a deny: another assignment may grant the action back); matching is case-insensitive and `*`
stands for any run of characters (`*`, `*/read`, `Microsoft.Authorization/*`, `Microsoft.Authorization/*/Write`).
A `/*/` in the middle may stand for no segment at all: Managed Identity Operator's
`Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action` is the built-in grant of
`.../userAssignedIdentities/assign/action` (the built-in roles reference: "Read and Assign User Assigned Identity").
`dataActions` never grant a management operation and are not read.

What it cannot see: the members of a group holding an assignment (the group is the principal), PIM-eligible
assignments not activated, deny assignments, and assignment conditions (reported, not evaluated: a condition can
only narrow a path, so a path is never missed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from aksid.arm_ids import MANAGED_IDENTITY_OPERATOR, OWNER, contains, normalise, role_guid, role_name

FEDERATE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
ASSIGN = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
GRANT = "Microsoft.Authorization/roleAssignments/write"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"


@dataclass(frozen=True)
class Capability:
    """One thing a principal can do to the identity: the operation, on what (`identity` or `zone`), what it means."""

    key: str
    operation: str
    on: str
    meaning: str


CAPABILITIES: tuple[Capability, ...] = (
    Capability("federate", FEDERATE, "identity",
               "write federated credentials on the identity (trust its own issuer and subject)"),
    Capability("assign", ASSIGN, "identity", "assign the identity to compute it controls (and take its token there)"),
    Capability("grant-on-identity", GRANT, "identity",
               "write role assignments on the identity (grant itself any of the above)"),
    Capability("grant-on-zone", GRANT, "zone", "write role assignments on the zone (widen the identity's rights)"),
)


@lru_cache(maxsize=512)
def _pattern(action: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in action.split("/*/")]
    middle = "/(?:.*/)?".join(part.replace(r"\*", ".*") for part in parts)
    return re.compile(f"^{middle}$", re.IGNORECASE)


def action_matches(pattern: str, operation: str) -> bool:
    """Whether an `actions`/`notActions` entry covers an operation (case-insensitive, `*` wildcards)."""
    return bool(_pattern(str(pattern)).match(operation))


def granting_action(definition: Mapping[str, Any], operation: str) -> str | None:
    """The `actions` entry of the role definition that allows the operation (not taken back by a `notActions` entry
    of the same permission), or None."""
    for permission in (definition.get("properties") or {}).get("permissions") or []:
        if any(action_matches(p, operation) for p in permission.get("notActions") or []):
            continue
        for pattern in permission.get("actions") or []:
            if action_matches(pattern, operation):
                return str(pattern)
    return None


def at_subscription_or_above(scope: str, subscription_id: str) -> bool:
    """The subscription itself, a management group or the root scope `/`."""
    outer = normalise(scope)
    return (outer == "/" or outer == normalise(f"/subscriptions/{subscription_id}")
            or outer.startswith("/providers/microsoft.management/managementgroups/"))


def _applies(scope: str, resource_id: str) -> bool:
    return contains(scope, resource_id) or normalise(scope).startswith("/providers/microsoft.management/managementgroups/")


@dataclass(frozen=True)
class AzurePath:
    """One principal able to do one thing to the identity, through one role assignment."""

    principal: str  # object id, lower case
    principal_type: str  # User, Group, ServicePrincipal, ForeignGroup, Device
    capability: Capability
    role: str  # the role's name
    role_guid: str
    granted_by: str  # the `actions` entry that allows the operation
    scope: str  # where the role is assigned
    target: str  # the identity's or the zone's id
    target_name: str
    assignment_id: str
    definition_id: str
    condition: str | None = None
    allowed: str | None = field(default=None, compare=False)  # why it is allowed, when it is

    @property
    def key(self) -> tuple[str, str, str]:
        """(principal, capability, scope): what a scenario's expectation compares."""
        return (self.principal, self.capability.key, normalise(self.scope))

    def edges(self) -> list[dict[str, str]]:
        """The path's edges, each with its evidence (snapshot source and field)."""
        edges = [
            {"from": f"{self.principal_type} {self.principal}", "to": f"{self.role} at {self.scope}",
             "edge": "holds", "evidence": f"arm accessAssignments {self.assignment_id}",
             "fields": "properties.principalId, properties.roleDefinitionId, properties.scope"},
            {"from": f"{self.role} at {self.scope}", "to": self.capability.operation,
             "edge": f"allows (actions entry {self.granted_by!r})", "evidence": f"arm roleDefinitions {self.definition_id}",
             "fields": "properties.permissions"},
            {"from": self.capability.operation, "to": f"{self.capability.on} {self.target_name}",
             "edge": "applies to (the scope is it or above it)", "evidence": f"arm accessAssignments {self.assignment_id}",
             "fields": "properties.scope"},
        ]
        if self.condition:
            edges[0]["condition"] = self.condition
        return edges

    def describe(self) -> str:
        return (f"{self.principal_type or 'principal'} {self.principal} can {self.capability.meaning}: {self.role} at "
                f"{self.scope} (assignment {self.assignment_id.rsplit('/', 1)[-1]})"
                + (f", under the condition {self.condition!r}" if self.condition else ""))


class UnknownRole(LookupError):
    """An assignment's role definition is not in the snapshot: what it allows cannot be told."""


def control_plane_principals(cluster: Mapping[str, Any] | None) -> set[str]:
    """The managed cluster's own identity: system-assigned principalId, or its user-assigned identities'."""
    identity = (cluster or {}).get("identity") or {}
    user_assigned = (identity.get("userAssignedIdentities") or {}).values()
    return {str(p).lower() for p in [identity.get("principalId"), *(v.get("principalId") for v in user_assigned)] if p}


def default_allowance(path: AzurePath, subscription_id: str, control_plane: set[str]) -> str | None:
    """Why a path is allowed without being listed in access_allowed, or None."""
    if path.role_guid in (OWNER, USER_ACCESS_ADMINISTRATOR) and at_subscription_or_above(path.scope, subscription_id):
        return f"{path.role} at subscription scope or above"
    if path.role_guid == MANAGED_IDENTITY_OPERATOR and path.principal in control_plane:
        return "the cluster control plane's Managed Identity Operator"
    return None


def azure_paths(assignments: Iterable[Mapping[str, Any]], definitions: Iterable[Mapping[str, Any]],
                identity: Mapping[str, Any], zone_id: str, *, subscription_id: str = "",
                control_plane: set[str] | None = None, allowed_ids: set[str] | None = None) -> list[AzurePath]:
    """Every (principal, capability, assignment) path to the identity, in a stable order; each path's `allowed` says
    why it is allowed (defaults, then access_allowed's Azure principal ids), None when it is not. Raises UnknownRole
    for an assignment at the identity or zone whose role definition the snapshot does not hold."""
    by_guid = {role_guid(str(d.get("id", ""))): d for d in definitions}
    identity_id = str(identity.get("id", ""))
    targets = {"identity": (identity_id, str(identity.get("name") or identity_id)),
               "zone": (zone_id, zone_id.rstrip("/").rsplit("/", 1)[-1])}
    paths: list[AzurePath] = []
    for assignment in assignments:
        props = assignment.get("properties") or {}
        scope, guid = str(props.get("scope") or ""), role_guid(str(props.get("roleDefinitionId") or ""))
        reaches = [c for c in CAPABILITIES if targets[c.on][0] and _applies(scope, targets[c.on][0])]
        if not reaches:
            continue
        definition = by_guid.get(guid)
        if definition is None:
            raise UnknownRole(f"role definition {props.get('roleDefinitionId')} of assignment {assignment.get('id')} "
                              "was not read")
        for capability in reaches:
            granted_by = granting_action(definition, capability.operation)
            if granted_by is None:
                continue
            path = AzurePath(
                principal=str(props.get("principalId") or "").lower(), principal_type=str(props.get("principalType") or ""),
                capability=capability, role=role_name(guid, [definition]), role_guid=guid, granted_by=granted_by,
                scope=scope, target=targets[capability.on][0], target_name=targets[capability.on][1],
                assignment_id=str(assignment.get("id", "")), definition_id=str(definition.get("id", "")),
                condition=props.get("condition") or None)
            reason = default_allowance(path, subscription_id, control_plane or set())
            if reason is None and path.principal in (allowed_ids or set()):
                reason = "listed in access_allowed"
            paths.append(replace(path, allowed=reason))
    order = {c.key: i for i, c in enumerate(CAPABILITIES)}
    return sorted(paths, key=lambda p: (p.principal, order[p.capability.key], -len(normalise(p.scope)), p.assignment_id))


def shortest(paths: Iterable[AzurePath]) -> dict[str, AzurePath]:
    """{principal: its most direct path}: every Azure path has two edges, so the most direct is the one acting on the
    identity itself (federate, then assign, then grant), then the narrowest scope (azure_paths' order)."""
    found: dict[str, AzurePath] = {}
    for path in paths:
        found.setdefault(path.principal, path)
    return found
