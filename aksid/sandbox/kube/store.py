"""The fake API server's objects: one thread-safe in-memory store."""

from __future__ import annotations

import copy
import threading

from aksid.sandbox.kube.errors import ApiError, error_details, invalid, not_found
from aksid.sandbox.kube.faults import Fault
from aksid.sandbox.kube.objects import now_rfc3339, object_key, prepare_object, served_copy
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


class KubeStore:
    """Thread-safe in-memory object store.

    The HTTP handler reads and writes it through Resources (what a path names, served in the version asked
    for); code running in the server process, such as a controller model, uses the small interface below
    (`list_kind`, `get`, `put`, `remove`), by group and kind, on objects as stored.
    """

    def __init__(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        self._lock = threading.RLock()
        self._revision = 0
        self._objects: dict[ObjectKey, KubeObject] = {}
        self._faults: list[Fault] = []
        self._catalog = Catalog(())
        self.reset(objects, faults)

    def reset(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        """Replace every object and fault; ValueError (and no change) if the scenario is malformed."""
        parsed_faults = [Fault.parse(spec) for spec in faults or []]
        crds = [o for o in objects if isinstance(o, dict) and o.get("kind") == CRD_KEY[1]
                and split_api_version(str(o.get("apiVersion", "")))[0] == CRD_KEY[0]]
        catalog = Catalog(crds)
        with self._lock:
            revision = self._revision
            prepared: dict[ObjectKey, KubeObject] = {}
            for obj in objects:
                revision += 1
                filled = prepare_object(obj, catalog, str(revision))
                key = object_key(filled)
                if key in prepared:
                    raise ValueError(f"the kube object {'/'.join(part for part in key if part)} is listed twice")
                prepared[key] = filled
            self._revision = revision
            self._objects = prepared
            self._faults = parsed_faults
            self._catalog = Catalog(o for k, o in prepared.items() if k[:2] == CRD_KEY)

    def objects(self) -> list[dict]:
        """Current objects (copies), in load-then-creation order."""
        with self._lock:
            return copy.deepcopy(list(self._objects.values()))

    def catalog(self) -> Catalog:
        with self._lock:
            return self._catalog

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
            keys = sorted(
                key for key in self._objects
                if key[:2] == (resource.group, resource.kind) and (namespace is None or key[2] == namespace)
            )
            return [served_copy(self._objects[key], resource) for key in keys], str(self._revision)

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
                self._objects[key] = created
                self._refresh_catalog(key[:2])
            return served_copy(created, resource)

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
            keys = sorted(key for key in self._objects
                          if key[:2] == (group, kind) and (namespace is None or key[2] == namespace))
            return [copy.deepcopy(self._objects[key]) for key in keys]

    def get(self, group: str, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        """A copy of one object, or None; `namespace` is "" (or None) for a cluster-scoped kind."""
        with self._lock:
            obj = self._objects.get((group, kind, namespace or "", name))
            return None if obj is None else copy.deepcopy(obj)

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
            self._objects[key] = stored
            self._refresh_catalog(key[:2])
            return copy.deepcopy(stored)

    def remove(self, group: str, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        """Delete one object as a DELETE does (a Namespace takes its objects along, a CRD its custom
        resources); return a copy of it, or None when there was no such object."""
        with self._lock:
            key = (group, kind, namespace or "", name)
            if key not in self._objects:
                return None
            return copy.deepcopy(self._remove(key))

    # -- internals (the caller holds the lock) --

    def _remove(self, key: ObjectKey) -> KubeObject:
        obj = self._objects.pop(key)
        self._revision += 1
        for dependent in self._dependents(key[:2], obj):
            del self._objects[dependent]
        self._refresh_catalog(key[:2])
        return obj

    def _dependents(self, group_kind: GroupKind, obj: KubeObject) -> list[ObjectKey]:
        """Deleting a namespace deletes its objects; deleting a CRD deletes its custom resources."""
        if group_kind == ("", "Namespace"):
            return [key for key in self._objects if key[2] == obj["metadata"]["name"]]
        if group_kind == CRD_KEY:
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            return [key for key in self._objects if key[:2] == (spec.get("group"), kind)]
        return []

    def _refresh_catalog(self, group_kind: GroupKind) -> None:
        if group_kind == CRD_KEY:
            self._catalog = Catalog(o for k, o in self._objects.items() if k[:2] == CRD_KEY)


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
