"""The fake ARM's thread-safe store: the current generation of resources (see index), the faults, the page size
and the tenant its 401 challenges name. What the controller models use to write (external-dns writing record
sets) lives here too; each write swaps in a new generation."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from aksid.sandbox.arm.faults import Fault, compile_faults
from aksid.sandbox.arm.ids import id_key
from aksid.sandbox.arm.index import Index

DEFAULT_PAGE_SIZE = 2


def _tenant_of(resources: Iterable[dict[str, Any]]) -> str | None:
    """The first tenantId the resources mention (identities and clusters carry one)."""
    for resource in resources:
        for holder in (resource.get("properties"), resource.get("identity")):
            if isinstance(holder, dict) and isinstance(holder.get("tenantId"), str):
                return holder["tenantId"]
    return None


class ArmStore:
    """Thread-safe store of ARM resources (dicts with at least `id`, `name`, `type`).

    `faults` are dicts `{"match": regex, "status": int, "code"?, "message"?, "headers"?, "method"?,
    "times"?}`: a request whose path (with query, raw or percent-decoded) matches the regex, and whose
    method matches if given, fails with that ARM error; `times` limits how many requests fail.
    """

    def __init__(
        self,
        resources: list[dict[str, Any]],
        faults: list[dict[str, Any]] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        tenant_id: str | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self._tenant_id = tenant_id
        self._lock = threading.Lock()
        self._index = Index([])
        self._faults: list[Fault] = []
        self.tenant_id = "common"
        self.reset(resources, faults)

    def reset(self, resources: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None) -> None:
        """Replace every resource and fault; requests in flight finish against the old generation."""
        index = Index(resources)
        compiled = compile_faults(faults)
        with self._lock:
            self._index = index
            self._faults = compiled
            self.tenant_id = self._tenant_id or _tenant_of(resources) or "common"

    def index(self) -> Index:
        with self._lock:
            return self._index

    # What the controller models (external-dns writing record sets) use; each swaps in a new generation.

    def resources(self) -> list[dict[str, Any]]:
        """Copies of every stored resource."""
        with self._lock:
            return [copy.deepcopy(item.raw) for item in self._index.items]

    def put(self, resource: dict[str, Any]) -> None:
        """Create or replace one resource (by id, compared as ARM compares ids)."""
        key = id_key(resource["id"])
        with self._lock:
            kept = [item.raw for item in self._index.items if item.key != key]
            self._index = Index([*kept, copy.deepcopy(resource)])

    def remove(self, resource_id: str) -> None:
        """Delete one resource and what lives under it; a missing one is no error."""
        key = id_key(resource_id)
        with self._lock:
            self._index = Index([item.raw for item in self._index.items if item.key[:len(key)] != key])

    def set_faults(self, faults: list[dict[str, Any]] | None) -> None:
        """Replace the faults only (the sandbox's fault file, see aksid.sandbox.fault_control)."""
        compiled = compile_faults(faults)
        with self._lock:
            self._faults = compiled

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting down its `times`."""
        candidates = (path, unquote(path))
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != method:
                    continue
                if not any(fault.pattern.search(text) for text in candidates):
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                return fault
        return None
