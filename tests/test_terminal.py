"""What `aksid run` prints: one block per finding with its fix, the totals and the coverage, no tracebacks, the same in
a CI log as on a terminal; and checks selected by ID or area (-k, --aksid-check, --aksid-skip-check)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from aksid.catalogue import builtin
from aksid.paths import suites_dir
from aksid.results import CheckResult, report_lines, terminal_lines
from aksid.run.selection import Selection, declared_ids, names_of
from aksid.run.terminal import identity_model_lines
from aksid.sandbox.runtime import Sandbox, down, up

from .harness import REPO, Run, aksid, pytest_in

RED = "rbac-zone-role-missing"  # RBAC-001 red in attach mode, with a fix naming the principal and the zone
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXAMPLE = REPO / "examples" / "custom-checks"  # a team's check, CORP-001


@pytest.fixture(scope="module")
def red(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Run]]:
    """The red sandbox, and `aksid run` against it as a user types it (no -q, no --tb); kept up for the replays, whose
    TLS probes read the sandbox's trust store."""
    sandbox = up(RED, tmp_path_factory.mktemp("red-sandbox"))
    try:
        reports = tmp_path_factory.mktemp("red-live")
        yield sandbox, aksid("run", "--aksid-profile", str(sandbox.profile), "--aksid-reports-dir", str(reports),
                             reports=reports)
    finally:
        down(sandbox.state_dir)


def replay(red: tuple[Sandbox, Run], reports: Path, *args: str) -> Run:
    """`aksid run` on the red run's snapshot: no network, under a second."""
    snapshot = red[1].reports / "snapshot.json"
    return aksid("run", "--aksid-replay", str(snapshot), "--aksid-reports-dir", str(reports), *args, reports=reports)


def assert_the_report(run: Run) -> None:
    """No Python, every finding with its fix as results.json has it, the totals, the coverage, the reports."""
    text = ANSI.sub("", run.stdout)
    for python in ("Traceback", "def test_", "E   assert", "E       ", "snapshot = <aksid", "suites/test_rbac.py::"):
        assert python not in text, (python, text)
    failed = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert {c["id"] for c in failed} == {"RBAC-001"}, text
    for check in failed:
        assert f"FAILED {check['id']} ({check['severity']}) [{check['subject']}]" in text
        assert check["message"] in text and f"fix: {check['fix']}" in text, text
    assert "<" not in failed[0]["fix"] and "dnszones/example.test" in failed[0]["fix"]  # real ids, no placeholders
    assert "totals by area" in text and "totals by severity" in text
    assert re.search(r"^  RBAC +\d+ passed, 1 failed", text, re.M), text
    assert re.search(r"^  high +\d+ passed, 1 failed", text, re.M), text
    assert "evidence collected: 100% (kinds " in text and f"reports in {run.reports}: results.json" in text


def test_a_red_run_prints_each_finding_with_its_fix_and_no_traceback(red) -> None:
    run = red[1]
    assert run.code == 1, run.stdout + run.stderr
    assert_the_report(run)
    assert "\x1b[" not in run.stdout, "stdout is no terminal (a CI log): no ANSI escapes"
    header = [line for line in run.stdout.splitlines() if line.startswith("aksid: mode")]
    assert header == [f"aksid: mode attach, target hello-aks / example.test, profile {red[0].profile} "
                      "(-v: every setting and its source)"], run.stdout
    assert "(profile)" not in run.stdout and "kubeconfig =" not in run.stdout  # the settings only with -v
    assert run.stdout.count("identity models: ") == 1, "the identity models once"
    assert "identity models: pod-identity (cert-manager: pod-identity, external-dns: pod-identity)" in run.stdout
    assert len(run.stdout.splitlines()) < 60, run.stdout  # it was 117 lines for this one finding


def test_the_readme_shows_the_report_as_it_prints(red) -> None:
    def summary(text: str) -> list[str]:
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if "aksid summary" in line)
        return lines[start:next(i for i, line in enumerate(lines) if line.startswith("reports in ")) + 1]

    printed = summary(red[1].stdout.replace(str(red[1].reports), "reports"))
    assert summary((REPO / "README.md").read_text(encoding="utf-8")) == printed


def test_on_a_terminal_the_same_report_in_colour(red, tmp_path: Path) -> None:
    run = replay(red, tmp_path, "--color=yes")
    assert run.code == 1, run.stdout + run.stderr
    assert "\x1b[31m\x1b[1mFAILED RBAC-001" in run.stdout  # pytest's own markup, which it drops without a terminal
    assert_the_report(run)


def test_the_full_form_and_the_tracebacks_when_asked(red, tmp_path: Path) -> None:
    verbose = replay(red, tmp_path / "v", "-v")
    assert "  kubeconfig = " in verbose.stdout and "(snapshot)" in verbose.stdout  # every setting, its source
    assert "  deployment/kube-addons/external-dns: pod-identity (pod-identity -> example-test-identity)" in verbose.stdout
    assert "def test_dns_identity_is_zone_contributor" in verbose.stdout  # pytest's FAILURES section, as asked
    short = replay(red, tmp_path / "tb", "--tb=short", "-q")
    assert "AssertionError: identity example-test-identity" in short.stdout
    assert "FAILED RBAC-001 (high)" in short.stdout


def test_the_demo_prints_the_same_report(tmp_path: Path) -> None:
    run = aksid("demo", "--scenario", RED, "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert_the_report(run)


def test_a_teams_unrelated_test_keeps_pytests_output(red, tmp_path: Path) -> None:
    (tmp_path / "test_team.py").write_text("def test_team_thing():\n    seen = [1]\n    assert seen == []\n")
    run = pytest_in(tmp_path, "test_team.py", "--aksid-replay", str(red[1].reports / "snapshot.json"))
    assert run.code == 1, run.stdout + run.stderr
    assert "def test_team_thing" in run.stdout and "E       assert [1] == []" in run.stdout
    assert "FAILED test_team.py::test_team_thing" in run.stdout  # its line in pytest's short summary
    assert "test_dns_identity_is_zone_contributor" not in run.stdout  # the check: aksid's block only
    assert "FAILED RBAC-001 (high)" in run.stdout


def ids(run: Run) -> set[str]:
    assert run.code in (0, 1), run.stdout + run.stderr
    return {c["id"] for c in run.results["checks"]}


def test_k_selects_a_check_by_its_id_and_area(red, tmp_path: Path) -> None:
    assert ids(replay(red, tmp_path / "id", "-k", "RBAC-003")) == {"RBAC-003"}
    rbac = {entry.id for entry in builtin() if entry.area == "RBAC"}
    assert ids(replay(red, tmp_path / "area", "-k", "RBAC and not RBAC-001")) == rbac - {"RBAC-001"}


def test_aksid_check_and_skip_check_select_by_id_and_area(red, tmp_path: Path) -> None:
    every = {entry.id for entry in builtin()}
    rbac = {entry.id for entry in builtin() if entry.area == "RBAC"}
    assert ids(replay(red, tmp_path / "area", "--aksid-check", "RBAC")) == rbac
    assert ids(replay(red, tmp_path / "two", "--aksid-check", "rbac-003", "--aksid-check", "TLS-001,DNS-002")) == {
        "RBAC-003", "TLS-001", "DNS-002"}
    skipped = replay(red, tmp_path / "skip", "--aksid-skip-check", "RBAC", "--aksid-skip-check", "TLS-001")
    assert ids(skipped) == every - rbac - {"TLS-001"}
    assert skipped.code == 0, "the red check was left out"
    assert ids(replay(red, tmp_path / "both", "--aksid-check", "RBAC", "--aksid-skip-check", "RBAC-001")) == (
        rbac - {"RBAC-001"})  # a skip wins over a check, as in checkov


@pytest.mark.parametrize("flag", ["--aksid-check", "--aksid-skip-check"])
def test_an_unknown_check_is_a_usage_error_with_the_closest_ones(red, tmp_path: Path, flag: str) -> None:
    run = replay(red, tmp_path, flag, "RBAC-03")
    assert run.code == 4, run.stdout + run.stderr
    assert f"{flag} RBAC-03: no check or area has that name; did you mean RBAC-003" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr and not (tmp_path / "results.json").exists()


def test_an_unknown_check_is_said_before_the_provision_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "provisioned"
    run = aksid("run", "--aksid-provision-cmd", f"touch {marker}", "--aksid-check", "NMI-0001",
                "--aksid-reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 4 and "did you mean NMI-001" in run.stderr, run.stdout + run.stderr
    assert not marker.exists()


def test_a_teams_check_is_selected_by_its_id(red, tmp_path: Path) -> None:
    assert ids(replay(red, tmp_path / "corp", str(EXAMPLE), "--aksid-check", "CORP-001")) == {"CORP-001"}
    typo = replay(red, tmp_path / "typo", str(EXAMPLE), "--aksid-check", "CORP-01")
    assert typo.code == 4 and "did you mean CORP-001" in typo.stderr, typo.stdout + typo.stderr


def test_the_ids_read_from_the_suites_are_the_catalogues() -> None:
    assert declared_ids(suites_dir()) == {entry.id for entry in builtin()}


def test_a_selection_takes_commas_any_case_and_skips_last() -> None:
    selection = Selection.of(["rbac", "DNS-001, tls-002"], ["RBAC-005"])
    assert [selection.keeps(i, i.split("-")[0]) for i in ("RBAC-001", "RBAC-005", "DNS-001", "DNS-002", "TLS-002")] == [
        True, False, True, False, True]
    assert not Selection.of([], []) and Selection.of([], ["NMI"]).keeps("RBAC-001", "RBAC")
    known = names_of({"RBAC-001", "RBAC-002"})
    assert Selection.of(["RBAC"], ["rbac-002"]).unknown(known) is None
    assert "the areas are NMI, BIND" in (Selection.of(["nothing-like-it"], []).unknown(known) or "")


def result(outcome: str, **fields: object) -> CheckResult:
    base = {"id": "RBAC-002", "title": "t", "severity": "critical", "area": "RBAC", "subject": "identity/x",
            "outcome": outcome, "message": "it holds Contributor", "remediation": "az role assignment delete --ids <id>",
            "nodeid": f"n-{outcome}-{fields.get('subject', '')}"}
    return CheckResult(**{**base, **fields})  # type: ignore[arg-type]


def test_a_block_per_finding_fix_filled_else_the_remediation_locations_in_static_mode() -> None:
    results = [result("passed", id="DNS-001", area="DNS", severity="high", subject="zone/a"),
               result("failed", fix="az role assignment delete --ids /subscriptions/s/x\naz role assignment list",
                      locations=[{"file": "plan.json", "line": 40, "address": "azurerm_role_assignment.x"}]),
               result("failed", subject="identity/y"),
               result("error", id="TLS-001", area="TLS", message="could not verify: no trust store", subject="host/h")]
    assert terminal_lines(results) == [
        "FAILED RBAC-002 (critical) [identity/x]",
        "  it holds Contributor",
        "  fix: az role assignment delete --ids /subscriptions/s/x",
        "       az role assignment list",
        "  at plan.json:40 (azurerm_role_assignment.x)",
        "FAILED RBAC-002 (critical) [identity/y]",
        "  it holds Contributor",
        "  fix: az role assignment delete --ids <id>",
        "ERROR TLS-001 (critical) [host/h]",  # no fix: it could not verify, the remediation is for a failure
        "  could not verify: no trust store",
        "totals by area",
        "  DNS       1 passed",
        "  RBAC      2 failed",
        "  TLS       1 error",
        "totals by severity",
        "  critical  2 failed, 1 error",
        "  high      1 passed",
    ]
    styles = dict(report_lines(results))
    assert styles["FAILED RBAC-002 (critical) [identity/x]"] == {"red": True, "bold": True}
    assert styles["  DNS       1 passed"] == {} and styles["  RBAC      2 failed"] == {"red": True}


def test_the_identity_models_in_one_line_or_in_full() -> None:
    models = {"cluster": "mixed", "pod_identity": {"because": "p"}, "workload_identity": {"because": "w"},
              "workloads": [{"workload": "deployment/kube-addons/external-dns", "model": "workload-identity",
                             "bindings": [{"model": "workload-identity", "identity": "dns", "client_id": "c"}]}]}
    assert identity_model_lines(models, verbose=False) == ["identity models: mixed (external-dns: workload-identity)"]
    assert identity_model_lines(models, verbose=True)[1] == (
        "  deployment/kube-addons/external-dns: workload-identity (workload-identity -> dns)")


def test_a_line_after_the_live_line_replaces_it_instead_of_following_it() -> None:
    """On a terminal the collection's progress is one line rewritten in place; pytest's write_line would append the
    next message to it ("...[0.4 s]aksid: could not collect ..."): the live line is overwritten, then ended."""
    import io

    from _pytest.config import get_config
    from _pytest.terminal import TerminalReporter

    from aksid.pytest_terminal import PytestTerminal

    config = get_config()
    out = io.StringIO()
    reporter = TerminalReporter(config, out)
    config.pluginmanager.register(reporter, "terminalreporter")
    terminal = PytestTerminal(config)
    terminal.rewrite("aksid: kube: listing pods [0.1 s]", erase=True)
    terminal.write_line("aksid: could not collect azure")
    terminal.write_line("aksid: evidence collected")
    lines = out.getvalue().split("\n")
    shown = lines[0].split("\r")[-1]  # what a terminal shows of that line: the text after its last carriage return
    assert shown.strip() == "aksid: could not collect azure", lines[0]
    assert lines[1] == "aksid: evidence collected"
