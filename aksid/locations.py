"""Where a finding comes from in a repository (static mode): the files and lines of the objects it names.

An object is located by its identity, never by a substring of the message: the candidates are the objects the
check recorded as evidence (kind, namespace and name; an ARM id), and of those the ones the message (or the fix)
names. A pod template stands for its workload. The snapshot's `sources` are keyed `Kind namespace/name` for
Kubernetes objects and by lowercase ARM id for Azure resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aksid.snapshot import POD_TEMPLATE, kube_key

_KUBE = re.compile(r"^kube (?:(?P<group>[^ ]+)/)?(?P<kind>[A-Za-z]+) (?P<name>\S+)$")
_ARM = re.compile(r"^arm \w+ (?P<id>/\S+)$")


def locate(message: str, sources: Mapping[str, Mapping[str, Any]], evidence: Iterable[Mapping[str, Any]] = (),
           fix: str | None = None) -> list[dict[str, Any]]:
    """The sources of the evidence objects the message (or fix) names; every evidence object in the sources when
    the message names none of them by identity."""
    text = f"{message}\n{fix or ''}".lower()
    candidates = _evidence_objects(evidence, sources)
    named = [(key, where) for key, where in candidates if _named(key, where, text)]
    # a role assignment is more specific than the identity or scope its message also names: it comes first
    named.sort(key=lambda kv: "/roleassignments/" not in kv[0])
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for _key, where in named or candidates:
        found.setdefault((where["file"], where.get("line")), _entry(where))
    return list(found.values())


def _evidence_objects(evidence: Iterable[Mapping[str, Any]], sources: Mapping[str, Mapping[str, Any]]
                      ) -> list[tuple[str, Mapping[str, Any]]]:
    """(source key, where) of each object the evidence names that the files hold, in the evidence's order."""
    out: dict[str, Mapping[str, Any]] = {}
    for item in evidence:
        source = str(item.get("source") or "")
        kube, arm = _KUBE.match(source), _ARM.match(source)
        if kube:
            namespace, _, name = kube.group("name").rpartition("/")
            kind = kube.group("kind")
            if kind == "Pod" and name.endswith(POD_TEMPLATE):  # a workload's pod template: the workload's file
                key = next((k for k in sources if k.endswith(f" {namespace}/{name.removesuffix(POD_TEMPLATE)}")
                            and sources[k].get("kind") != "Pod"), None)
            else:
                key = kube_key(kind, namespace or None, name)
            if key in sources:
                out.setdefault(key, sources[key])
        elif arm and arm.group("id").lower() in sources:
            out.setdefault(arm.group("id").lower(), sources[arm.group("id").lower()])
    return list(out.items())


def _named(key: str, where: Mapping[str, Any], text: str) -> bool:
    if key.startswith("/"):  # an ARM resource: its id, its name (a role assignment's GUID) or its address
        address = str(where.get("address") or "").lower()
        return key in text or key.rsplit("/", 1)[-1] in text or bool(address and address.split(" (")[0] in text)
    kind, _, ref = key.partition(" ")
    name = ref.rsplit("/", 1)[-1].lower()
    return (_word(ref.lower(), text) or _word(f"{ref.lower()}{POD_TEMPLATE}", text)
            or _word(f"{kind.lower()} {name}", text))


def _word(needle: str, text: str) -> bool:
    return re.search(rf"(?<![\w./-]){re.escape(needle)}(?![\w/-])", text) is not None


def _entry(where: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"file": where["file"], "line": where.get("line")}
    for extra in ("address", "chart_source", "kind"):
        if where.get(extra):
            entry[extra] = where[extra]
    return entry
