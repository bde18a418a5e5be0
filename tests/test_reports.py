"""Reports from one results model: strict JUnit, SARIF 2.1.0, the documented JSON schema, Markdown, HTML; waivers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

from .harness import REPO, aksid, run_suites

RED = "rbac-identity-contributor-on-dns-rg"  # RBAC-002 fails, everything else passes
SCHEMA = json.loads((REPO / "aksid" / "schemas" / "results-v1.json").read_text())


@pytest.fixture(scope="module")
def red_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports = tmp_path_factory.mktemp("red")
    run = aksid("demo", "--scenario", RED, "--reports-dir", str(reports), reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return reports


def test_results_json_matches_its_documented_schema(red_reports: Path) -> None:
    document = json.loads((red_reports / "results.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["failed"] == 1


def test_junit_is_strict_and_carries_ids(red_reports: Path) -> None:
    xml = JUnitXml.fromfile(str(red_reports / "junit.xml"))
    suites = {suite.name: suite for suite in xml}
    assert {"NMI", "BIND", "RBAC"} <= set(suites)
    failures = [(case.name, result) for suite in xml for case in suite for result in case.result
                if isinstance(result, Failure | Error)]
    assert len(failures) == 1 and failures[0][0].startswith("RBAC-002 ")
    assert "Remediation:" in (failures[0][1].text or "")
    # per-testcase <properties>, as pytest's record_property writes them (junitparser exposes them on the element)
    case = next(case for case in suites["RBAC"] if case.name.startswith("RBAC-002"))
    properties = {p.get("name"): p.get("value") for p in case._elem.iter("property")}
    assert properties["check_id"] == "RBAC-002" and properties["severity"] == "critical"


def test_sarif_has_the_2_1_0_required_fields(red_reports: Path) -> None:
    sarif = json.loads((red_reports / "results.sarif").read_text())
    assert sarif["version"] == "2.1.0" and isinstance(sarif["runs"], list) and sarif["runs"]
    run = sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "aksid"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) and "RBAC-002" in rule_ids
    for rule in driver["rules"]:
        assert rule["help"]["text"] and rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
    assert len(run["results"]) == 1
    result = run["results"][0]
    assert result["ruleId"] == "RBAC-002" and driver["rules"][result["ruleIndex"]]["id"] == "RBAC-002"
    assert result["message"]["text"] and result["level"] == "error"
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "identity/example-test-identity"


def test_markdown_puts_failures_first(red_reports: Path) -> None:
    text = (red_reports / "summary.md").read_text()
    assert text.index("RBAC-002") < text.index("| area |")
    assert len(text.splitlines()) < 40, "the summary must stay short enough for a PR comment"


def test_html_is_self_contained_and_shows_the_failure_first(red_reports: Path) -> None:
    html = (red_reports / "report.html").read_text()
    # no external assets: nothing the browser would fetch (text may name URLs, e.g. TLS-004's title)
    # (a link, <a href>, to a check's page is followed only when clicked)
    assert not re.search(r"""(?:src|(?<!<a )href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
                         html, re.IGNORECASE)
    assert "<script" not in html and "<link" not in html
    assert html.index('<tr class="failed" data-check="RBAC-002"') < html.index('<tr class="passed"')


# CI installs chromium (make test): there a missing browser is a failure, not a skip.
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="Debian chromium is not installed (make test installs it)")
def test_html_failures_are_visible_in_a_browser(red_reports: Path, tmp_path: Path) -> None:
    """Headless Chromium renders the page; the failing check's row is in the rendered DOM and on the screenshot."""
    profile = tmp_path / "chromium-profile"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    page = f"file://{red_reports / 'report.html'}"
    dom = subprocess.run(["chromium", *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-check="RBAC-002"' in dom.stdout and "identity/example-test-identity" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", "--window-size=1280,900", page],
                   capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def _waivers(tmp_path: Path, expires: str) -> Path:
    path = tmp_path / f"waivers-{expires}.yaml"
    path.write_text(yaml.safe_dump([
        {"check": "RBAC-002", "subject": "identity/*", "reason": "backup job needs it until TICKET-123", "expires": expires},
        {"check": "NMI-002", "reason": "left over from last quarter", "expires": "2099-12-31"},
    ]))
    return path


def test_waiver_turns_the_red_run_green_and_is_named_everywhere(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for(RED)
    red = run_suites("--aksid-profile", str(sandbox.profile), reports=tmp_path / "red")
    assert red.code == 1
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-waivers", str(_waivers(tmp_path, "2099-01-31")),
                     reports=tmp_path / "waived")
    assert run.code == 0, run.stdout + run.stderr
    waived = [c for c in run.results["checks"] if c["outcome"] == "waived"]
    assert [(c["id"], c["waiver"]["status"]) for c in waived] == [("RBAC-002", "active")]
    assert [w["check"] for w in run.results["stale_waivers"]] == ["NMI-002"]
    for name in ("junit.xml", "summary.md", "report.html", "results.sarif"):
        assert "TICKET-123" in (run.reports / name).read_text(), f"{name} does not name the waiver"
    assert "stale waiver NMI-002" in run.stdout


def test_expired_waiver_turns_it_red_again_loudly(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for(RED)
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-waivers", str(_waivers(tmp_path, "2020-01-31")),
                     reports=tmp_path / "expired")
    assert run.code == 1
    failed = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert [(c["id"], c["waiver"]["status"]) for c in failed] == [("RBAC-002", "expired")]
    assert "EXPIRED WAIVER RBAC-002" in run.stdout


def test_fail_on_threshold(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("rbac-control-plane-operator-missing")  # RBAC-005, severity medium
    assert run_suites("--aksid-profile", str(sandbox.profile), "--aksid-fail-on", "high", reports=tmp_path / "a").code == 0
    assert run_suites("--aksid-profile", str(sandbox.profile), "--aksid-fail-on", "medium", reports=tmp_path / "b").code == 1


def test_malformed_waiver_file_is_a_usage_error(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("healthy")
    bad = tmp_path / "w.yaml"
    bad.write_text(yaml.safe_dump([{"check": "RBAC-002", "expires": "2099-01-01"}]))
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-waivers", str(bad), reports=tmp_path / "r")
    assert run.code == 4 and "needs reason" in run.stderr
    assert sandbox.requests() == []
