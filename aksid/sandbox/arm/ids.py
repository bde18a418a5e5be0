"""Resource ids and request paths as ARM compares them: lowercased segments, empty ones ignored.

Everything the fake ARM answers is derived from ids, so what a path names (a resource, a collection, a DNS
record-set list) is decided here, from the shape of its segments alone.
"""

from __future__ import annotations

from urllib.parse import unquote

Key = tuple[str, ...]
"""A resource id or request path as lowercased, percent-decoded segments."""

DNS_ZONE_TYPES = ("dnszones", "privatednszones")
RECORD_SET_LISTS = ("all", "recordsets")


def id_key(resource_id: str) -> Key:
    """The lookup key of a stored id; empty segments (`//`) are ignored as ARM does."""
    return tuple(part.lower() for part in resource_id.split("/") if part)


def path_segments(path: str) -> tuple[str, ...]:
    # Decode per segment so an encoded slash can never split one (the SDKs quote names, e.g. `@`).
    return tuple(unquote(part) for part in path.split("/") if part)


def last_providers(key: Key) -> int | None:
    """Index of the last `providers` segment; what follows it is `<namespace>/<type>/<name>/...`."""
    for index in range(len(key) - 1, -1, -1):
        if key[index] == "providers":
            return index
    return None


def is_collection(key: Key) -> bool:
    """ARM paths alternate type/name: an odd number of segments after the namespace is a list."""
    providers = last_providers(key)
    if providers is None:  # /subscriptions, /subscriptions/<s>/resourceGroups
        return len(key) % 2 == 1
    after_namespace = len(key) - providers - 2
    return after_namespace > 0 and after_namespace % 2 == 1


def is_at_or_above(scope: Key, target: Key) -> bool:
    return target[: len(scope)] == scope


def is_record_set_list(key: Key) -> bool:
    return len(key) >= 3 and key[-3] in DNS_ZONE_TYPES and key[-1] in RECORD_SET_LISTS
