"""One results model (aksid.results/v1), its JSON form and its terminal summary."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from aksid.check_info import SEVERITIES
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


Line = tuple[str, dict[str, bool]]  # a line and its style, as pytest's terminal reporter's write_line takes them
_INDENT = "  "
_STYLE: dict[str, dict[str, bool]] = {"failed": {"red": True, "bold": True}, "error": {"red": True},
                                      "waived": {"yellow": True}}


def terminal_lines(results: list[CheckResult]) -> list[str]:
    """The terminal report's text (`aksid merge` prints it; a run prints report_lines with their styles)."""
    return [line for line, _style in report_lines(results)]


def report_lines(results: Iterable[CheckResult]) -> list[Line]:
    """What an on-call engineer reads first: one block per failed or errored result, then the totals.

    Each block says what is wrong (ID, severity, subject), why (the check's sentence), how to fix it (the fix filled
    with the observed ids, as results.json carries it) and, in static mode, where (file:line); then the totals by
    area and by severity, as kube-bench closes its report with its Remediations section and totals. The styles are
    for pytest's terminal writer, which drops them when stdout is not a terminal (a CI log: no ANSI escapes)."""
    results = list(results)
    return [*finding_blocks(results), *totals(results)]


def finding_blocks(results: Iterable[CheckResult]) -> list[Line]:
    """One block per failed or errored result (most urgent first), one line per waived one."""
    results = list(results)
    fleet = is_fleet(results)
    lines: list[Line] = []
    for result in by_urgency(results):
        if result.outcome not in _STYLE:
            continue
        head = f"{result.outcome.upper()} {result.id} ({result.severity}) [{labelled_subject(result, fleet)}]"
        if result.outcome == "waived":  # accepted on purpose: one line, the message carries the waiver's reason
            lines.append((f"{head} {result.message}", _STYLE["waived"]))
            continue
        lines.append((head, _STYLE[result.outcome]))
        lines += _indented(result.message)
        if result.outcome == "failed":  # an error could not verify: the check's remediation is not its fix
            lines += _indented(result.fix or result.remediation, first="fix: ")
        lines += [(f"{_INDENT}at {where_text(place)}", {}) for place in result.locations or []]
    return lines


def _indented(text: str, first: str = "") -> list[Line]:
    """`text` under its block's head; the lines of a multi-line fix (several commands) aligned under the first."""
    rows = text.strip().splitlines() or [""]
    return [(f"{_INDENT}{first if index == 0 else ' ' * len(first)}{row}", {}) for index, row in enumerate(rows)]


def totals(results: Iterable[CheckResult]) -> list[Line]:
    """How many results of each outcome, per area and per severity (most severe first)."""
    results = list(results)
    areas = by_area(results)
    severities = [(s, [r for r in results if r.severity == s]) for s in reversed(SEVERITIES)]
    width = max(len(label) for label in [*areas, *SEVERITIES])
    return [("totals by area", {"bold": True}), *(_count_line(area, group, width) for area, group in areas.items()),
            ("totals by severity", {"bold": True}), *(_count_line(s, group, width) for s, group in severities if group)]


def _count_line(label: str, group: list[CheckResult], width: int) -> Line:
    counts = summary(group)
    parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
    return f"{_INDENT}{label:<{width}}  {parts}", ({"red": True} if counts["failed"] or counts["error"] else {})
