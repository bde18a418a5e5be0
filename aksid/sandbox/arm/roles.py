"""Microsoft.Authorization below any scope: role definitions and role assignments, with ARM's semantics.

Role definitions are tenant-global: one is found by its GUID whatever scope the path names. Role assignments are
listed at a scope with those above it (inherited) and, unless `atScope()` asks otherwise, those below it.
"""

from __future__ import annotations

from aksid.sandbox.arm.filters import AssignmentFilter, assignment_filter, definition_filter
from aksid.sandbox.arm.ids import Key, id_key, is_at_or_above, last_providers
from aksid.sandbox.arm.index import Index, Stored
from aksid.sandbox.arm.paging import paged
from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse

AUTHORIZATION_NS = "microsoft.authorization"
ROLE_ASSIGNMENTS = "roleassignments"
ROLE_DEFINITIONS = "roledefinitions"
_ROLE_DEFINITION_TYPE = f"{AUTHORIZATION_NS}/{ROLE_DEFINITIONS}"
_ROLE_ASSIGNMENT_TYPE = f"{AUTHORIZATION_NS}/{ROLE_ASSIGNMENTS}"


def authorization_route(key: Key) -> tuple[int, str] | None:
    """(index of `providers`, kind) when the path is Microsoft.Authorization's, below any scope."""
    providers = last_providers(key)
    if providers is None or len(key) - providers not in (3, 4) or key[providers + 1] != AUTHORIZATION_NS:
        return None
    kind = key[providers + 2]
    return (providers, kind) if kind in (ROLE_ASSIGNMENTS, ROLE_DEFINITIONS) else None


def role_definitions(index: Index, request: ArmRequest, providers: int, page_size: int) -> ArmResponse:
    definitions = index.of_type(_ROLE_DEFINITION_TYPE)
    if len(request.key) == providers + 4:
        # Role definitions are tenant-global: the GUID alone identifies one, whatever the scope asked.
        wanted = request.key[-1]
        for item in definitions:
            if item.key[-1] == wanted:
                return ArmResponse(200, item.raw)
        raise ArmError(
            404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{request.segments[-1]}' does not exist."
        )
    keep = definition_filter(request.param("$filter"))
    return paged(request, [item.raw for item in definitions if keep(item.raw)], page_size)


def role_assignments(index: Index, request: ArmRequest, providers: int, page_size: int) -> ArmResponse:
    if len(request.key) == providers + 4:
        if request.key in index.by_key:
            return ArmResponse(200, index.by_key[request.key].raw)
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{request.segments[-1]}' is not found.")
    scope = request.key[:providers]
    wanted = assignment_filter(request.param("$filter"))
    chosen = [item.raw for item in index.of_type(_ROLE_ASSIGNMENT_TYPE) if _assignment_matches(item, scope, wanted)]
    return paged(request, chosen, page_size)


def _assignment_matches(item: Stored, scope: Key, wanted: AssignmentFilter) -> bool:
    properties = item.raw.get("properties") or {}
    if wanted.principal is not None and str(properties.get("principalId", "")).lower() != wanted.principal:
        return False
    assigned_at = _assignment_scope(item)
    if is_at_or_above(assigned_at, scope):
        return True
    # ARM also returns assignments below the scope unless atScope() asked for at-or-above only.
    return not wanted.at_scope_only and is_at_or_above(scope, assigned_at)


def _assignment_scope(item: Stored) -> Key:
    scope = (item.raw.get("properties") or {}).get("scope")
    if isinstance(scope, str):
        return id_key(scope)
    providers = last_providers(item.key)
    return item.key[:providers] if providers is not None else ()
