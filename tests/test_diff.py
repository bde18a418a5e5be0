"""`aksid diff`, `--aksid-baseline` and `aksid history`: what changed since last night, in every report."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aksid.diff import diff_paths

from .harness import aksid


def test_two_healthy_sandboxes_make_no_change(tmp_path: Path, base_reports: Any) -> None:
    """A second sandbox has new pebble roots, ports, uids and timestamps: none of it is a change."""
    again = aksid("demo", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert again.code == 0, again.stdout + again.stderr
    for old, new in ((base_reports() / "snapshot.json", tmp_path / "snapshot.json"), (base_reports(), tmp_path)):
        run = aksid("diff", str(old), str(new), reports=tmp_path)
        assert run.code == 0 and run.stdout.strip().endswith("no change"), run.stdout + run.stderr
    as_json = json.loads(aksid("diff", str(base_reports()), str(tmp_path), "--format", "json", reports=tmp_path).stdout)
    assert as_json["changed"] is False and as_json["changes"] == []


def test_baseline_marks_the_newly_red_check_new_in_every_report(tmp_path: Path, base_reports: Any) -> None:
    run = aksid("demo", "--scenario", "tls-staging-chain", "--reports-dir", str(tmp_path), "--",
                "--aksid-baseline", str(base_reports() / "results.json"), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    results = run.results
    assert [(c["id"], c["subject"]) for c in results["checks"] if c["new"]] == [("TLS-001", "host/hello.example.test")]
    assert results["baseline"]["newly_red"][0]["id"] == "TLS-001"
    texts = [c["text"] for c in results["baseline"]["changes"]]
    assert any("served certificate issuer changed" in t for t in texts), texts
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "### Changes since the baseline" in summary and "🆕 `TLS-001" in summary, summary
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Changes since the baseline" in html and 'class="new" data-check="TLS-001"' in html
    assert '<property name="new" value="true"' in (tmp_path / "junit.xml").read_text(encoding="utf-8")
    sarif = json.loads((tmp_path / "results.sarif").read_text(encoding="utf-8"))
    assert [r["baselineState"] for r in sarif["runs"][0]["results"]] == ["new"]
    # The same run against itself: nothing new, no change.
    again = diff_paths(tmp_path / "results.json", tmp_path / "results.json")
    assert again.changes == [] and again.newly_red == []


def test_diff_of_results_names_the_check_that_turned_red(tmp_path: Path, base_reports: Any) -> None:
    red = json.loads((base_reports() / "results.json").read_text(encoding="utf-8"))
    entry = next(c for c in red["checks"] if c["id"] == "DNS-002")
    entry["outcome"] = "failed"
    (tmp_path / "results.json").write_text(json.dumps(red), encoding="utf-8")
    run = aksid("diff", str(base_reports() / "results.json"), str(tmp_path / "results.json"), "--format", "markdown",
                reports=tmp_path)
    assert run.code == 0, run.stderr
    assert "### DNS-002" in run.stdout and f"DNS-002 [{entry['subject']}] turned red: passed → failed" in run.stdout


def test_diff_of_something_else_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    run = aksid("diff", str(tmp_path / "x.json"), str(tmp_path / "missing.json"), reports=tmp_path)
    assert run.code == 4 and run.stderr.startswith("aksid diff: ") and "Traceback" not in run.stderr


class _Cells(HTMLParser):
    """data-check/data-subject rows and their cells' (night, class)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.nights: list[str] = []
        self._row: tuple[str, str] | None = None
        self._head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("data-check"):
            self._row = (str(values["data-check"]), str(values["data-subject"]))
            self.rows[self._row] = []
        elif tag == "td" and self._row and values.get("data-night") is not None:
            self.rows[self._row].append((str(values["data-night"]), str(values.get("class"))))
        self._head = tag == "th" and values.get("data-night") is not None

    def handle_data(self, data: str) -> None:
        if self._head:
            self.nights.append(data)
            self._head = False


def test_history_shows_the_red_night_in_its_column(tmp_path: Path, base_reports: Any) -> None:
    source = json.loads((base_reports() / "results.json").read_text(encoding="utf-8"))
    for night in range(5):
        document = json.loads(json.dumps(source))
        document["started"] = f"2026-11-2{night}T02:00:00+00:00"
        if night == 3:
            next(c for c in document["checks"] if c["id"] == "TLS-001")["outcome"] = "failed"
        folder = tmp_path / "nights" / f"run-{4 - night}"  # folder names in the opposite order: `started` decides
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(document), encoding="utf-8")
    shutil.copy(base_reports() / "snapshot.json", tmp_path / "nights" / "snapshot.json")  # not results: ignored
    out = tmp_path / "history.html"
    run = aksid("history", str(tmp_path / "nights"), "--out", str(out), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    cells = _Cells()
    cells.feed(page)
    assert cells.nights == [f"2026-11-2{n}T02:00:00+00:00" for n in range(5)]
    tls = cells.rows[("TLS-001", "host/hello.example.test")]
    assert [css for _, css in tls] == ["cell passed"] * 3 + ["cell failed", "cell passed"]
    assert all(css == "cell passed" for _, css in cells.rows[("DNS-002", "record/hello.example.test")])
    assert '<tr class="flapping" data-check="TLS-001"' in page
