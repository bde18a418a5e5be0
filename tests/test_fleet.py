"""Fleets: several environments in one run keep their results apart; `aksid merge` of separate runs equals it."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from .harness import aksid

RED = "rbac-identity-contributor-on-dns-rg"  # RBAC-002 red, everything else green


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory):
    """A healthy sandbox named `prod` and a red one named `staging` (profiles carry `name:`)."""
    from aksid.sandbox.runtime import down, up

    root = tmp_path_factory.mktemp("fleet")
    sandboxes = {"prod": up("healthy", root / "prod"), "staging": up(RED, root / "staging")}
    for name, sandbox in sandboxes.items():
        profile = yaml.safe_load(sandbox.profile.read_text())
        sandbox.profile.write_text(yaml.safe_dump({"name": name, **profile}))
    yield sandboxes
    for sandbox in sandboxes.values():
        down(sandbox.state_dir)


def outcomes(results: dict) -> set[tuple[str, str, str, str]]:
    return {(c["target"], c["id"], c["subject"], c["outcome"]) for c in results["checks"]}


@pytest.fixture(scope="module")
def fleet_run(two, tmp_path_factory: pytest.TempPathFactory):
    reports = tmp_path_factory.mktemp("fleet-reports")
    run = aksid("run", "--aksid-target", str(two["prod"].profile), "--aksid-target", str(two["staging"].profile),
                "--aksid-reports-dir", str(reports), "-q", "-n", "2", reports=reports)
    assert run.code == 1, run.stdout + run.stderr
    return run


def test_a_fleet_keeps_its_targets_apart(fleet_run) -> None:
    results = fleet_run.results
    assert [t["name"] for t in results["targets"]] == ["prod", "staging"]
    failed = {(c["target"], c["id"]) for c in results["checks"] if c["outcome"] == "failed"}
    assert failed == {("staging", "RBAC-002")}
    assert {c["target"] for c in results["checks"] if c["outcome"] == "passed"} == {"prod", "staging"}
    assert all(c["nodeid"].split("[", 1)[1].startswith(c["target"]) for c in results["checks"] if "[" in c["nodeid"])


def test_every_report_names_the_target(fleet_run) -> None:
    reports = fleet_run.reports
    junit = ET.parse(reports / "junit.xml").getroot()
    red = [case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None]
    assert red == ["RBAC-002 staging: identity/example-test-identity"]
    assert "staging: identity/example-test-identity" in (reports / "summary.md").read_text()
    assert "staging: identity/example-test-identity" in (reports / "report.html").read_text()
    sarif = json.loads((reports / "results.sarif").read_text())
    [result] = sarif["runs"][0]["results"]
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith("staging: ")
    assert "[staging: identity/example-test-identity]" in fleet_run.stdout


def test_merge_of_separate_runs_equals_the_one_run_fleet(two, fleet_run, tmp_path: Path) -> None:
    runs = []
    for name in ("prod", "staging"):
        reports = tmp_path / name
        aksid("run", "--aksid-profile", str(two[name].profile), "--aksid-reports-dir", str(reports), "-q", reports=reports)
        runs.append(reports / "results.json")
    merged = aksid("merge", *map(str, runs), "--reports-dir", str(tmp_path / "merged"), reports=tmp_path / "merged")
    assert merged.code == 1, merged.stdout + merged.stderr
    assert outcomes(merged.results) == outcomes(fleet_run.results)
    for name in ("results.json", "junit.xml", "summary.md", "report.html", "results.sarif"):
        assert (tmp_path / "merged" / name).exists()
    twice = aksid("merge", str(runs[0]), str(runs[0]), "--reports-dir", str(tmp_path / "m2"), reports=tmp_path / "m2")
    assert twice.code == 4 and "reports target prod again" in twice.stderr


def test_an_unreachable_target_is_error_and_the_others_still_run(two, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    shutil.copytree(two["prod"].state_dir, gone, ignore=shutil.ignore_patterns("pids.json", "*.sock"))
    profile = yaml.safe_load((gone / "profile.yaml").read_text())
    kubeconfig = yaml.safe_load((gone / "kubeconfig").read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens there
    (gone / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    profile.update(name="gone", azure={**profile["azure"], "endpoint": "https://127.0.0.1:9"})
    (gone / "profile.yaml").write_text(yaml.safe_dump(profile))
    run = aksid("run", "--aksid-target", str(gone / "profile.yaml"), "--aksid-target", str(two["prod"].profile),
                "--aksid-reports-dir", str(tmp_path / "r"), "-q", reports=tmp_path / "r")
    by_target: dict[str, dict[str, set[str]]] = {}
    for check in run.results["checks"]:
        by_target.setdefault(check["target"], {}).setdefault(check["outcome"], set()).add(check["id"])
    gone_errors = by_target["gone"].get("error", set())
    assert {"NMI-001", "BIND-002", "RBAC-001", "ISS-001"} <= gone_errors and "failed" not in by_target["gone"]
    assert set(by_target["prod"]) <= {"passed", "skipped"}, by_target["prod"].get("error")
    assert "Traceback" not in run.stdout + run.stderr


def test_two_targets_with_one_name_are_a_usage_error(two, tmp_path: Path) -> None:
    run = aksid("run", "--aksid-target", str(two["prod"].profile), "--aksid-target", str(two["prod"].profile),
                "--aksid-reports-dir", str(tmp_path), "-q", reports=tmp_path)
    assert run.code == 4 and "two targets are named prod" in run.stderr


def test_collection_prints_one_line_per_phase_in_ci(two, tmp_path: Path) -> None:
    run = aksid("run", "--aksid-profile", str(two["prod"].profile), "--aksid-reports-dir", str(tmp_path), "-q",
                reports=tmp_path)
    phases = [line.split(":")[1].strip() for line in run.stdout.splitlines() if line.startswith("aksid: ") and " s]" in line]
    assert {"kube", "azure", "dns", "tls", "snapshot"} <= set(phases), run.stdout
    assert len(phases) == len(set(phases)), "one line per phase without a terminal"
