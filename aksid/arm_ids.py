"""ARM resource ids and role definitions: compared the way ARM means them, not as strings."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

DNS_ZONE_CONTRIBUTOR = "befefa01-2a29-4197-83a8-272ff33ce314"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
BUILTIN_NAMES = {
    DNS_ZONE_CONTRIBUTOR: "DNS Zone Contributor", READER: "Reader", CONTRIBUTOR: "Contributor", OWNER: "Owner",
    MANAGED_IDENTITY_OPERATOR: "Managed Identity Operator",
}
# Writes a role must allow to change the zone's records (any one suffices).
DNS_WRITE_ACTIONS = (
    "Microsoft.Network/dnsZones/write",
    "Microsoft.Network/dnsZones/A/write",
    "Microsoft.Network/dnsZones/TXT/write",
    "Microsoft.Network/dnsZones/recordsets/write",
)


def normalise(resource_id: str) -> str:
    """Ids differ in case (`dnszones` vs `dnsZones`, `resourcegroups`) and trailing slashes only."""
    return "/" + resource_id.strip().strip("/").lower()


def same_id(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and normalise(a or "") == normalise(b or "")


def contains(scope: str, resource_id: str) -> bool:
    """Whether an assignment at `scope` applies to `resource_id` (the scope is it, or above it)."""
    outer, inner = normalise(scope), normalise(resource_id)
    return outer == "/" or inner == outer or inner.startswith(outer + "/")


def role_guid(role_definition_id: str) -> str:
    """Role definition ids come with and without the subscription prefix: the trailing GUID is the identity."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def role_name(guid: str, definitions: Iterable[Mapping[str, Any]]) -> str:
    for definition in definitions:
        if role_guid(definition.get("id", "")) == guid:
            return str((definition.get("properties") or {}).get("roleName") or guid)
    return BUILTIN_NAMES.get(guid, guid)


def _allows(permission: Mapping[str, Any], action: str) -> bool:
    def matches(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)

    return matches(permission.get("actions") or []) and not matches(permission.get("notActions") or [])


def can_write_dns(guid: str, definition: Mapping[str, Any] | None) -> bool:
    """Built-ins by GUID; any other role by its actions (wildcards as ARM applies them)."""
    if guid in (DNS_ZONE_CONTRIBUTOR, CONTRIBUTOR, OWNER):
        return True
    if definition is None:
        return False
    permissions = (definition.get("properties") or {}).get("permissions") or []
    return any(_allows(p, action) for p in permissions for action in DNS_WRITE_ACTIONS)


def resource_group_id(subscription_id: str, group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}"
