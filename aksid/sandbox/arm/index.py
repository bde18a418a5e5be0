"""One immutable generation of the fake ARM's resources, indexed by id.

Requests read a generation without a lock: a change (a reset, a controller model writing a record set) builds a
new one and swaps it in, so a request in flight never sees half of a change. Building one validates every
resource, and derives what ARM implies without storing: the subscriptions and the resource groups resources
live in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aksid.sandbox.arm.ids import Key, id_key


@dataclass(frozen=True)
class Stored:
    key: Key
    type: str  # lowercased
    raw: dict[str, Any]


class Index:
    """One immutable generation of resources; `ArmStore.reset` swaps in a new one atomically."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.items: list[Stored] = []
        self.by_key: dict[Key, Stored] = {}
        self.subscriptions: set[str] = set()
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}  # (sub, rg) -> implied resource group
        for number, resource in enumerate(resources, start=1):
            self._add(_validated(resource, number))

    def _add(self, resource: dict[str, Any]) -> None:
        key = id_key(resource["id"])
        if key in self.by_key:
            raise ValueError(f"ARM resource id {resource['id']} is stored twice (ids are case-insensitive)")
        stored = Stored(key, resource["type"].lower(), resource)
        self.items.append(stored)
        self.by_key[key] = stored
        if len(key) >= 2 and key[0] == "subscriptions":
            self.subscriptions.add(key[1])
        if len(key) >= 4 and key[0] == "subscriptions" and key[2] == "resourcegroups":
            self.groups.setdefault((key[1], key[3]), _implied_group(resource))

    def of_type(self, resource_type: str) -> list[Stored]:
        return [item for item in self.items if item.type == resource_type]


def _validated(resource: Any, number: int) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise ValueError(f"ARM resource #{number} is not a mapping")
    for name in ("id", "name", "type"):
        if not isinstance(resource.get(name), str) or not resource[name]:
            raise ValueError(f"ARM resource #{number} ({resource.get('id', '?')}) needs a non-empty string '{name}'")
    if not resource["id"].startswith("/"):
        raise ValueError(f"ARM resource id {resource['id']} must start with '/'")
    # A JSON round trip copies the document (callers may keep mutating theirs) and proves it serialisable.
    return json.loads(json.dumps(resource))


def _implied_group(member: dict[str, Any]) -> dict[str, Any]:
    """The resource group a member lives in, for GETs of a group nobody stored explicitly."""
    parts = [part for part in member["id"].split("/") if part][:4]
    document: dict[str, Any] = {
        "id": "/" + "/".join(parts),
        "name": parts[3],
        "type": "Microsoft.Resources/resourceGroups",
        "properties": {"provisioningState": "Succeeded"},
    }
    if isinstance(member.get("location"), str):
        document["location"] = member["location"]
    return document
