"""What each result saw: every passed check names its evidence, each item says what the snapshot says, and a
failure carries the fix filled with the observed ids — in results.json, JUnit, SARIF and report.html."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from aksid.evidence import Evidence, kept, path_parts, path_text, read
from aksid.sandbox.runtime import Sandbox, down, up

from .harness import Run, aksid, evidence_not_in_snapshot, run_suites

RED = "rbac-identity-contributor-on-dns-rg"
EXTRA_ASSIGNMENT = ("/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13/resourceGroups/rg-dns/providers/"
                    "Microsoft.Authorization/roleAssignments/5c9e1a7b-3d2f-4b8e-a6c4-7f0d2e9b1a38")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The module's one healthy sandbox."""
    state = tmp_path_factory.mktemp("evidence-sandbox")
    try:
        yield up("healthy", state)
    finally:
        down(state)


@pytest.fixture(scope="module")
def healthy(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Attach mode, judged once (Secrets read, so the checks that read them record evidence too)."""
    reports = tmp_path_factory.mktemp("evidence-attach")
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-read-secrets", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def provisioned(sandbox: Sandbox, healthy: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Provision mode on the same sandbox (after the attach run): PROBE and CANARY judge what the run observed."""
    reports = tmp_path_factory.mktemp("evidence-provision")
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-mode", "provision", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def red(tmp_path_factory: pytest.TempPathFactory) -> Run:
    reports = tmp_path_factory.mktemp("evidence-red") / "reports"
    run = aksid("demo", "--scenario", RED, "--reports-dir", str(reports), reports=reports)
    assert run.code == 0, run.stdout + run.stderr  # the demo exits 0 when the scenario's expectation is met
    return run


# -- the API --------------------------------------------------------------------------------------


def test_field_paths_round_trip() -> None:
    parts = ["metadata", "labels", "app.kubernetes.io/name"]
    assert path_text(*parts) == 'metadata.labels["app.kubernetes.io/name"]'
    assert path_parts(path_text(*parts)) == parts
    assert path_parts("spec.containers[0].args") == ["spec", "containers", 0, "args"]
    assert read({"a": [{"b": 1}, {"b": 2}]}, "a[1].b") == 2 and read({"a": [1, 2, 3]}, "a.#") == 3
    assert read({"a": {}}, "a.missing.deeper") is None


def test_large_values_are_kept_as_their_digest_and_secrets_never() -> None:
    evidence = Evidence()
    evidence.add("tls handshake", "chain[0]", "-----BEGIN CERTIFICATE-----" + "A" * 2000)
    evidence.add("kube v1/Pod ns/p", "spec.containers[0].env[0].AZURE_CLIENT_SECRET", "hunter2")
    large, secret = evidence.record()
    assert set(large["value"]) == {"sha256", "size"}
    assert large["value"] == kept("-----BEGIN CERTIFICATE-----" + "A" * 2000)
    assert secret["value"] == "<redacted>"


def test_evidence_beyond_the_limit_is_counted() -> None:
    evidence = Evidence(limit=2)
    for index in range(5):
        evidence.add("kube v1/Pod", "#", index)
    assert evidence.record()[-1] == {"omitted": 3} and len(evidence.record()) == 3


# -- healthy: every passed result names its evidence, and each item is the snapshot's --------------------------


def _passed_without_evidence(run: Run) -> list[tuple[str, str]]:
    passed = [c for c in run.results["checks"] if c["outcome"] == "passed"]
    assert passed
    assert all(c["fix"] is None for c in passed), "a fix is for what failed"
    return [(c["id"], c["subject"]) for c in passed if not [i for i in c["evidence"] if "source" in i]]


def test_every_passed_result_carries_evidence(healthy: Run) -> None:
    assert _passed_without_evidence(healthy) == []


def test_every_evidence_item_is_what_the_snapshot_holds(healthy: Run) -> None:
    assert {c["area"] for c in healthy.results["checks"] if c["outcome"] == "passed"} >= {
        "NMI", "BIND", "RBAC", "DNS", "ISS", "TLS"}
    assert evidence_not_in_snapshot(healthy) == []


def test_provision_checks_record_what_the_run_observed(provisioned: Run) -> None:
    passed = {c["area"] for c in provisioned.results["checks"] if c["outcome"] == "passed"}
    assert {"PROBE", "CANARY"} <= passed
    assert _passed_without_evidence(provisioned) == []
    assert evidence_not_in_snapshot(provisioned) == []


def test_workload_identity_checks_record_their_evidence(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = aksid("demo", "--scenario", "healthy-wi", "--reports-dir", str(reports), reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    assert "WI" in {c["area"] for c in run.results["checks"] if c["outcome"] == "passed"}
    assert _passed_without_evidence(run) == []
    assert evidence_not_in_snapshot(run) == []


def test_junit_and_html_show_the_evidence(healthy: Run) -> None:
    result = next(c for c in healthy.results["checks"] if c["id"] == "RBAC-001")
    item = next(i for i in result["evidence"] if i.get("field") == "properties.principalId")
    root = ET.parse(healthy.reports / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name", "").startswith("RBAC-001 "))
    out = case.findtext("system-out") or ""
    assert item["source"] in out and item["value"] in out
    outs = [c.findtext("system-out") for c in root.iter("testcase")
            if c.find("skipped") is None]
    assert all(outs), "every judged case has its evidence in system-out"
    html = (healthy.reports / "report.html").read_text(encoding="utf-8")
    assert '<details class="evidence"><summary>evidence' in html and "<details open" not in html
    assert item["value"] in html


# -- red: the fix names the observed ids --------------------------------------------------------------------


def test_failure_carries_the_fix_with_the_role_assignment_id(red: Run) -> None:
    failed = [c for c in red.results["checks"] if c["outcome"] == "failed"]
    assert [c["id"] for c in failed] == ["RBAC-002"]
    result = failed[0]
    assert result["fix"] == f"az role assignment delete --ids {EXTRA_ASSIGNMENT}"
    assert "<id>" in result["remediation"], "remediation stays the catalogue's generic text"
    assert any(i.get("source") == f"arm roleAssignments {EXTRA_ASSIGNMENT}" and i["field"] == "properties.scope"
               for i in result["evidence"])


def test_sarif_message_carries_the_fix_and_help_the_generic_text(red: Run) -> None:
    sarif = json.loads((red.reports / "results.sarif").read_text(encoding="utf-8"))
    run = sarif["runs"][0]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "RBAC-002")
    assert EXTRA_ASSIGNMENT not in rule["help"]["text"] and "<id>" in rule["help"]["text"]
    result = next(r for r in run["results"] if r["ruleId"] == "RBAC-002")
    assert f"az role assignment delete --ids {EXTRA_ASSIGNMENT}" in result["message"]["text"]


def test_junit_failure_and_html_show_the_fix(red: Run) -> None:
    root = ET.parse(red.reports / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name", "").startswith("RBAC-002 "))
    assert EXTRA_ASSIGNMENT in (case.findtext("failure") or "")
    html = (red.reports / "report.html").read_text(encoding="utf-8")
    assert f"az role assignment delete --ids {EXTRA_ASSIGNMENT}" in html


def test_static_fix_names_the_plan_resource_and_evidence_is_the_snapshots(tmp_path: Path) -> None:
    """Static mode: the fix removes the declaration (file:line), since there is no assignment to delete yet."""
    from aksid.sandbox.render import render
    from aksid.sandbox.scenario import load_scenario

    repo = tmp_path / RED
    render(load_scenario(RED), repo)
    reports = repo / "reports"
    run = aksid("run", "--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"), "--aksid-manifests",
                str(repo / "manifests"), "--aksid-plan", str(repo / "plan.json"), "--aksid-source-root", str(repo),
                "--aksid-reports-dir", str(reports), "-q", reports=reports)
    assert run.code == 1, run.stdout + run.stderr
    failed = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert [c["id"] for c in failed] == ["RBAC-002"]
    assert re.fullmatch(r"remove azurerm_role_assignment\.\w+ \(plan\.json:\d+\)", failed[0]["fix"]), failed[0]["fix"]
    assert evidence_not_in_snapshot(run) == []


def test_an_error_a_setting_can_fix_carries_that_fix(healthy: Run, tmp_path: Path) -> None:
    """Replayed where its trust store is gone, TLS-001 cannot verify; its fix names the setting and the path."""
    document = json.loads((healthy.reports / "snapshot.json").read_text(encoding="utf-8"))
    document["target"]["trust_store"] = str(tmp_path / "gone.pem")
    saved = tmp_path / "snapshot.json"
    saved.write_text(json.dumps(document), encoding="utf-8")
    run = run_suites("--aksid-replay", str(saved), reports=tmp_path / "reports")
    errors = [c for c in run.results["checks"] if c["outcome"] == "error"]
    assert [c["id"] for c in errors] == ["TLS-001"], run.stdout
    assert "trust_store" in errors[0]["fix"] and str(tmp_path / "gone.pem") in errors[0]["fix"]
    assert all(c["fix"] is None for c in run.results["checks"] if c["outcome"] in ("passed", "skipped"))
