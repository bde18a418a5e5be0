"""What a check judged: evidence items naming where each value sits in the snapshot, and the fix for what failed.

A check asks for the `evidence` fixture and records what it compared, as the snapshot holds it:

    evidence.kube(pod, "metadata.labels.aadpodidbinding")      # kube v1/Pod kube-addons/external-dns-7d9f
    evidence.arm("roleAssignments", assignment, "properties.scope")
    evidence.dns(server, "hello.example.test. A", answer, "answers")
    evidence.tls("handshake", handshake, "protocol")
    evidence.target(target, "acme_issuer")                     # a setting the value was compared with
    evidence.fix(f"az role assignment delete --ids {assignment['id']}")

Each item is `{"source", "field", "value"}`; `source` names the snapshot entry (and the object in it), `field` the
path inside it (`a.b[0]["key.with.dots"]`, `#` for a list's length). Large values (certificates) are kept as
`{"sha256", "size"}` of their JSON. `resolve(document, source, field)` reads the value back from a snapshot
document, so a test (tests/test_evidence.py) can prove every item says what the snapshot says.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from aksid.redact import REDACTED, looks_secret

EVIDENCE_KEY = pytest.StashKey["Evidence"]()
LIMIT = 40  # items kept per result: a check over 20,000 pods names what it looked at, not every pod
LARGE = 400  # characters of JSON above which a value is kept as its digest
_MISSING = object()
_TOKEN = re.compile(r'\.?([^.\[\]"#]+)|\[(\d+)\]|\["([^"]*)"\]|\.?(#)$')
_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")


def path_text(*parts: str | int) -> str:
    """`metadata.labels["app.kubernetes.io/name"]` from ("metadata", "labels", "app.kubernetes.io/name")."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "#":
            text += ".#" if text else "#"
        elif _PLAIN.match(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


def path_parts(field: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    while position < len(field):
        match = _TOKEN.match(field, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read the field path {field!r} at {position}")
        plain, index, quoted, length = match.groups()
        parts.append(int(index) if index is not None else (plain if plain is not None else
                                                           (quoted if quoted is not None else str(length))))
        position = match.end()
    return parts


def read(value: Any, field: str) -> Any:
    """The value at `field` inside `value`; None where the path leads nowhere (absence is evidence too)."""
    for part in path_parts(field) if field else []:
        if part == "#":
            return len(value) if isinstance(value, (list, dict)) else None
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def kept(value: Any) -> Any:
    """The value as an evidence item holds it: itself, or the digest of a large one."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= LARGE:
        return json.loads(text)  # as JSON holds it: tuples become lists, whatever process reads it back
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "size": len(text)}


def kube_source(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    return f"kube {obj.get('apiVersion')}/{obj.get('kind')} {name}"


class Evidence:
    """What one check (one subject) compared, and the fix for its failure, filled with the observed ids."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.items: list[dict[str, Any]] = []
        self.omitted = 0
        self.fix_text: str | None = None
        self.fix_on_error = False
        self._limit = limit

    def add(self, source: str, field: str, value: Any = _MISSING, within: Any = None, note: str | None = None) -> Any:
        """One item; the value is read from `within` at `field` unless given. Returns the value, so a check can
        record and use it in one go."""
        if value is _MISSING:
            value = read(within, field)
        last = path_parts(field)[-1] if field else ""
        shown = value
        if isinstance(last, str) and looks_secret(last) and isinstance(value, str) and value not in ("", REDACTED):
            shown = REDACTED  # the snapshot redacts these already; a check must never be the way one leaks
        if len(self.items) >= self._limit:
            self.omitted += 1
            return value
        item = {"source": source, "field": field, "value": kept(shown)}
        if note:
            item["note"] = note
        if item not in self.items:
            self.items.append(item)
        return value

    # -- one method per snapshot section --------------------------------------------------------

    def kube(self, obj: Mapping[str, Any], *fields: str, note: str | None = None) -> None:
        """Fields of one Kubernetes object (as listed: it carries apiVersion, kind and metadata)."""
        for field in fields or ("metadata.name",):
            self.add(kube_source(obj), field, within=obj, note=note)

    def kube_condition(self, obj: Mapping[str, Any], kind: str, *fields: str) -> None:
        """The `status.conditions` entry of one type (Ready, Established...): its status, and `fields` of it."""
        conditions = (obj.get("status") or {}).get("conditions") or []
        index = next((i for i, c in enumerate(conditions) if isinstance(c, Mapping) and c.get("type") == kind), None)
        if index is None:
            self.add(kube_source(obj), "status.conditions", within=obj, note=f"no {kind} condition")
            return
        for field in ("status", *fields):
            self.add(kube_source(obj), f"status.conditions[{index}].{field}", within=obj, note=f"{kind} condition")

    def kube_count(self, kind_key: str, objects: list[Any], namespace: str | None = None,
                   note: str | None = None) -> None:
        """How many objects of a kind (in one namespace) were looked at (`#` of the listing): the evidence of an
        absence. Source `kube v1/Pod` (every namespace) or `kube v1/Pod kube-addons/*`."""
        self.add(f"kube {kind_key}" + (f" {namespace}/*" if namespace else ""), "#", len(objects), note=note)

    def arm(self, entry: str, resource: Mapping[str, Any], *fields: str, note: str | None = None) -> None:
        """Fields of one ARM resource of a snapshot entry (managedCluster, dnsZone, recordSets, identities,
        roleAssignments, roleDefinitions, federatedCredentials, scaleSets), named by its id."""
        for field in fields or ("id",):
            self.add(f"arm {entry} {resource.get('id')}", field, within=resource, note=note)

    def arm_count(self, entry: str, resources: list[Any], note: str | None = None) -> None:
        self.add(f"arm {entry}", "#", len(resources), note=note)

    def dns(self, server: str, question: str | None, value: Mapping[str, Any], *fields: str) -> None:
        """A name server's answer to a question (`hello.example.test. A`), or with question None the server itself."""
        source = f"dns {server}" + (f" {question}" if question else "")
        for field in fields:
            self.add(source, field, within=value)

    def dns_answer(self, document: Mapping[str, Any], server: str, name: str, rdtype: str, *fields: str) -> None:
        """A name server's answer as `snapshot.dns.answer` finds it (names in any case, trailing dot or not)."""
        servers = (((document.get("dns") or {}).get("servers") or {}).get("value")) or {}
        key = next((k for k in servers if _same(k.rstrip("."), server.rstrip("."))), server)
        found = (servers.get(key) or {}).get("value") or {}
        wanted = f"{name.rstrip('.')}. {rdtype.upper()}"
        question = next((q for q in found.get("queries") or {} if q.lower() == wanted.lower()), wanted)
        answer = ((found.get("queries") or {}).get(question) or {}).get("value") or {}
        self.dns(key, question, answer, *fields)
        self.dns(key, None, found, "address")

    def dns_parent(self, label: str, value: Mapping[str, Any], *fields: str) -> None:
        """What one server of the parent zone said about the delegation."""
        for field in fields:
            self.add(f"dns-parent {label}", field, within=value)

    def tls(self, entry: str, value: Mapping[str, Any], *fields: str) -> None:
        """The TLS evidence `handshake`, `legacy`, `http` or `page`."""
        for field in fields:
            self.add(f"tls {entry}", field, within=value)

    def decrypted(self, entry: str, value: Mapping[str, Any], *fields: str) -> None:
        """What the collector decrypted (`externalDnsOwnership`: external-dns' encrypted ownership records)."""
        for field in fields:
            self.add(f"decrypted {entry}", field, within=value)

    def provision(self, section: Mapping[str, Any], *fields: str) -> None:
        """Fields of the snapshot's provision section (probes, canary, teardown)."""
        for field in fields:
            self.add("provision", field, within=section)

    def target(self, target: Any, *names: str) -> None:
        """Settings a value was compared with (`acme_issuer`, `zone_id`...)."""
        for name in names:
            self.add("target", name, getattr(target, name))

    def fix(self, text: str, on_error: bool = False) -> None:
        """The remediation with the observed objects and ids; the last one set before a failure is reported.
        With `on_error`, it is also the fix if the check cannot verify from here on (a setting to correct)."""
        self.fix_text = text
        self.fix_on_error = on_error

    def fix_for(self, outcome: str) -> str | None:
        if outcome in ("failed", "waived") or (outcome == "error" and self.fix_on_error):
            return self.fix_text
        return None

    def record(self) -> list[dict[str, Any]]:
        return [*self.items, *([{"omitted": self.omitted}] if self.omitted else [])]


# -- reading an item back from a snapshot document ----------------------------------------------------------


class Unresolved(LookupError):
    """An evidence item names something the snapshot does not hold."""


def _same(a: Any, b: Any) -> bool:
    return str(a).rstrip("/").lower() == str(b).rstrip("/").lower()


def _entry_value(section: Mapping[str, Any], key: str) -> Any:
    if key not in section:
        raise Unresolved(f"no entry {key}")
    return section[key].get("value")


def located(document: Mapping[str, Any], source: str) -> Any:
    """The snapshot value an item's source names (the object, answer or section the field is read in)."""
    kind, _, rest = source.partition(" ")
    if kind == "kube":
        key, _, name = rest.partition(" ")
        items = _entry_value(document.get("kube") or {}, key) or []
        if not name:
            return items  # an absent kind lists nothing: its count is 0
        namespace, _, plain = name.rpartition("/")
        if plain == "*":
            return [obj for obj in items if (obj.get("metadata") or {}).get("namespace") == namespace]
        for obj in items:
            meta = obj.get("metadata") or {}
            if meta.get("name") == plain and (meta.get("namespace") or "") == namespace:
                return obj
        raise Unresolved(f"no {key} {name}")
    if kind == "arm":
        entry, _, resource_id = rest.partition(" ")
        value = _entry_value(document.get("azure") or {}, entry)
        if not resource_id:
            return value
        candidates = value if isinstance(value, list) else (
            [c for group in value.values() for c in group] if entry == "federatedCredentials" else [value])
        for resource in candidates:
            if isinstance(resource, Mapping) and _same(resource.get("id"), resource_id):
                return resource
        raise Unresolved(f"no {entry} resource {resource_id}")
    if kind == "dns":
        server, _, question = rest.partition(" ")
        servers = _entry_value(document.get("dns") or {}, "servers") or {}
        found = servers.get(server)
        if found is None:
            raise Unresolved(f"no name server {server}")
        value = found.get("value") or {}
        if not question:
            return value
        answer = (value.get("queries") or {}).get(question)
        if answer is None:
            raise Unresolved(f"{server} was not asked {question}")
        return answer.get("value")
    if kind == "dns-parent":
        parent = _entry_value(document.get("dns") or {}, "parent") or {}
        return ((parent.get("servers") or {}).get(rest) or {}).get("value")
    if kind == "tls":
        return _entry_value(document.get("tls") or {}, rest)
    if kind == "decrypted":
        return _entry_value(document.get("decrypted") or {}, rest)
    if kind == "provision":
        return document.get("provision")
    if kind == "target":
        return _target_of(document)
    if kind == "snapshot":
        return {key: value for key, value in document.items() if not isinstance(value, (dict, list))}
    raise Unresolved(f"unknown source {source!r}")


def _target_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The target's settings and the values derived from them (demo_fqdn, zone_id...), as the run saw them."""
    from aksid.snapshot import Snapshot
    from aksid.snapshot_target import target_from_snapshot

    target = target_from_snapshot(Snapshot(dict(document)))
    return {name: getattr(target, name) for name in dir(target) if not name.startswith("_")
            and not callable(getattr(target, name))}


def resolve(document: Mapping[str, Any], source: str, field: str) -> Any:
    """The value an evidence item must hold, read from the snapshot document (digested like `kept`)."""
    return kept(read(located(document, source), field))
