"""Where a finding comes from in a repository (static mode): the files and lines of the objects it names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# When several objects share a namespace/name, the one a reviewer edits comes first.
_KIND_ORDER = ("Deployment", "DaemonSet", "StatefulSet", "CronJob", "Job", "Pod", "Ingress", "ClusterIssuer", "Issuer",
               "Secret", "Service", "ServiceAccount")


def locate(message: str, sources: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sources whose object the message names: `namespace/name` (a pod template names its workload), a
    cluster-scoped `Kind name`, an ARM id, a role assignment's name or a Terraform address."""
    text = message.lower()
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    kube = [(key, where) for key, where in sources.items() if "kind" in where]
    for key, where in sorted(kube, key=lambda kv: _rank(kv[1]["kind"])):
        name = key.rsplit("/", 1)[-1]
        named = (f"{key.lower()}-pod-template" in text or _word(key.lower(), text)
                 or ("/" not in key and _word(f"{where['kind'].lower()} {name.lower()}", text)))
        if named and (where["file"], key.rsplit("/", 1)[0]) not in {(f, k) for f, k in found}:
            found[(where["file"], key)] = _entry(where)
    # a role assignment is more specific than the identity or scope its message also names: it comes first
    for arm_id, where in sorted(sources.items(), key=lambda kv: "/roleassignments/" not in kv[0]):
        if "kind" in where:
            continue
        if arm_id in text or arm_id.rsplit("/", 1)[-1] in text or str(where.get("address", "")).lower() in text:
            found[(where["file"], arm_id)] = _entry(where)
    return list(found.values())


def _rank(kind: str) -> int:
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)


def _word(needle: str, text: str) -> bool:
    return re.search(rf"(?<![\w./-]){re.escape(needle)}(?![\w/-])", text) is not None


def _entry(where: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"file": where["file"], "line": where.get("line")}
    for extra in ("address", "chart_source", "kind"):
        if where.get(extra):
            entry[extra] = where[extra]
    return entry
