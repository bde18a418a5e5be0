"""pytest-native: one plugin registration (pytest11), active only when a run asks for aksid, a team's own checks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from aksid.checks import check
from aksid.cli import _spell_run_options

from .harness import REPO, Run, aksid, clean_env, pytest_in

EXAMPLE = REPO / "examples" / "custom-checks"
RED_EXAMPLE = EXAMPLE / "scenarios" / "corp-demo-single-replica.yaml"
BUNDLED = {"NMI-001", "BIND-002", "RBAC-002", "DNS-003", "ISS-001", "TLS-001"}
SCHEMA = json.loads((REPO / "aksid" / "schemas" / "results-v1.json").read_text())


def pods_lists(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["path"].startswith("/api/v1/pods"))


def _no_plugin_trouble(run: Run) -> None:
    text = run.stdout + run.stderr
    assert "already registered" not in text and "unrecognized arguments" not in text, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text


def test_pytest_outside_the_clone_runs_the_bundled_checks(healthy, tmp_path: Path) -> None:
    # the spelling that used to fail: the option's value taken for a path before the option existed
    run = pytest_in(tmp_path, "--aksid-profile", str(healthy.profile.resolve()), "-q")
    _no_plugin_trouble(run)
    assert run.code == 0, run.stdout + run.stderr
    assert run.ids_with("passed") >= BUNDLED and run.ids_with("failed") == set()
    assert (tmp_path / "reports" / "snapshot.json").is_file() and "aksid summary" in run.stdout


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_unrelated_project_is_untouched(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n\ndef test_red():\n    assert 0\n")
    with_aksid = pytest_in(tmp_path, "-q", *extra)
    without = pytest_in(tmp_path, "-q", "-p", "no:aksid.plugin", *extra)
    assert with_aksid.code == without.code == 1  # one red test, exactly as without aksid
    assert "aksid" not in with_aksid.stdout + with_aksid.stderr
    assert not (tmp_path / "reports").exists()
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    pass\n")
    assert pytest_in(tmp_path, "-q", *extra).code == 0


def test_the_projects_own_self_tests_are_untouched(tmp_path: Path) -> None:
    run = pytest_in(tmp_path, "-q", str(REPO / "tests" / "test_catalogue.py"))
    assert run.code == 0, run.stdout + run.stderr
    assert "aksid summary" not in run.stdout and not (tmp_path / "reports").exists()


@pytest.fixture(scope="module")
def saved_snapshot(healthy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports = tmp_path_factory.mktemp("live")
    run = aksid("run", "--aksid-profile", str(healthy.profile), "--aksid-reports-dir", str(reports), "-q", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return reports / "snapshot.json"


@pytest.mark.parametrize("way", ["entry-point", "dash-p", "conftest", "aksid-run"])
def test_the_plugin_is_registered_once_whichever_way_it_is_asked_for(saved_snapshot: Path, tmp_path: Path,
                                                                     way: str) -> None:
    replay = ["--aksid-replay", str(saved_snapshot), "-q"]
    if way == "aksid-run":
        run = aksid("run", *replay, "--aksid-reports-dir", str(tmp_path / "reports"), reports=tmp_path / "reports")
    else:
        if way == "conftest":  # what a team's repo writes to "load" a plugin
            (tmp_path / "conftest.py").write_text('pytest_plugins = ["aksid.plugin"]\n')
        run = pytest_in(tmp_path, *(["-p", "aksid.plugin"] if way == "dash-p" else []), *replay)
    _no_plugin_trouble(run)
    assert run.code == 0, run.stdout + run.stderr
    assert run.ids_with("passed") >= BUNDLED and run.results["mode"] == "replay"


def test_the_custom_check_example_is_green_on_healthy_and_in_every_report(healthy, tmp_path: Path) -> None:
    before = pods_lists(healthy)
    run = pytest_in(tmp_path, "--aksid-profile", str(healthy.profile), str(EXAMPLE), "-n", "2", "-q")
    _no_plugin_trouble(run)
    assert run.code == 0, run.stdout + run.stderr
    assert {"CORP-001", *BUNDLED} <= run.ids_with("passed")
    assert pods_lists(healthy) == before + 1, "the team's checks share the one evidence collection"
    reports = tmp_path / "reports"
    jsonschema.validate(run.results, SCHEMA)
    junit = ET.parse(reports / "junit.xml").getroot()
    assert any(case.get("name", "").startswith("CORP-001") for case in junit.iter("testcase"))
    assert "CORP" in (reports / "summary.md").read_text() and "CORP-001" in (reports / "report.html").read_text()
    sarif = json.loads((reports / "results.sarif").read_text())
    assert "CORP-001" in {rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]}


def test_the_custom_check_example_turns_red_on_its_scenario(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = aksid("demo", "--scenario", str(RED_EXAMPLE), "--reports-dir", str(reports), "--", str(EXAMPLE), reports=reports)
    assert run.code == 0, run.stdout + run.stderr  # the scenario's expectation: CORP-001 red, nothing else
    assert run.ids_with("failed") == {"CORP-001"} and run.ids_with("error") == set()
    failed = next(c for c in run.results["checks"] if c["id"] == "CORP-001")
    assert failed["subject"] == "deployment/hello/hello-kubernetes" and "1 ready" in failed["message"]
    sarif = json.loads((reports / "results.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["CORP-001"]
    junit = ET.parse(reports / "junit.xml").getroot()
    assert [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None][0].startswith("CORP-001")
    assert "CORP-001" in (reports / "summary.md").read_text() and "CORP-001" in (reports / "report.html").read_text()


def test_aksid_checks_lists_a_teams_checks_when_given_their_folder(tmp_path: Path) -> None:
    bundled = aksid("checks", "--format", "json", reports=tmp_path)
    with_team = aksid("checks", "--format", "json", str(EXAMPLE), reports=tmp_path)
    assert bundled.code == with_team.code == 0, with_team.stderr
    ids = [entry["id"] for entry in json.loads(with_team.stdout)]
    assert "CORP-001" in ids and "CORP-001" not in [e["id"] for e in json.loads(bundled.stdout)]
    assert ids[-1] == "CORP-001", "a team's area comes after aksid's own"
    missing = aksid("checks", str(tmp_path / "nowhere"), reports=tmp_path)
    assert missing.code == 4 and "neither a check file nor a folder" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_teams_checks_alone_activate_aksid_with_one_collection(healthy, tmp_path: Path, extra: list[str]) -> None:
    before = pods_lists(healthy)
    run = pytest_in(tmp_path, str(EXAMPLE), "-q", *extra, env=clean_env(AKSID_PROFILE=str(healthy.profile)))
    _no_plugin_trouble(run)
    assert run.code == 0, run.stdout + run.stderr
    assert run.ids_with("passed") == {"CORP-001"} and run.results["target"]["domain"] == "example.test"
    assert pods_lists(healthy) == before + 1


def test_a_teams_checks_without_a_target_say_so_in_one_sentence(tmp_path: Path) -> None:
    serial = pytest_in(tmp_path, str(EXAMPLE), "-q")
    assert serial.code == 4 and "AZ_DNS_DOMAIN is not set" in serial.stderr, serial.stdout + serial.stderr
    assert "Traceback" not in serial.stdout + serial.stderr
    parallel = pytest_in(tmp_path, str(EXAMPLE), "-q", "-n", "2")  # a worker cannot stop the run: the check says why
    _no_plugin_trouble(parallel)
    assert parallel.code == 1 and parallel.ids_with("error") == {"CORP-001"}
    assert "AZ_DNS_DOMAIN is not set" in parallel.results["checks"][0]["message"]


def test_aksid_run_keeps_the_old_kube_context_spelling() -> None:
    assert _spell_run_options(["--kube-context", "prod", "-n", "2"]) == ["--aksid-kube-context", "prod", "-n", "2"]
    assert _spell_run_options(["--kube-context=prod"]) == ["--aksid-kube-context=prod"]


def test_modes_are_an_open_list() -> None:
    document = {"schema": "aksid.results/v1", "mode": "provision", "started": "2026-12-01T00:00:00+00:00",
                "target": None, "summary": {"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0}, "checks": []}
    jsonschema.validate(document, SCHEMA)  # a mode added in aksid/modes.py needs no schema change
    with pytest.raises(ValueError, match="unknown mode"):
        check("CORP-002", "t", "low", "r", modes=("nightly",))


def test_a_check_outside_its_modes_is_skipped_with_the_reason(saved_snapshot: Path, tmp_path: Path) -> None:
    (tmp_path / "test_live_only.py").write_text(
        "from aksid.checks import check\n\n"
        "@check('CORP-003', 'needs a live cluster', 'low', 'none', modes=('attach',))\n"
        "def test_live_only(snapshot):\n    assert snapshot.kube.nodes()\n")
    run = pytest_in(tmp_path, "--aksid-replay", str(saved_snapshot), "test_live_only.py", "-q")
    assert run.code == 0, run.stdout + run.stderr
    corp = [c for c in run.results["checks"] if c["id"] == "CORP-003"]
    assert [c["outcome"] for c in corp] == ["skipped"] and "attach mode only" in corp[0]["message"]


TOY_SOURCE = '''
"""A mode nobody here wrote: evidence from a saved snapshot, relabelled (one register() call, nothing else)."""
import os
from pathlib import Path

from aksid.fleet import Member
from aksid.run.sources import EvidenceSource, register
from aksid.snapshot import Snapshot
from aksid.snapshot_target import target_from_snapshot


class ToySource(EvidenceSource):
    name = "toy"

    def members(self, options):
        snapshot = Snapshot.load(Path(os.environ["TOY_SNAPSHOT"]))
        return [Member("toy-target", target_from_snapshot(snapshot))]

    def collect(self, member, options, context):
        context.progress("toy: reading the saved evidence")
        document = Snapshot.load(Path(os.environ["TOY_SNAPSHOT"])).document
        return Snapshot({**document, "mode": self.name})


register(ToySource())
'''


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_new_mode_is_one_registered_source(saved_snapshot: Path, tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "toy_source.py").write_text(TOY_SOURCE, encoding="utf-8")
    env = clean_env(PYTHONPATH=str(tmp_path), TOY_SNAPSHOT=str(saved_snapshot))
    run = pytest_in(tmp_path, "-p", "toy_source", "--aksid-mode", "toy", "-q", *extra, env=env)
    _no_plugin_trouble(run)
    assert run.code == 0, run.stdout + run.stderr
    assert run.results["mode"] == "toy" and {t["name"] for t in run.results["targets"]} == {"toy-target"}
    assert json.loads((run.reports / "snapshot.json").read_text())["mode"] == "toy"
    replay = pytest_in(tmp_path, "--aksid-replay", str(saved_snapshot), "--aksid-reports-dir", "replayed", "-q")
    replayed = {(c["id"], c["subject"]): c["outcome"] for c in json.loads(
        (tmp_path / "replayed" / "results.json").read_text())["checks"]}
    toy = run.outcomes()
    live_only = {key for key, outcome in toy.items() if outcome == "skipped"} - {
        key for key, outcome in replayed.items() if outcome == "skipped"}
    # the checks of every mode judged the same evidence as the replay did; the live-only ones say why they did not run
    judged = {key: outcome for key, outcome in toy.items() if key not in live_only}
    assert {"passed"} <= set(judged.values()) and judged == {key: replayed[key] for key in judged}
    assert live_only and all("mode only" in c["message"] and "this run is in toy mode" in c["message"]
                             for c in run.results["checks"] if (c["id"], c["subject"]) in live_only)
    assert replay.code == 0
    unknown = pytest_in(tmp_path, "--aksid-mode", "toy", "-q")  # without the plugin that registers it
    assert unknown.code == 4 and "invalid choice: 'toy'" in unknown.stderr, unknown.stdout + unknown.stderr
