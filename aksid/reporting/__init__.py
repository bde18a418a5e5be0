"""Every report is written from the same results: JSON, JUnit, Markdown, HTML, SARIF."""

from __future__ import annotations

from pathlib import Path

from aksid.reporting.chain import Sources
from aksid.reporting.html import write_html
from aksid.reporting.junit import write_junit
from aksid.reporting.markdown import write_markdown
from aksid.reporting.sarif import write_sarif
from aksid.results import CheckResult, write_json
from aksid.snapshot import Snapshot

REPORT_FILES = ("results.json", "junit.xml", "summary.md", "report.html", "results.sarif")


def write_reports(directory: Path, results: list[CheckResult], meta: dict[str, object],
                  snapshots: Snapshot | Sources | None = None) -> list[Path]:
    """Every format; with `snapshots` (the run's, or {target name: snapshot, or why it is missing}) report.html
    opens with the evidence chain drawn from them."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "results.json", results, meta)
    write_junit(directory / "junit.xml", results, meta)
    write_markdown(directory / "summary.md", results, meta)
    write_html(directory / "report.html", results, meta, snapshots)
    write_sarif(directory / "results.sarif", results, meta)
    return [directory / name for name in REPORT_FILES]
