"""The evidence snapshot: plain JSON, the only thing checks read.

Every piece of evidence is an entry `{"status": "ok" | "absent" | "error", "value": ..., "reason": ...}`:
`absent` is itself evidence (the API says the thing does not exist), `error` means it could not be
collected — a check that needs it reports `error`, never `passed`.
"""

from __future__ import annotations

import marshal
import os
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aksid.jsonfile import compact_sorted
from aksid.memory import long_lived_allocations
from aksid.userfiles import read_json_object

SCHEMA = "aksid.snapshot/v1"


class EvidenceUnavailable(Exception):
    """Evidence a check needs could not be collected; the message says why."""


class EvidenceNotCollected(Exception):
    """Evidence deliberately not collected in this run (an opt-in); checks that need it are skipped."""


# Static mode's stand-in for a value a plan or template leaves unknown until apply (aksid.collect.static.arm_shapes).
UNKNOWN_UNTIL_APPLY = "(known after apply"


# ... and for an expression the files do not let anyone evaluate (a Terraform `local`, a function of several values).
NOT_RESOLVABLE = "(not resolvable from the"


# ... and, inside a name, what only the deployment computes from known inputs (ARM's uniqueString hash):
# `aks-«uniqueString(aks, <sub>, <group id>)»` is the same name wherever the template builds it.
DEPLOY_TIME = "«"


def unknown_until_apply(value: Any) -> bool:
    """A value a resource computes when it is applied, named by where it comes from (equal references match)."""
    return isinstance(value, str) and value.startswith(UNKNOWN_UNTIL_APPLY)


def not_resolvable(value: Any) -> bool:
    """A value whose expression the plan or template does not let anyone evaluate: it could be anything."""
    return isinstance(value, str) and value.startswith(NOT_RESOLVABLE)


def placeholder(value: Any) -> bool:
    return unknown_until_apply(value) or not_resolvable(value)


def ok(value: Any) -> dict[str, Any]:
    return {"status": "ok", "value": value}


def absent(reason: str) -> dict[str, Any]:
    return {"status": "absent", "value": None, "reason": reason}


def error(reason: str) -> dict[str, Any]:
    return {"status": "error", "value": None, "reason": reason}


def not_collected(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "value": None, "reason": reason}


# Static mode: a workload's pod template stands for its pods as `<workload>-pod-template`, and `sources` (where each
# object of the files was declared) is keyed `Kind namespace/name` for Kubernetes objects, by ARM id for Azure's.
POD_TEMPLATE = "-pod-template"


def kube_key(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def kind_key(api_version: str, kind: str) -> str:
    """`v1/Pod`, `apps/v1/DaemonSet`, `aadpodidentity.k8s.io/v1/AzureIdentity`."""
    return f"{api_version}/{kind}"


def labels_match(labels: Mapping[str, str] | None, selector: Mapping[str, str]) -> bool:
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


_LABEL_VALUES = (str, int, float, bool)


class KubeEvidence:
    """Read-only accessors over the Kubernetes part of a snapshot."""

    def __init__(self, entries: Mapping[str, dict[str, Any]]) -> None:
        self._entries = entries
        self._by_namespace: dict[str, dict[str | None, list[dict[str, Any]]]] = {}
        self._by_label: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}

    def entry(self, api_version: str, kind: str) -> dict[str, Any]:
        key = kind_key(api_version, kind)
        if key not in self._entries:
            return error(f"{key} was not collected")
        return self._entries[key]

    def served(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (CRD installed); raises when unknown."""
        entry = self.entry(api_version, kind)
        if entry["status"] == "error":
            raise EvidenceUnavailable(f"{kind} objects could not be listed: {entry['reason']}")
        return entry["status"] == "ok"

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        entry = self.entry(api_version, kind)
        if entry["status"] == "error":
            raise EvidenceUnavailable(f"{kind} objects could not be listed: {entry['reason']}")
        if entry["status"] == "skipped":
            raise EvidenceNotCollected(entry["reason"])
        key = kind_key(api_version, kind)
        if labels:
            candidates = self._labelled(key, entry["value"] or [], labels)
            return [item for item in candidates if labels_match(item.get("metadata", {}).get("labels"), labels)
                    and (namespace is None or item.get("metadata", {}).get("namespace") == namespace)]
        return list(self._in_namespace(key, entry["value"] or [], namespace))

    def _labelled(self, key: str, items: list[dict[str, Any]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Objects carrying the selector's first label, in listing order, from an index built once per kind (checks
        look for a selector's carriers among every pod of the cluster, once per subject)."""
        index = self._by_label.get(key)
        if index is None:
            index = {}
            for item in items:
                for pair in (item.get("metadata", {}).get("labels") or {}).items():
                    if type(pair[1]) in _LABEL_VALUES:  # a static manifest may hold anything; the scan below judges it
                        index.setdefault(pair, []).append(item)
            self._by_label[key] = index
        first = next(iter(labels.items()))
        return index.get(first, []) if type(first[1]) in _LABEL_VALUES else items

    def _in_namespace(self, key: str, items: list[dict[str, Any]], namespace: str | None) -> list[dict[str, Any]]:
        """Objects of one namespace, from an index built once per kind (checks ask per namespace, per subject)."""
        if namespace is None:
            return items
        index = self._by_namespace.get(key)
        if index is None:
            index = {}
            for item in items:
                index.setdefault(item.get("metadata", {}).get("namespace"), []).append(item)
            self._by_namespace[key] = index
        return index.get(namespace, [])

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for item in self.list(api_version, kind, namespace):
            if item["metadata"]["name"] == name:
                return item
        return None

    # Accessors named as the tutorial speaks.
    def nodes(self) -> list[dict[str, Any]]:
        return self.list("v1", "Node")

    def pods(self, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        return self.list("v1", "Pod", namespace, labels)

    def daemonsets(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list("apps/v1", "DaemonSet", namespace)

    def deployments(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list("apps/v1", "Deployment", namespace)

    def replicasets(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list("apps/v1", "ReplicaSet", namespace)

    def crds(self) -> list[dict[str, Any]]:
        return self.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")

    def service_accounts(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list("v1", "ServiceAccount", namespace)

    def mutating_webhooks(self) -> list[dict[str, Any]]:
        """MutatingWebhookConfigurations (cluster-scoped)."""
        return self.list("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")


class AzureEvidence:
    """Read-only accessors over the ARM part of a snapshot."""

    def __init__(self, entries: Mapping[str, dict[str, Any]], source: str = "Azure") -> None:
        self._entries = entries
        self._source = source  # where the evidence was read: Azure, or (static mode) the plan or template

    def _value(self, key: str, what: str) -> Any:
        entry = self._entries.get(key) or error(f"{what} was not collected")
        if entry["status"] == "error":
            raise EvidenceUnavailable(f"{what} could not be read from {self._source}: {entry['reason']}")
        if entry["status"] == "skipped":
            raise EvidenceNotCollected(entry["reason"])
        return entry["value"]

    def managed_cluster(self) -> dict[str, Any] | None:
        return self._value("managedCluster", "the managed cluster")

    def dns_zone(self) -> dict[str, Any] | None:
        return self._value("dnsZone", "the DNS zone")

    def record_sets(self) -> list[dict[str, Any]]:
        return self._value("recordSets", "the DNS record sets") or []

    def identities(self) -> list[dict[str, Any]]:
        return self._value("identities", "the user-assigned identities") or []

    def identity_named(self, name: str) -> dict[str, Any] | None:
        """The user-assigned identity called `name` (IDENTITY_NAME); ARM names are case-insensitive."""
        return next((i for i in self.identities() if i.get("name", "").lower() == name.lower()), None)

    def role_assignments(self) -> list[dict[str, Any]]:
        return self._value("roleAssignments", "the role assignments") or []

    def role_definitions(self) -> list[dict[str, Any]]:
        return self._value("roleDefinitions", "the role definitions") or []

    def access_assignments(self) -> list[dict[str, Any]]:
        """Every principal's role assignments at the DNS identity's scope and the zone's, and above (atScope())."""
        return self._value("accessAssignments", "the role assignments at the DNS identity and the zone") or []

    def scale_sets(self) -> list[dict[str, Any]]:
        """The node pools' virtual machine scale sets (the node resource group's), with their assigned identities."""
        return self._value("scaleSets", "the node pools' virtual machine scale sets") or []

    def federated_credentials(self, identity_id: str) -> list[dict[str, Any]]:
        """The federated identity credentials of one user-assigned identity (by its id, any case)."""
        by_identity = self._value("federatedCredentials", "the federated identity credentials") or {}
        if identity_id.lower() not in by_identity:
            raise EvidenceUnavailable(f"the federated identity credentials of {identity_id} were not read")
        return by_identity[identity_id.lower()]


def _same_name(a: str, b: str) -> bool:
    """DNS names compare case-insensitively, with or without the trailing dot."""
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def question(name: str, rdtype: str) -> str:
    """The key of one query in a server's evidence: `hello.example.test. A`."""
    return f"{name.rstrip('.')}. {rdtype.upper()}"


class DnsEvidence:
    """Read-only accessors over the DNS part of a snapshot: the parent's delegation and each name server's answers.

    A query that got an answer (even REFUSED or SERVFAIL) is evidence and is returned; one that got none
    (timeout, refused connection, no address) raises EvidenceUnavailable with the cause.
    """

    def __init__(self, entries: Mapping[str, dict[str, Any]] | None) -> None:
        self._entries = entries

    def _value(self, key: str, what: str) -> Any:
        if self._entries is None or key not in self._entries:
            raise EvidenceUnavailable(f"{what} was not collected (this snapshot has no DNS evidence)")
        entry = self._entries[key]
        if entry["status"] != "ok":
            raise EvidenceUnavailable(f"{what} could not be queried: {entry['reason']}")
        return entry["value"]

    def parent(self) -> dict[str, Any]:
        """{zone, parent, servers: {label: entry}}: what each server of the parent zone says about the delegation."""
        return self._value("parent", "the parent zone's delegation")

    def servers(self) -> dict[str, dict[str, Any]]:
        """{zone NS name: entry}, one per name server Azure lists for the zone."""
        return self._value("servers", "the zone's name servers")

    def server(self, name: str) -> dict[str, Any]:
        """{address, queries} of one name server (any case, trailing dot or not)."""
        entry = next((entry for key, entry in self.servers().items() if _same_name(key, name)), None)
        if entry is None:
            raise EvidenceUnavailable(f"name server {name} was not queried")
        if entry["status"] != "ok":
            raise EvidenceUnavailable(f"name server {name} could not be queried: {entry['reason']}")
        return entry["value"]

    def answer(self, server: str, name: str, rdtype: str) -> dict[str, Any]:
        """One server's answer {rcode, aa, answers, ttl, transport[, serial, cname]} to `name rdtype`."""
        found = self.server(server)
        wanted = question(name, rdtype)
        entry = next((entry for key, entry in found["queries"].items() if key.lower() == wanted.lower()), None)
        if entry is None:
            raise EvidenceUnavailable(f"name server {server} was not asked {wanted}")
        if entry.get("value") is None:
            raise EvidenceUnavailable(f"name server {server} ({found['address']}) gave no answer to {wanted}: {entry['reason']}")
        return entry["value"]


class TlsEvidence:
    """Read-only accessors over the TLS part of a snapshot: what the demo host served (see collect/tls.py).

    Entries: `handshake` {address, port, server_name, protocol, cipher, chain: [PEM, leaf first]},
    `legacy` {TLSv1: bool, TLSv1.1: bool}, `http` {status, location, body_excerpt}, `page` {status, hsts, body}.
    """

    def __init__(self, entries: Mapping[str, dict[str, Any]] | None) -> None:
        self._entries = entries

    _WHAT = {"handshake": "the TLS handshake", "legacy": "the TLS 1.0/1.1 probe", "http": "the plain-HTTP request",
             "page": "the HTTPS page"}

    def value(self, key: str) -> Any:
        what = self._WHAT.get(key, f"the TLS evidence '{key}'")
        if not self._entries:
            raise EvidenceUnavailable(f"{what} was not collected (this snapshot has no TLS evidence)")
        entry = self._entries.get(key)
        if entry is None:
            raise EvidenceUnavailable(f"{what} was not collected")
        if entry["status"] != "ok":
            raise EvidenceUnavailable(f"{what} failed: {entry['reason']}")
        return entry["value"]


class ProvisionEvidence:
    """What provision mode created and observed (aksid/provision/run.py): `probes` {role: entry + namespace, pod,
    selector}, `canary` {address, azure_record, servers, certificate, tls: entries whose status is ok, timeout (the
    controller did not do it in time: a finding) or absent}, `teardown` {leftovers, records, problems}, `timeline`."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document  # read when asked: provision mode adds its section after the attach collection

    @property
    def section(self) -> Mapping[str, Any]:
        if not self._document.get("provision"):
            raise EvidenceNotCollected("this snapshot was collected without provisioning (attach mode): "
                                       "run with --aksid-mode provision")
        return self._document["provision"]

    def probe(self, role: str) -> dict[str, Any]:
        record = (self.section.get("probes") or {}).get(role)
        if record is None:
            raise EvidenceUnavailable(f"the {role} probe was not created: {self.stopped}")
        return record

    def canary(self, key: str) -> dict[str, Any]:
        """The entry of one canary step; raises when it was never observed (the run stopped first)."""
        entry = (self.section.get("canary") or {}).get(key)
        if entry is None:
            raise EvidenceUnavailable(f"the canary's {key.replace('_', ' ')} was not observed: {self.stopped}")
        return entry

    @property
    def stopped(self) -> str:
        return str(self.section.get("stopped") or "the provision run stopped before it")

    def teardown(self, key: str) -> Any:
        entry = (self.section.get("teardown") or {}).get(key)
        if entry is None:
            raise EvidenceUnavailable(f"the teardown's {key} was not recorded (the run was interrupted)")
        if isinstance(entry, dict) and entry.get("status") not in (None, "ok"):
            raise EvidenceUnavailable(f"the teardown's {key} could not be read: {entry.get('reason')}")
        return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


class Snapshot:
    """One run's evidence; built by collectors, read by checks."""

    def __init__(self, document: dict[str, Any]) -> None:
        if document.get("schema") != SCHEMA:
            raise ValueError(f"not an aksid snapshot (schema is {document.get('schema')!r}, expected {SCHEMA})")
        self.document = document
        self.kube = KubeEvidence(document.get("kube", {}))
        self.azure = AzureEvidence(document.get("azure", {}),
                                   "the plan or template" if document.get("mode") == "static" else "Azure")
        self.dns = DnsEvidence(document.get("dns"))
        self.tls = TlsEvidence(document.get("tls"))
        self.provision = ProvisionEvidence(document)

    @property
    def target(self) -> dict[str, Any]:
        return self.document["target"]

    @property
    def errors(self) -> list[str]:
        """Every collection error, for the run summary."""
        found = []
        for section in ("kube", "azure"):
            for key, entry in self.document.get(section, {}).items():
                if entry.get("status") == "error":
                    found.append(f"{section} {key}: {entry['reason']}")
        found += _dns_errors(self.document.get("dns") or {})
        for key, entry in (self.document.get("tls") or {}).items():
            if entry.get("status") == "error":
                found.append(f"tls {key}: {entry['reason']}")
        return found

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        with long_lived_allocations():
            document = read_json_object(path, "the snapshot")  # a UserFileError is a ValueError
        return cls(document)

    def save(self, path: Path) -> None:
        """Write atomically, so a reader (another xdist worker) never sees half a file."""
        Snapshot.write(self.document, path)

    @staticmethod
    def write(document: dict[str, Any], path: Path, encoded: Mapping[int, Callable[[Any], None]] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                write_json(handle, document, encoded=encoded or {})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class HandOver:
    """The xdist workers' copy of the evidence, streamed while it is collected (the controller writes, each worker reads).

    An append-only file of frames (8-byte length, then `marshal` bytes: same interpreter, same run, and 5x faster
    to write than JSON): one frame per LIST page as soon as it is redacted, then the document without those pages.
    The workers decode the pages while the controller still lists (they would wait idle otherwise), so once the
    collection ends only the small rest is left to read. A kind whose listing failed midway keeps its `error`
    entry: the pages it streamed are dropped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = path.open("wb")
        self._streamed: dict[str, int] = {}
        self._lock = threading.Lock()

    def page(self, key: str, items: list[dict[str, Any]]) -> None:
        """One redacted page of kind `key` (items the collector keeps unchanged from here on)."""
        with self._lock:
            self._streamed[key] = self._streamed.get(key, 0) + len(items)
            self._write(("page", key, items))

    def finish(self, document: dict[str, Any]) -> None:
        """The document, its streamed lists left out (the workers have them); the last frame."""
        with self._lock:
            kube = {key: ({**entry, "value": None} if key in self._streamed and entry.get("status") == "ok" else entry)
                    for key, entry in (document.get("kube") or {}).items()}
            self._write(("document", {**document, "kube": kube}, self._streamed))
            self.close()

    def close(self) -> None:
        self._handle.close()

    def _write(self, frame: tuple[Any, ...]) -> None:
        data = marshal.dumps(frame)
        self._handle.write(_FRAME.pack(len(data)) + data)
        self._handle.flush()

    @staticmethod
    def take_over(path: Path, wait: Callable[[], None], scribe: JsonScribe | None = None) -> Snapshot:
        """Read the frames as they come (`wait` is called when none is complete: it sleeps, or raises to give up);
        a `scribe` encodes each page as it arrives, for the JSON snapshot."""
        pages: dict[str, list[dict[str, Any]]] = {}
        while not path.exists():
            wait()
        with long_lived_allocations(), path.open("rb") as handle:
            while True:
                frame = _read_frame(handle)
                if frame is None:
                    wait()
                    continue
                if frame[0] == "page":
                    pages.setdefault(frame[1], []).extend(frame[2])
                    if scribe is not None:
                        scribe.page(frame[1], frame[2])
                    continue
                _, document, streamed = frame
                for key, count in streamed.items():
                    entry = document["kube"].get(key)
                    if entry is not None and entry.get("status") == "ok" and entry.get("value") is None:
                        entry["value"] = pages.get(key, [])
                        if len(entry["value"]) != count:
                            raise ValueError(f"the hand-over {path} holds {len(entry['value'])} of {count} {key} objects")
                        if scribe is not None:
                            scribe.encoded[id(entry["value"])] = key
                return Snapshot(document)


class JsonScribe:
    """With -n, one worker writes the JSON snapshot instead of the controller: it encodes each page while the
    controller still lists (the workers would wait idle otherwise), into a spool file, then writes the snapshot
    around those pieces once the document is whole. Byte for byte what `Snapshot.save` writes, so the controller,
    left with only the workers' reports to take, saves it itself only when no scribe did."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self._handle = spool.open("w+b")
        self._pieces: dict[str, list[tuple[int, int]]] = {}  # kind -> (offset, length) of each page's items
        self._offset = 0
        self.encoded: dict[int, str] = {}  # id of a list in the document -> the kind whose pages it holds

    def page(self, key: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        data = compact_sorted(items)[1:-1]
        self._pieces.setdefault(key, []).append((self._offset, len(data)))
        self._handle.write(data)
        self._offset += len(data)

    def save(self, document: dict[str, Any], path: Path) -> None:
        self._handle.flush()

        def copy(key: str) -> Callable[[Any], None]:
            def write(out: Any) -> None:
                out.write(b"[")
                for index, (offset, length) in enumerate(self._pieces.get(key, [])):
                    self._handle.seek(offset)
                    out.write((b"," if index else b"") + self._handle.read(length))
                out.write(b"]")
            return write

        Snapshot.write(document, path, {ident: copy(key) for ident, key in self.encoded.items()})

    def close(self) -> None:
        self._handle.close()
        self.spool.unlink(missing_ok=True)


_FRAME = struct.Struct("<Q")


def _read_frame(handle: Any) -> tuple[Any, ...] | None:
    """The next whole frame, or None (and the position unchanged) when the writer has not finished it yet."""
    start = handle.tell()
    header = handle.read(_FRAME.size)
    if len(header) == _FRAME.size:
        (size,) = _FRAME.unpack(header)
        data = handle.read(size)  # marshal.load on the file would read it piecemeal: 4x slower than loads on bytes
        if len(data) == size:
            return marshal.loads(data)
    handle.seek(start)
    return None


_CHUNK = 500  # list items encoded per piece: the encoder's speed, without the whole document in memory at once


def write_json(handle: Any, value: Any, depth: int = 0, encoded: Mapping[int, Callable[[Any], None]] | None = None) -> None:
    """Compact, sorted JSON streamed to the binary `handle`: the outer mappings and long lists are written piece by
    piece (the whole document never exists as one string). `encoded`: lists (by id) already encoded, with their
    writer."""
    if depth < 3 and isinstance(value, dict):
        handle.write(b"{")
        for index, key in enumerate(sorted(value)):
            handle.write((b"," if index else b"") + compact_sorted(key) + b":")
            write_json(handle, value[key], depth + 1, encoded)
        handle.write(b"}")
    elif encoded and isinstance(value, list) and id(value) in encoded:
        encoded[id(value)](handle)
    elif isinstance(value, list) and len(value) > _CHUNK:
        handle.write(b"[")
        for start in range(0, len(value), _CHUNK):
            handle.write((b"," if start else b"") + compact_sorted(value[start:start + _CHUNK])[1:-1])
        handle.write(b"]")
    else:
        handle.write(compact_sorted(value))


def _dns_errors(entries: Mapping[str, dict[str, Any]]) -> list[str]:
    """The DNS section's errors: whole entries, then each server (or parent server) with its first cause."""
    found = []
    for key, entry in entries.items():
        if entry.get("status") == "error" and entry.get("value") is None:
            found.append(f"dns {key}: {entry['reason']}")
            continue
        value = entry.get("value") or {}
        servers = value.get("servers", {}) if key == "parent" else value
        for name, server in servers.items():
            if server.get("status") == "error" and key == "parent":
                found.append(f"dns parent server {name}: {server['reason']}")
            elif server.get("status") == "error":
                found.append(f"dns server {name}: {server['reason']}")
            elif key == "servers":
                queries = (server.get("value") or {}).get("queries", {})
                reasons = [q["reason"] for q in queries.values() if q["status"] == "error"]
                if reasons:
                    found.append(f"dns server {name}: {len(reasons)} of {len(queries)} queries failed ({reasons[0]})")
    return found


def new_document(target: Mapping[str, Any], mode: str, created: str) -> dict[str, Any]:
    return {"schema": SCHEMA, "created": created, "mode": mode, "target": dict(target), "kube": {}, "azure": {}, "dns": {},
            "tls": {}}


def names(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """`namespace/name` (or `name`) of each object, for messages."""
    result = []
    for obj in objects:
        meta = obj.get("metadata", {})
        result.append(f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name", "?"))
    return result
