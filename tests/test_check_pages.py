"""A page per check (docs/checks/<ID>.md), generated from the markers and the scenarios, in step with the code like
the README's catalogue; every report links to it, SARIF carries it as each rule's help."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aksid import check_pages
from aksid.catalogue import builtin, load_catalogue
from aksid.check_pages import GENERATED, bundled_page, page_text, pages, red_scenarios, render_page
from aksid.reporting import write_reports
from aksid.reporting.check_links import ENV, declared_base_url, docs_base_url, page_url
from aksid.reporting.sarif import render_sarif
from aksid.results import CheckResult

from .harness import REPO, aksid

DOCS = REPO / "docs" / "checks"
BASE = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Documentation"]


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def test_docs_checks_match_the_markers_and_the_scenarios() -> None:
    wanted = pages(load_catalogue())
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in DOCS.glob("*.md")}
    assert sorted(on_disk) == sorted(wanted), "docs/checks drifted: regenerate with `aksid checks --pages docs/checks`"
    drifted = [name for name, text in wanted.items() if on_disk[name] != text]
    assert drifted == [], f"docs/checks drifted ({', '.join(drifted)}): regenerate with `aksid checks --pages docs/checks`"


def test_a_page_says_what_why_evidence_fix_and_red_scenario() -> None:
    page = bundled_page("RBAC-003")
    assert page is not None and page.startswith("# RBAC-003: the kubelet (node pool) identity holds no right")
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert sections == ["## What it asserts", "## Why it matters", "## The evidence it reads", "## How to fix",
                        "## Red scenarios"]
    assert "- `azure:managedCluster`:" in page and "every pod on the node pool can take the kubelet identity" in page
    assert "`kubelet identity → zone`" in page  # the chain draws the kubelet's own arrow
    assert "- `rbac-kubelet-dns-zone-contributor` (red): the kubelet identity holds DNS Zone Contributor" in page
    assert "`aksid demo --scenario rbac-kubelet-dns-zone-contributor`" in page
    # a provision-only check's scenarios are run in provision mode; an expected error is said to be one
    assert "`aksid demo --scenario rbac-zone-role-missing --mode provision`" in str(bundled_page("CANARY-001"))
    assert "- `dns-a-record-missing` (not verifiable (error)):" in str(bundled_page("TLS-001"))
    # `<id>` outside code spans is escaped (GitHub would drop it as a tag); inside them it stays
    rbac1 = str(bundled_page("RBAC-001"))
    assert "--assignee-object-id &lt;principalId&gt;" in rbac1 and "`az role assignment delete --ids <id>`" in page


def test_red_scenarios_come_from_each_files_own_expect(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("name: base\ndescription: b\nexpect: {failed: [RBAC-003]}\n")
    (tmp_path / "over.yaml").write_text("name: over\ndescription: o\nbase: base\nexpect: {error: [TLS-001]}\n")
    found = red_scenarios(tmp_path)
    assert [(s.name, s.outcome) for s in found["RBAC-003"]] == [("base", "failed")]  # not inherited by `over`
    assert [(s.name, s.outcome) for s in found["TLS-001"]] == [("over", "error")]
    entry = next(e for e in builtin() if e.id == "RBAC-003")
    assert "none of the built-in scenarios turns it red" in render_page(entry, [])


def test_a_checks_docstring_is_why_it_matters(monkeypatch: pytest.MonkeyPatch) -> None:
    import aksid.suites.test_rbac as module

    monkeypatch.setattr(module.test_kubelet_cannot_write_zone, "__doc__", "Any pod can become the kubelet <identity>.")
    entry = next(e for e in builtin() if e.id == "RBAC-003")
    page = render_page(entry)
    assert page.index("Any pod can become the kubelet &lt;identity&gt;.") > page.index("## Why it matters")


def test_aksid_checks_pages_writes_and_prunes_only_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "NOTES.md").write_text("a team's own notes\n")
    (folder / "GONE-001.md").write_text(f"# GONE-001\n\n{GENERATED}\n")  # a page of a check that no longer exists
    run = aksid("checks", "--pages", str(folder), reports=tmp_path)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == f"wrote {len(builtin()) + 1} pages to {folder}"
    assert (folder / "NOTES.md").exists() and not (folder / "GONE-001.md").exists()
    assert (folder / "RBAC-003.md").read_text() == bundled_page("RBAC-003")
    refused = aksid("checks", "--pages", str(folder), str(tmp_path), reports=tmp_path)
    assert refused.code == 4 and refused.stderr.count("\n") == 1 and "leave out the PATH" in refused.stderr
    (tmp_path / "afile").write_text("")
    refused = aksid("checks", "--pages", str(tmp_path / "afile"), reports=tmp_path)
    assert refused.code == 4 and "is a file, not a folder" in refused.stderr and "Traceback" not in refused.stderr


# -- the address, and the reports that link to it ---------------------------------------------------

def test_the_base_address_is_pyprojects_and_a_run_may_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert declared_base_url() == BASE and page_url("RBAC-003") == BASE.rstrip("/") + "/RBAC-003.md"
    monkeypatch.setenv(ENV, "https://mirror.example/aksid/checks")
    assert page_url("RBAC-003") == "https://mirror.example/aksid/checks/RBAC-003.md"
    assert docs_base_url({"docs_base_url": "https://setting.example/c/"}) == "https://setting.example/c/"  # the setting wins
    assert page_url("TEAM-001") is None  # a team's check has no page here


def _result(check_id: str, outcome: str = "failed") -> CheckResult:
    entry = next((e for e in builtin() if e.id == check_id), None)
    return CheckResult(id=check_id, title=entry.title if entry else "team check", severity=entry.severity if entry else "low",
                       area=check_id.split("-")[0], subject="identity/x", outcome=outcome, message="it is wrong",
                       remediation=entry.remediation if entry else "do it", nodeid=f"t.py::t[{check_id}]",
                       fix="az role assignment delete --ids /x" if outcome == "failed" else None)


def test_sarif_rules_carry_the_page_as_help_and_its_address(monkeypatch: pytest.MonkeyPatch) -> None:
    results = [_result("RBAC-003"), _result("RBAC-001", "passed"), _result("TEAM-001")]
    rules = {r["id"]: r for r in render_sarif(results, {})["runs"][0]["tool"]["driver"]["rules"]}
    page = (DOCS / "RBAC-003.md").read_text()
    assert rules["RBAC-003"]["help"] == {"markdown": page, "text": page_text(page)}
    assert rules["RBAC-003"]["helpUri"] == BASE.rstrip("/") + "/RBAC-003.md"
    assert "#" not in rules["RBAC-003"]["help"]["text"].splitlines()[0] and GENERATED not in rules["RBAC-003"]["help"]["text"]
    assert rules["TEAM-001"]["help"] == {"text": "do it"} and "helpUri" not in rules["TEAM-001"]
    overridden = render_sarif(results, {"docs_base_url": "https://setting.example/c"})["runs"][0]["tool"]["driver"]["rules"]
    assert overridden[0]["helpUri"] == "https://setting.example/c/RBAC-001.md"


def test_every_report_links_each_finding_to_its_page(tmp_path: Path) -> None:
    results = [_result("RBAC-003"), _result("RBAC-001", "passed"), _result("TEAM-001")]
    write_reports(tmp_path, results, {"mode": "attach", "target": {"cluster_name": "c", "domain": "d.test"}})
    url = BASE.rstrip("/") + "/RBAC-003.md"
    html = (tmp_path / "report.html").read_text()
    assert f'<a href="{url}" class="doc"' in html and "TEAM-001.md" not in html
    assert f"[RBAC-003]({url})" in (tmp_path / "summary.md").read_text()
    case = next(c for c in ET.parse(tmp_path / "junit.xml").iter("testcase") if c.get("name", "").startswith("RBAC-003"))
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["help_url"] == url
    assert f"About RBAC-003: {url}" in (case.find("failure").text or "")  # type: ignore[union-attr]
    assert json.loads((tmp_path / "results.sarif").read_text())["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"]


def test_the_page_generator_reads_no_scenario_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """bundled_page is built once per process: SARIF asks for one page per rule."""
    check_pages._bundled_pages.cache_clear()
    calls = []
    real = check_pages.red_scenarios
    monkeypatch.setattr(check_pages, "red_scenarios", lambda *a: calls.append(1) or real(*a))
    assert bundled_page("RBAC-003") and bundled_page("DNS-002") and bundled_page("NOPE-001") is None
    assert len(calls) == 1
    check_pages._bundled_pages.cache_clear()
