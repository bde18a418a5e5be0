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
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
BUILTIN_NAMES = {
    DNS_ZONE_CONTRIBUTOR: "DNS Zone Contributor", READER: "Reader", CONTRIBUTOR: "Contributor", OWNER: "Owner",
    MANAGED_IDENTITY_OPERATOR: "Managed Identity Operator",
}
# Other built-in roles real plans and templates assign by name (Azure's built-in roles reference): their GUIDs are
# the same in every tenant, so a plan naming one is judged as Azure will resolve it.
MORE_BUILTIN_NAMES = {
    NETWORK_CONTRIBUTOR: "Network Contributor",
    "b12aa53e-6015-4669-85d0-8515ebb3ae7f": "Private DNS Zone Contributor",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59": "Managed Identity Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "4abbcc35-e782-43d8-92c5-2d3f1bd2253f": "Azure Kubernetes Service Cluster User Role",
    "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8": "Azure Kubernetes Service Cluster Admin Role",
    "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b": "Azure Kubernetes Service RBAC Cluster Admin",
    "3498e952-d568-435e-9b2c-8d77e338d7f7": "Azure Kubernetes Service RBAC Admin",
    "7f6c6a51-bcf8-42ba-9220-52d62157d7db": "Azure Kubernetes Service RBAC Reader",
    "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb": "Azure Kubernetes Service RBAC Writer",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
}
# Built-ins whose actions include writing Azure DNS zones (`*` or `Microsoft.Network/*`).
DNS_WRITING_BUILTINS = (DNS_ZONE_CONTRIBUTOR, CONTRIBUTOR, OWNER, NETWORK_CONTRIBUTOR)
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
    return BUILTIN_NAMES.get(guid) or MORE_BUILTIN_NAMES.get(guid, guid)


def _allows(permission: Mapping[str, Any], action: str) -> bool:
    def matches(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)

    return matches(permission.get("actions") or []) and not matches(permission.get("notActions") or [])


def can_write_dns(guid: str, definition: Mapping[str, Any] | None) -> bool:
    """Built-ins by GUID; any other role by its actions (wildcards as ARM applies them)."""
    if guid in DNS_WRITING_BUILTINS:
        return True
    if definition is None:
        return False
    permissions = (definition.get("properties") or {}).get("permissions") or []
    return any(_allows(p, action) for p in permissions for action in DNS_WRITE_ACTIONS)


def resource_group_id(subscription_id: str, group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}"
