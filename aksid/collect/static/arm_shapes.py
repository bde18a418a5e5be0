"""ARM resources as the live collector stores them (REST shape), built from what a plan or template declares.

Values unknown until apply (a principal id) become a stable placeholder naming where they come from, so a
reference to the same attribute compares equal to it, as the applied values will."""

from __future__ import annotations

import uuid
from typing import Any

from aksid.arm_ids import BUILTIN_NAMES, MORE_BUILTIN_NAMES
from aksid.snapshot import NOT_RESOLVABLE, UNKNOWN_UNTIL_APPLY, placeholder

ROLE_BY_NAME = {name.lower(): guid for guid, name in {**BUILTIN_NAMES, **MORE_BUILTIN_NAMES}.items()}
# Static mode's note on a resource: what the files leave open about it, `{"podIdentityProfile": why}` (a property that
# is absent from the resource only because the files cannot say, not because it is off).
NOT_DECLARED = "aksidNotDeclared"
# ... and the `sources` key (after the cluster's lowercase id) of where a plan declares the cluster's podIdentityProfile
# when that is another resource than the cluster (an azapi_update_resource body)
PROFILE_SOURCE = "#podIdentityProfile"


def left_open(resource: Any, prop: str) -> str | None:
    """Why the files leave `prop` of a resource open (static mode's NOT_DECLARED note), or None: declared, or not a
    static resource at all. A property present in `properties` is declared whatever the note says."""
    if not isinstance(resource, dict) or prop in (resource.get("properties") or {}):
        return None
    why = (resource.get(NOT_DECLARED) or {}).get(prop)
    return str(why) if why else None


_ASSIGNMENT_NAMESPACE = uuid.UUID("0b1e5f8a-6c2d-4e3f-9a7b-5d4c3b2a1f0e")


def unknown(where: str) -> str:
    return f"{UNKNOWN_UNTIL_APPLY}: {where})"


def unresolved(what: str, source: str = "plan") -> str:
    """An expression aksid cannot evaluate from the file: `(not resolvable from the plan: ADDRESS.attr = local.x)`."""
    return f"{NOT_RESOLVABLE} {source}: {what})"


def is_placeholder(value: Any) -> bool:
    return placeholder(value)


def identity(resource_id: str, name: str, principal: str, client: str, tenant: str | None) -> dict[str, Any]:
    return {"id": resource_id, "name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "properties": {"principalId": principal, "clientId": client, "tenantId": tenant}}


def zone(resource_id: str, name: str) -> dict[str, Any]:
    return {"id": resource_id, "name": name, "type": "Microsoft.Network/dnszones", "properties": {"nameServers": []}}


def role_definition_id(subscription: str, role: str) -> str:
    """A GUID, a full definition id or a built-in role's name."""
    if "/" in role:
        return role
    guid = ROLE_BY_NAME.get(role.lower(), role)
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def role_assignment(source: str, scope: str, definition_id: str, principal: str) -> dict[str, Any]:
    """`source` (a Terraform address or template resource) makes the assignment's name stable across runs."""
    name = str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, source))
    return {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"scope": scope, "roleDefinitionId": definition_id, "principalId": principal,
                           "principalType": "ServicePrincipal"}}


def builtin_definitions(subscription: str) -> list[dict[str, Any]]:
    """The built-in roles the checks name (a plan never declares them; ARM always has them)."""
    return [{"id": role_definition_id(subscription, guid), "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
             "properties": {"roleName": name, "type": "BuiltInRole", "permissions": []}}
            for guid, name in BUILTIN_NAMES.items()]
