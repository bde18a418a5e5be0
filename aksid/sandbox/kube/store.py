"""The fake API server's objects: one thread-safe in-memory store, kept ready for LISTs of a large cluster.

Each kind's objects are kept sorted by (namespace, name), the order of a LIST, as they are written; each
object's encoding as a LIST item is kept once computed, until the object is written again. A LIST page is
then a bisection, a slice and a join of bytes, whatever the size of the cluster; a selector scans the
kind's sorted objects directly.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from aksid.memory import gc_paused
from aksid.sandbox.bulk import json_copy
from aksid.sandbox.kube.errors import ApiError, conflict, error_details, invalid, not_found
from aksid.sandbox.kube.faults import Fault
from aksid.sandbox.kube.objects import (
    encode_list_item,
    list_item_variant,
    now_rfc3339,
    object_key,
    prepare_object,
    served_copy,
)
from aksid.sandbox.kube.resources import (
    BUILTIN_KINDS,
    CRD_KEY,
    Catalog,
    KubeObject,
    ObjectKey,
    Resource,
    split_api_version,
)

GroupKind = tuple[str, str]
# (namespace, name): where an object comes in a LIST of its kind, and what a continue token names
Position = tuple[str, str]


@dataclass(frozen=True)
class EncodedPage:
    """One LIST page: its items already encoded in JSON, and what its ListMeta needs."""

    items: list[bytes]
    last: Position | None  # the last item's position
    more: bool  # matching objects follow this page: a continue token is due
    remaining: int  # objects of the list (matching or not) after this page
    revision: str


class KubeStore:
    """Thread-safe in-memory object store.

    The HTTP handler reads and writes it through Resources (what a path names, served in the version asked
    for); code running in the server process, such as a controller model, uses the small interface below
    (`list_kind`, `get`, `put`, `remove`), by group and kind, on objects as stored.
    """

    def __init__(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        self._lock = threading.RLock()
        self._revision = 0
        self._objects: dict[ObjectKey, KubeObject] = {}  # in load-then-creation order
        self._positions: dict[GroupKind, list[Position]] = {}  # per kind, sorted: the LIST order
        self._sorted: dict[GroupKind, list[KubeObject]] = {}  # per kind, the objects at those positions
        self._encoded: dict[ObjectKey, dict[str, bytes]] = {}  # LIST item encodings, by list_item_variant
        self._faults: list[Fault] = []
        self._catalog = Catalog(())
        self.reset(objects, faults)

    def reset(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        """Replace every object and fault; ValueError (and no change) if the scenario is malformed."""
        parsed_faults = [Fault.parse(spec) for spec in faults or []]
        crds = [o for o in objects if isinstance(o, dict) and o.get("kind") == CRD_KEY[1]
                and split_api_version(str(o.get("apiVersion", "")))[0] == CRD_KEY[0]]
        catalog = Catalog(crds)
        with self._lock, gc_paused():
            revision = self._revision
            prepared: dict[ObjectKey, KubeObject] = {}
            for obj in objects:
                revision += 1
                filled = prepare_object(obj, catalog, str(revision))
                key = object_key(filled)
                if key in prepared:
                    raise ValueError(f"the kube object {'/'.join(part for part in key if part)} is listed twice")
                prepared[key] = filled
            positions: dict[GroupKind, list[Position]] = {}
            for key in prepared:
                positions.setdefault(key[:2], []).append(key[2:])
            for kind_positions in positions.values():
                kind_positions.sort()
            self._revision = revision
            self._objects = prepared
            self._positions = positions
            self._sorted = {kind: [prepared[(*kind, *position)] for position in kind_positions]
                            for kind, kind_positions in positions.items()}
            self._encoded = {}
            self._faults = parsed_faults
            self._catalog = Catalog(o for k, o in prepared.items() if k[:2] == CRD_KEY)

    def objects(self) -> list[dict]:
        """Current objects (copies), in load-then-creation order."""
        with self._lock, gc_paused():
            return [json_copy(obj) for obj in self._objects.values()]

    def catalog(self) -> Catalog:
        with self._lock:
            return self._catalog

    def set_faults(self, faults: list[dict] | None) -> None:
        """Replace the faults only (the sandbox's fault file, see aksid.sandbox.fault_control)."""
        parsed = [Fault.parse(spec) for spec in faults or []]
        with self._lock:
            self._faults = parsed

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault for this request, counting it against its `times`."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def list_objects(self, resource: Resource, namespace: str | None) -> tuple[list[KubeObject], str]:
        """Objects of a resource (in one namespace, or all), ordered by namespace then name, and the revision."""
        with self._lock:
            objects = self._in_order((resource.group, resource.kind), namespace)
            return [served_copy(obj, resource) for obj in objects], str(self._revision)

    def list_page(self, resource: Resource, namespace: str | None, after: Position | None, limit: int,
                  matches: Callable[[KubeObject], bool] | None = None) -> EncodedPage:
        """One LIST page, encoded: the objects (in one namespace, or all) after position `after`, in LIST order,
        that `matches` keeps (all when None), at most `limit` of them (0: no limit).

        `matches` sees the objects as stored (never a copy: it must not change them).
        """
        with self._lock:
            group_kind = (resource.group, resource.kind)
            positions = self._positions.get(group_kind, [])
            start, stop = _namespace_range(positions, namespace)
            if after is not None:
                start = max(start, bisect_right(positions, after))
            chosen, more = self._select(group_kind, start, stop, limit, matches)
            variant = list_item_variant(resource)
            items = [self._encoded_item((*group_kind, *position), variant) for position in chosen]
            return EncodedPage(items, chosen[-1] if chosen else None, more, stop - start - len(chosen),
                               str(self._revision))

    def get_object(self, resource: Resource, namespace: str | None, name: str) -> KubeObject | None:
        with self._lock:
            obj = self._objects.get((resource.group, resource.kind, namespace or "", name))
            return None if obj is None else served_copy(obj, resource)

    def create_object(self, resource: Resource, obj: KubeObject, dry_run: bool = False) -> KubeObject:
        """Store a new object (already checked against the request); 409 if it exists, 404 without its namespace."""
        with self._lock:
            namespace = obj["metadata"].get("namespace") or ""
            if resource.namespaced and ("", "Namespace", "", namespace) not in self._objects:
                raise not_found(BUILTIN_KINDS[("", "Namespace")], namespace)
            key = (resource.group, resource.kind, namespace, obj["metadata"]["name"])
            if key in self._objects:
                name = key[3]
                raise ApiError(409, f'{resource.qualified_plural} "{name}" already exists', "AlreadyExists",
                               error_details(resource, name))
            try:
                created = prepare_object(obj, self._catalog, str(self._revision + 1), now_rfc3339())
            except ValueError as exc:
                raise invalid(resource.kind, key[3], "metadata", str(exc), "FieldValueInvalid") from None
            if not dry_run:
                self._revision += 1
                self._write(key, created)
                self._refresh_catalog(key[:2])
            return served_copy(created, resource)

    def replace_object(self, resource: Resource, obj: KubeObject, resource_version: str,
                       dry_run: bool = False) -> KubeObject:
        """Write `obj` (already checked, see validation.check_updated_object) over the stored object of its name,
        as an update of kube-apiserver's storage: 404 when there is none, 409 Conflict when the stored
        resourceVersion is not `resource_version` ("" for an unconditional update). The object gets a new
        resourceVersion, keeps its uid and creationTimestamp, and its generation goes up when its spec changed."""
        with self._lock:
            namespace, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
            key = (resource.group, resource.kind, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise not_found(resource, name)
            if resource_version and resource_version != current["metadata"].get("resourceVersion"):
                raise conflict(resource, name)
            revision = str(self._revision + 1)
            try:
                stored = prepare_object({**obj, "apiVersion": current["apiVersion"]}, self._catalog, revision,
                                        now_rfc3339())
            except ValueError as exc:
                raise invalid(resource.kind, name, "metadata", str(exc), "FieldValueInvalid") from None
            if _unchanged(stored, current):
                return served_copy(current, resource)  # a no-op update writes nothing, as etcd3's store
            _carry_over(stored, current, revision)
            if not dry_run:
                self._revision += 1
                self._write(key, stored)
                self._refresh_catalog(key[:2])
            return served_copy(stored, resource)

    def delete_object(self, resource: Resource, namespace: str | None, name: str,
                      dry_run: bool = False) -> KubeObject | None:
        """Remove an object (and what a cluster would remove with it); None if it does not exist."""
        with self._lock:
            key = (resource.group, resource.kind, namespace or "", name)
            obj = self._objects.get(key)
            if obj is None or dry_run:
                return None if obj is None else served_copy(obj, resource)
            return served_copy(self._remove(key), resource)

    # -- for code in the server process (controller models): objects as stored, by group and kind --

    def list_kind(self, group: str, kind: str, namespace: str | None = None) -> list[KubeObject]:
        """Copies of the objects of one kind (in one namespace, or all), ordered by namespace then name.

        As stored: each keeps the apiVersion it was written with, whichever version a client reads.
        """
        with self._lock:
            return [json_copy(obj) for obj in self._in_order((group, kind), namespace)]

    def names(self, group: str, kind: str, namespace: str | None = None) -> list[Position]:
        """The (namespace, name) of the objects of one kind (in one namespace, or all), in list_kind's order:
        what a loop needs to pick a few objects out of many without copying them all."""
        with self._lock:
            return self._range((group, kind), namespace)

    def object_keys(self) -> list[ObjectKey]:
        """(group, kind, namespace, name) of every object, in load-then-creation order."""
        with self._lock:
            return list(self._objects)

    def get(self, group: str, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        """A copy of one object, or None; `namespace` is "" (or None) for a cluster-scoped kind."""
        with self._lock:
            obj = self._objects.get((group, kind, namespace or "", name))
            return None if obj is None else json_copy(obj)

    def put(self, obj: KubeObject) -> KubeObject:
        """Create or replace `obj` (found by its group, kind, namespace and name); return a copy as stored.

        The last write wins (no resourceVersion precondition) and the store sets a new resourceVersion.
        A new object is filled in as a scenario's is, created now; a replaced one keeps its uid, its
        creationTimestamp and its generation, which goes up by one when the spec changed (as the API
        server counts). ValueError, and no change, when the object is malformed.
        """
        with self._lock:
            revision = str(self._revision + 1)
            stored = prepare_object(obj, self._catalog, revision, now_rfc3339())
            key = object_key(stored)
            _carry_over(stored, self._objects.get(key), revision)
            self._revision += 1
            self._write(key, stored)
            self._refresh_catalog(key[:2])
            return json_copy(stored)

    def remove(self, group: str, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        """Delete one object as a DELETE does (a Namespace takes its objects along, a CRD its custom
        resources); return a copy of it, or None when there was no such object."""
        with self._lock:
            key = (group, kind, namespace or "", name)
            if key not in self._objects:
                return None
            return json_copy(self._remove(key))

    # -- internals (the caller holds the lock) --

    def _write(self, key: ObjectKey, obj: KubeObject) -> None:
        """Store `obj` (never changed in place afterwards: a write replaces it), keeping the indexes right."""
        positions = self._positions.setdefault(key[:2], [])
        objects = self._sorted.setdefault(key[:2], [])
        index = bisect_left(positions, key[2:])
        if key in self._objects:
            objects[index] = obj
        else:
            positions.insert(index, key[2:])
            objects.insert(index, obj)
        self._objects[key] = obj
        self._encoded.pop(key, None)

    def _delete(self, key: ObjectKey) -> KubeObject:
        positions = self._positions[key[:2]]
        index = bisect_left(positions, key[2:])
        del positions[index]
        del self._sorted[key[:2]][index]
        self._encoded.pop(key, None)
        return self._objects.pop(key)

    def _remove(self, key: ObjectKey) -> KubeObject:
        obj = self._delete(key)
        self._revision += 1
        for dependent in self._dependents(key[:2], obj):
            self._delete(dependent)
        self._refresh_catalog(key[:2])
        return obj

    def _dependents(self, group_kind: GroupKind, obj: KubeObject) -> list[ObjectKey]:
        """Deleting a namespace deletes its objects; deleting a CRD deletes its custom resources."""
        if group_kind == ("", "Namespace"):
            namespace = obj["metadata"]["name"]
            return [(*kind, *position) for kind in self._positions for position in self._range(kind, namespace)]
        if group_kind == CRD_KEY:
            spec = obj.get("spec") or {}
            kind = (spec.get("group"), (spec.get("names") or {}).get("kind"))
            return [(*kind, *position) for position in self._positions.get(kind, [])]
        return []

    def _range(self, group_kind: GroupKind, namespace: str | None) -> list[Position]:
        positions = self._positions.get(group_kind, [])
        start, stop = _namespace_range(positions, namespace)
        return positions[start:stop]

    def _in_order(self, group_kind: GroupKind, namespace: str | None) -> list[KubeObject]:
        """The objects of a kind (in one namespace, or all) in LIST order, as stored."""
        start, stop = _namespace_range(self._positions.get(group_kind, []), namespace)
        return self._sorted.get(group_kind, [])[start:stop]

    def _select(self, group_kind: GroupKind, start: int, stop: int, limit: int,
                matches: Callable[[KubeObject], bool] | None) -> tuple[list[Position], bool]:
        """The positions of the first `limit` (0: all) objects from index `start` to `stop` of a kind that
        `matches` keeps, and whether more follow."""
        positions = self._positions.get(group_kind, [])
        if matches is None:
            end = min(stop, start + limit) if limit else stop
            return positions[start:end], end < stop
        objects = self._sorted.get(group_kind, [])
        chosen: list[Position] = []
        for index in range(start, stop):
            if matches(objects[index]):
                if limit and len(chosen) == limit:
                    return chosen, True
                chosen.append(positions[index])
        return chosen, False

    def _encoded_item(self, key: ObjectKey, variant: str) -> bytes:
        """The object as a LIST item, encoded once and kept until the object is written again."""
        encodings = self._encoded.setdefault(key, {})
        encoded = encodings.get(variant)
        if encoded is None:
            encoded = encodings[variant] = encode_list_item(self._objects[key], variant)
        return encoded

    def _refresh_catalog(self, group_kind: GroupKind) -> None:
        if group_kind == CRD_KEY:
            self._catalog = Catalog(o for k, o in self._objects.items() if k[:2] == CRD_KEY)


def _namespace_range(positions: list[Position], namespace: str | None) -> tuple[int, int]:
    """Where one namespace's objects are in a sorted list of positions (all of them for None)."""
    if namespace is None:
        return 0, len(positions)
    # (ns,) sorts before every (ns, name), and (ns + "\0",) after them and before any longer namespace
    return bisect_left(positions, (namespace,)), bisect_left(positions, (namespace + "\0",))


def _unchanged(stored: KubeObject, current: KubeObject) -> bool:
    """Whether a write would store what is stored already (resourceVersion and generation aside)."""
    def comparable(obj: KubeObject) -> KubeObject:
        meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "generation")}
        return {**obj, "metadata": meta}

    return comparable(stored) == comparable(current)


def _carry_over(stored: KubeObject, previous: KubeObject | None, revision: str) -> None:
    """What the server owns in a written object: its resourceVersion, and for a replaced object the fields
    that belong to the object's life rather than to this write."""
    meta = stored["metadata"]
    meta["resourceVersion"] = revision
    if previous is None:
        return
    before = previous["metadata"]
    meta["uid"] = before["uid"]
    meta["creationTimestamp"] = before["creationTimestamp"]
    if "generation" in before:
        meta["generation"] = before["generation"] + (1 if stored.get("spec") != previous.get("spec") else 0)
