"""Azure RBAC for the fake ARM: a restricted principal's request is allowed when an action of its custom role
definitions (aksid's deploy/azure-role*.json) covers the operation the route performs.

Each route maps to its Azure operation the way the resource providers name them: the provider namespace, then
the resource types along the path (names dropped), then `read` for GET/HEAD, `write` for PUT/PATCH, `delete`
for DELETE, `action` for POST — e.g. GET `.../providers/Microsoft.Network/dnsZones/example.com/all` is
`Microsoft.Network/dnsZones/all/read`; GET `.../resourceGroups/rg` is `Microsoft.Resources/subscriptions/
resourceGroups/read`. Actions match case-insensitively, `*` standing for any run of characters (Azure's
wildcards: `*`, `*/read`, `Microsoft.Network/dnsZones/*`); NotActions subtract. A denial is ARM's 403
`AuthorizationFailed` with its exact message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError

_VERB = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete", "POST": "action"}


def operation(request: ArmRequest) -> tuple[str, str]:
    """(action, scope) of a request: the Azure operation it performs and the scope ARM names in a denial."""
    segments = request.segments
    lowered = request.key
    verb = _VERB.get(request.method, "read")
    scope = "/" + "/".join(segments)
    providers = max((i for i, part in enumerate(lowered) if part == "providers"), default=None)
    if providers is not None and len(segments) > providers + 1:
        namespace = segments[providers + 1]
        types = [segments[i] for i in range(providers + 2, len(segments), 2)]
        return "/".join([namespace, *types, verb]), scope
    # No provider: the subscription itself, its resource groups or one of them.
    types = ["subscriptions"] + (["resourceGroups"] if len(lowered) >= 3 and lowered[2] == "resourcegroups" else [])
    if len(lowered) >= 5:  # /subscriptions/<s>/resourceGroups/<rg>/<something>: not a provider path
        types.append(segments[4])
    return "/".join(["Microsoft.Resources", *types, verb]), scope


def _pattern(action: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in action.split("*")) + "$", re.IGNORECASE)


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, document: dict[str, Any]) -> RoleDefinition:
        """The shape `az role definition create` takes (Name, Actions, NotActions...), or ARM's own
        (`properties.roleName`, `properties.permissions[]`)."""
        if "properties" in document:
            props = document["properties"] or {}
            permissions = props.get("permissions") or []
            return cls(str(props.get("roleName", "")),
                       tuple(a for p in permissions for a in p.get("actions") or ()),
                       tuple(a for p in permissions for a in p.get("notActions") or ()))
        return cls(str(document.get("Name", "")), tuple(document.get("Actions") or ()),
                   tuple(document.get("NotActions") or ()))

    def permits(self, action: str) -> bool:
        return (any(_pattern(a).match(action) for a in self.actions)
                and not any(_pattern(a).match(action) for a in self.not_actions))


def load_roles(paths: Iterable[Path]) -> list[RoleDefinition]:
    """Role definitions from JSON files (a directory: its azure-role*.json files, sorted)."""
    roles = []
    for path in paths:
        files = sorted(path.glob("azure-role*.json")) if path.is_dir() else [path]
        roles += [RoleDefinition.parse(json.loads(file.read_text(encoding="utf-8"))) for file in files]
    return roles


@dataclass(frozen=True)
class ArmPrincipal:
    """A restricted principal of the fake ARM: its token, its ids (for ARM's message) and its roles."""

    token: str
    client_id: str
    object_id: str
    roles: tuple[RoleDefinition, ...]

    @property
    def user(self) -> str:
        """How the request log names it: the client (application) id, as ARM's activity log does."""
        return self.client_id

    def authorize(self, request: ArmRequest) -> None:
        action, scope = operation(request)
        if not any(role.permits(action) for role in self.roles):
            raise ArmError(
                403, "AuthorizationFailed",
                f"The client '{self.client_id}' with object id '{self.object_id}' does not have authorization to perform "
                f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
                "please refresh your credentials.")
