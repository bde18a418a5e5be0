"""One results model (aksid.results/v1), its JSON form and its terminal summary."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from aksid.jsonfile import indented

RESULTS_SCHEMA = "aksid.results/v1"
OUTCOMES = ("passed", "failed", "error", "skipped", "waived")
# What a reader must look at first.
OUTCOME_ORDER = {"failed": 0, "error": 1, "waived": 2, "skipped": 3, "passed": 4}


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    severity: str
    area: str
    subject: str
    outcome: str
    message: str
    remediation: str
    nodeid: str
    waiver: dict[str, object] | None = None  # the waiver that applied (or expired), when one matched
    locations: list[dict[str, object]] | None = None  # static mode: files and lines of the objects at fault
    target: str | None = None  # the environment (a fleet member's name, or the one target's)
    new: bool = False  # red now, not red in the --aksid-baseline run
    evidence: list[dict[str, object]] | None = None  # what the check judged, where it sits in the snapshot (aksid.evidence)
    fix: str | None = None  # failed: the remediation filled with the observed objects and ids


_FIELDS = tuple(f.name for f in fields(CheckResult))


def summary(results: Iterable[CheckResult]) -> dict[str, int]:
    counts = Counter(result.outcome for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


def results_document(results: list[CheckResult], meta: dict[str, object]) -> dict[str, object]:
    return {
        "schema": RESULTS_SCHEMA,
        **meta,
        "summary": {"total": len(results), **summary(results)},
        # each result's fields as they are: dataclasses.asdict would deep-copy every evidence item first
        "checks": [{name: getattr(result, name) for name in _FIELDS} for result in sorted(results, key=_order)],
    }


def _order(result: CheckResult) -> tuple[str, str, str]:
    return (result.id, result.subject, result.nodeid)


def by_urgency(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Failures first, then errors, waived, skipped, passed; each group by check and subject."""
    return sorted(results, key=lambda r: (OUTCOME_ORDER.get(r.outcome, 9), *_order(r)))


def by_area(results: Iterable[CheckResult]) -> dict[str, list[CheckResult]]:
    grouped: dict[str, list[CheckResult]] = {}
    for result in sorted(results, key=_order):
        grouped.setdefault(result.area, []).append(result)
    return grouped


def write_json(path: Path, results: list[CheckResult], meta: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(indented(results_document(results, meta)))


def is_fleet(results: Iterable[CheckResult]) -> bool:
    return len({result.target for result in results}) > 1


def labelled_subject(result: CheckResult, fleet: bool) -> str:
    """The subject, with its environment's name in front when the results cover several."""
    return f"{result.target}: {result.subject}" if fleet else result.subject


def where_text(place: dict[str, object]) -> str:
    """`charts/x.yaml:12 (external-dns/templates/deployment.yaml)` or `plan.json:40 azurerm_role_assignment.x`."""
    line = f":{place['line']}" if place.get("line") else ""
    extra = place.get("address") or place.get("chart_source")
    return f"{place['file']}{line}" + (f" ({extra})" if extra else "")


def evidence_lines(result: CheckResult) -> list[str]:
    """One line per evidence item: `source field = value` (JUnit system-out, HTML details)."""
    lines = []
    for item in result.evidence or []:
        if "source" not in item:
            lines.append(f"({item.get('omitted')} more items omitted)")
            continue
        note = f"  ({item['note']})" if item.get("note") else ""
        lines.append(f"{item['source']} {item['field']} = {json.dumps(item.get('value'), sort_keys=True)}{note}")
    return lines


def terminal_lines(results: list[CheckResult]) -> list[str]:
    """The short summary: one line per area, then one line per failure or error."""
    lines = []
    for area, area_results in by_area(results).items():
        counts = summary(area_results)
        parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
        lines.append(f"{area:<6} {', '.join(parts)}")
    fleet = is_fleet(results)
    for result in by_urgency(results):
        if result.outcome in ("failed", "error", "waived"):
            lines.append(f"{result.outcome.upper():<6} {result.id} [{labelled_subject(result, fleet)}] {result.message}")
            lines += [f"{'':<7}at {where_text(place)}" for place in result.locations or []]
    return lines
