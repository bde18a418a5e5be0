"""One results model, written as results.json (aksid.results/v1) and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_SCHEMA = "aksid.results/v1"
OUTCOMES = ("passed", "failed", "error", "skipped")


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


def summary(results: Iterable[CheckResult]) -> dict[str, int]:
    counts = Counter(result.outcome for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


def results_document(results: list[CheckResult], meta: dict[str, object]) -> dict[str, object]:
    return {
        "schema": RESULTS_SCHEMA,
        **meta,
        "summary": {"total": len(results), **summary(results)},
        "checks": [asdict(result) for result in sorted(results, key=_order)],
    }


def _order(result: CheckResult) -> tuple[str, str, str]:
    return (result.id, result.subject, result.nodeid)


def write_json(path: Path, results: list[CheckResult], meta: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_document(results, meta), indent=2) + "\n", encoding="utf-8")


def write_junit(path: Path, results: list[CheckResult]) -> None:
    """One <testsuite> per area; check id and severity as properties; `error` outcomes as <error>."""
    root = ET.Element("testsuites", name="aksid")
    by_area: dict[str, list[CheckResult]] = {}
    for result in sorted(results, key=_order):
        by_area.setdefault(result.area, []).append(result)
    for area, area_results in sorted(by_area.items()):
        counts = summary(area_results)
        suite = ET.SubElement(
            root, "testsuite", name=area, tests=str(len(area_results)), failures=str(counts["failed"]),
            errors=str(counts["error"]), skipped=str(counts["skipped"]),
        )
        for result in area_results:
            case = ET.SubElement(suite, "testcase", classname=f"aksid.{area}", name=f"{result.id} {result.subject}")
            props = ET.SubElement(case, "properties")
            for name, value in (("check_id", result.id), ("severity", result.severity), ("nodeid", result.nodeid)):
                ET.SubElement(props, "property", name=name, value=value)
            if result.outcome == "failed":
                node = ET.SubElement(case, "failure", message=result.message)
                node.text = f"{result.message}\n\nRemediation: {result.remediation}"
            elif result.outcome == "error":
                ET.SubElement(case, "error", message=result.message).text = result.message
            elif result.outcome == "skipped":
                ET.SubElement(case, "skipped", message=result.message)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def terminal_lines(results: list[CheckResult]) -> list[str]:
    """The short summary: one line per area, then one line per failure or error."""
    lines = []
    by_area: dict[str, list[CheckResult]] = {}
    for result in results:
        by_area.setdefault(result.area, []).append(result)
    for area, area_results in sorted(by_area.items()):
        counts = summary(area_results)
        parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
        lines.append(f"{area:<6} {', '.join(parts)}")
    for result in sorted(results, key=_order):
        if result.outcome in ("failed", "error"):
            lines.append(f"{result.outcome.upper():<6} {result.id} [{result.subject}] {result.message}")
    return lines
