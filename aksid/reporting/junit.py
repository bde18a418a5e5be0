"""JUnit XML: one <testsuite> per area, check ID and severity as properties, `error` outcomes as <error>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aksid.reporting.check_links import page_url
from aksid.results import CheckResult, by_area, evidence_lines, is_fleet, labelled_subject, summary


def write_junit(path: Path, results: list[CheckResult], meta: dict[str, object] | None = None) -> None:
    root = ET.Element("testsuites", name="aksid")
    fleet = is_fleet(results)
    for area, area_results in by_area(results).items():
        counts = summary(area_results)
        suite = ET.SubElement(
            root, "testsuite", name=area, tests=str(len(area_results)), failures=str(counts["failed"]),
            errors=str(counts["error"]), skipped=str(counts["skipped"] + counts["waived"]),
        )
        for result in area_results:
            case = ET.SubElement(suite, "testcase", classname=f"aksid.{area}",
                                 name=f"{result.id} {labelled_subject(result, fleet)}")
            props = ET.SubElement(case, "properties")
            for name, value in (("check_id", result.id), ("severity", result.severity), ("nodeid", result.nodeid),
                                ("target", result.target or "")):
                ET.SubElement(props, "property", name=name, value=value)
            page = page_url(result.id, meta)  # the check's page (docs/checks/<ID>.md): why it matters, how to fix
            if page:
                ET.SubElement(props, "property", name="help_url", value=page)
            if result.waiver:
                waiver = f"{result.waiver['reason']} (expires {result.waiver['expires']})"
                ET.SubElement(props, "property", name="waiver", value=waiver)
            if result.new:
                ET.SubElement(props, "property", name="new", value="true")
            if result.outcome == "failed":
                node = ET.SubElement(case, "failure", message=result.message)
                node.text = f"{result.message}\n\nRemediation: {result.remediation}" + (
                    f"\n\nFix: {result.fix}" if result.fix else "") + (f"\n\nAbout {result.id}: {page}" if page else "")
            elif result.outcome == "error":
                ET.SubElement(case, "error", message=result.message).text = result.message
            elif result.outcome in ("skipped", "waived"):
                ET.SubElement(case, "skipped", message=result.message)
            if result.evidence:
                ET.SubElement(case, "system-out").text = "evidence:\n" + "\n".join(evidence_lines(result))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


