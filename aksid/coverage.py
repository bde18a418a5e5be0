"""How much of the evidence a run could collect, read from its snapshot (so a replay reports the same).

Units: each Kubernetes kind listed, each ARM read, each DNS server asked (the parent's and the zone's),
each TLS probe. A unit is collected when the answer is evidence (`ok`, or `absent`: the API said it does
not exist); `error` is not; what a run chose not to read (`skipped`, e.g. Secrets without
--aksid-read-secrets) is not counted at all. `--aksid-min-coverage` compares the percentage (kubescape's
--fail-coverage-below, for evidence).

A unit is named as the checks name what they read (aksid.units: `apps/v1/DaemonSet` is `kube:DaemonSet`), so an
area that misses a unit also says which checks read one (`affects`, in catalogue order): those that could not be
judged on full evidence. A complete area has no `affects`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aksid.units import unit_of

AREAS = (("kube", "kinds"), ("azure", "ARM reads"), ("dns", "DNS servers"), ("tls", "TLS probes"))
_COLLECTED = ("ok", "absent")


def coverage(document: Mapping[str, Any]) -> dict[str, Any]:
    """{"percent", "areas": {area: {"collected", "total", "missing": [names], and when something is missing
    "affects": [check ids]}}} of one snapshot document."""
    areas: dict[str, dict[str, Any]] = {}
    for section, _ in AREAS:
        units = _dns_units(document.get("dns") or {}) if section == "dns" else _entry_units(document.get(section) or {})
        counted = {name: status for name, status in units.items() if status != "skipped"}
        missing = sorted(name for name, status in counted.items() if status not in _COLLECTED)
        areas[section] = _area(section, len(counted) - len(missing), len(counted), missing)
    return _report(areas)


def merged(coverages: list[dict[str, Any]]) -> dict[str, Any]:
    """A fleet's coverage: every target's units together."""
    areas: dict[str, dict[str, Any]] = {}
    for section, _ in AREAS:
        parts = [c["areas"][section] for c in coverages]
        areas[section] = _area(section, sum(p["collected"] for p in parts), sum(p["total"] for p in parts),
                               sorted({m for p in parts for m in p["missing"]}))
    return _report(areas)


def _area(section: str, collected: int, total: int, missing: list[str]) -> dict[str, Any]:
    area: dict[str, Any] = {"collected": collected, "total": total, "missing": missing}
    if missing:
        area["affects"] = affects(section, missing)
    return area


def affects(section: str, missing: Iterable[str]) -> list[str]:
    """The checks that read a unit of `section` the coverage names as missing (`apps/v1/ReplicaSet`,
    `servers ns1-01.azure-dns.com.`), in catalogue order: the checks declare their reads (aksid.catalogue)."""
    units = {unit_of(section, name) for name in missing}
    if not units:
        return []
    from aksid.catalogue import builtin  # the suites are read only when something is missing

    return [entry.id for entry in builtin() if units & set(entry.reads)]


def _report(areas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total = sum(area["total"] for area in areas.values())
    collected = sum(area["collected"] for area in areas.values())
    return {"percent": round(100.0 * collected / total, 1) if total else 100.0, "areas": areas}


def describe(report: Mapping[str, Any]) -> str:
    """`evidence collected: 96.9% (kinds 20/21, ARM reads 6/6, DNS servers 3/3, TLS probes 4/4)`"""
    parts = [f"{label} {report['areas'][section]['collected']}/{report['areas'][section]['total']}"
             for section, label in AREAS]
    return f"evidence collected: {report['percent']:g}% ({', '.join(parts)})"


def describe_retries(collection: Mapping[str, Any] | None) -> str | None:
    """`3 retries: kube /api/v1/pods 503 x1, ...`, or None when the collection needed none."""
    retries = (collection or {}).get("retries") or []
    if not retries:
        return None
    count = sum(int(r["count"]) for r in retries)
    what = ", ".join(f"{r['family']} {r['endpoint']} {r['cause']} x{r['count']}" for r in retries)
    return f"{count} {'retry' if count == 1 else 'retries'} needed: {what}"


def _entry_units(section: Mapping[str, Any]) -> dict[str, str]:
    return {str(key): str((entry or {}).get("status")) for key, entry in section.items()}


def _dns_units(section: Mapping[str, Any]) -> dict[str, str]:
    units: dict[str, str] = {}
    for key in ("parent", "servers"):
        entry = section.get(key) or {}
        value = entry.get("value")
        servers = (value or {}).get("servers") if key == "parent" else value
        if not isinstance(servers, Mapping) or not servers:
            units[key] = str(entry.get("status"))  # nothing to ask (no name servers known): one unit, as it stands
            continue
        for name, server in servers.items():
            units[f"{key} {name}"] = _server_status(server) if key == "servers" else str(server.get("status"))
    return units


def _server_status(server: Mapping[str, Any]) -> str:
    """A zone server counts as collected when it answered at least one query."""
    if server.get("status") != "ok":
        return str(server.get("status"))
    queries = ((server.get("value") or {}).get("queries") or {}).values()
    return "ok" if any(q.get("status") == "ok" or q.get("value") for q in queries) else "error"
