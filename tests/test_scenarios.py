"""Every built-in scenario: `aksid demo` meets its expectation; every check has a red scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aksid.catalogue import load_catalogue
from aksid.sandbox.scenario import builtin_names, load_scenario

from .diff_expectations import assert_diff_names_change, base_of
from .harness import aksid, evidence_not_in_snapshot

SCENARIOS = builtin_names()


def assert_one_issued_leaf(snapshot_path: Path) -> None:
    """The chain picture, the diff and TLS-003 name the same issued leaf for every Certificate (aksid.facts)."""
    import json

    from aksid.suites.test_tls import _issued_leaf as tls_issued

    from aksid.diff_facts import _issued as diff_issued
    from aksid.reporting.chain import _issued as chain_issued
    from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot

    document = json.loads(snapshot_path.read_text(encoding="utf-8"))
    snapshot = Snapshot(document)
    by_diff = diff_issued(document)
    for certificate in snapshot.kube.list("cert-manager.io/v1", "Certificate"):
        namespace, name = certificate["metadata"]["namespace"], certificate["metadata"]["name"]
        try:
            by_check = tls_issued(snapshot, namespace, name)[0]
        except (EvidenceUnavailable, EvidenceNotCollected):
            by_check = None
        by_chain = chain_issued(snapshot, namespace, name) if by_check is not None else None
        serials = {getattr(leaf, "serial_number", None) for leaf in (by_check, by_chain,
                                                                     by_diff.get(f"{namespace}/{name}"))}
        assert len(serials) == 1, (namespace, name, serials)
ATTACH_IDS = {entry.id for entry in load_catalogue() if "attach" in entry.modes}  # PROBE/CANARY need provision mode


@pytest.mark.parametrize("name", SCENARIOS)
def test_demo_meets_scenario_expectation(name: str, tmp_path: Path, base_reports: Any) -> None:
    run = aksid("demo", "--scenario", name, "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, f"{name}: exit {run.code}\n{run.stdout}\n{run.stderr}"
    scenario = load_scenario(name)
    assert run.ids_with("failed") == set(scenario.expect_failed) & ATTACH_IDS, run.stdout
    assert run.ids_with("error") == set(scenario.expect_error) & ATTACH_IDS, run.stdout
    for check_id, texts in scenario.expect_mentions.items():  # the node or pod the finding is about, by name
        if check_id not in ATTACH_IDS:
            continue  # judged in provision mode (tests/test_provision.py)
        said = " ".join(c["message"] for c in run.results["checks"] if c["id"] == check_id)
        assert all(text in said for text in texts), (check_id, texts, said)
    failed = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert all(c["fix"] for c in failed), [(c["id"], c["subject"]) for c in failed if not c["fix"]]
    assert all(c["evidence"] for c in failed + [c for c in run.results["checks"] if c["outcome"] == "passed"])
    assert evidence_not_in_snapshot(run) == [], "evidence must be what the snapshot holds, in red runs too"
    assert_one_issued_leaf(tmp_path / "snapshot.json")
    if not (set(scenario.expect_failed) | set(scenario.expect_error)) & ATTACH_IDS:
        assert run.ids_with("passed"), "a green scenario must pass checks, not skip them all"
        assert "aksid summary" in run.stdout
    elif base_of(name) in ("healthy", "healthy-wi"):  # `aksid diff` against the base names what the scenario changed
        red = (set(scenario.expect_failed) | set(scenario.expect_error)) & ATTACH_IDS
        assert_diff_names_change(name, base_reports(base_of(name)), tmp_path, red)


def test_healthy_is_all_green(tmp_path: Path) -> None:
    run = aksid("demo", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    provision_only = [c for c in run.results["checks"] if c["id"] not in ATTACH_IDS]
    assert provision_only and all(c["outcome"] == "skipped" and "--aksid-mode provision" in c["message"]
                                  for c in provision_only), provision_only
    not_passed = [c for c in run.results["checks"] if c["outcome"] != "passed" and c["id"] in ATTACH_IDS]
    # The tutorial uses pod identity: workload identity's checks skip, saying so.
    wi = [c for c in not_passed if c["area"] == "WI"]
    assert wi and all(c["outcome"] == "skipped" and "no workload identity in use" in c["message"] for c in wi), wi
    assert run.results["identity_models"]["cluster"] == "pod-identity"
    not_passed = [c for c in not_passed if c["area"] != "WI"]
    # Migration: not started, so MIG-001 names what each workload lacks; nothing asks for the sidecar; not cut over.
    mig = {c["id"]: c["message"] for c in not_passed if c["area"] == "MIG"}
    assert "set `migration_required` to judge" in mig.pop("MIG-001") and set(mig) == {"MIG-003", "MIG-004"}, mig
    assert {w["state"] for w in run.results["migration"]["workloads"]} == {"pod identity only"}
    not_passed = [c for c in not_passed if c["area"] != "MIG"]
    # Secret contents are opt-in: without --aksid-read-secrets the one check that needs them says so and skips.
    assert all(c["outcome"] == "skipped" and "--aksid-read-secrets" in c["message"] for c in not_passed), not_passed
    catalogue = {"NMI-001", "NMI-002", "NMI-003", "NMI-004", "NMI-005", "BIND-001", "BIND-002", "BIND-003", "BIND-004",
                 "RBAC-001", "RBAC-002", "RBAC-003", "RBAC-004", "RBAC-005", "DNS-001", "DNS-002", "DNS-003", "DNS-004",
                 "ISS-001", "ISS-002", "ISS-003", "ISS-004", "TLS-001", "TLS-002", "TLS-003", "TLS-004"}
    assert catalogue <= run.ids_with("passed")


def test_healthy_wi_passes_wi_and_model_neutral_checks_and_skips_pod_identitys(tmp_path: Path) -> None:
    """The tutorial migrated to workload identity: not red on NMI-001, and nothing model-neutral merely skipped."""
    run = aksid("demo", "--scenario", "healthy-wi", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    checks = run.results["checks"]
    must_pass = {"WI-001", "WI-002", "WI-003", "WI-004", "WI-005", "RBAC-001", "RBAC-002", "RBAC-003", "RBAC-004",
                 "DNS-001", "DNS-002", "DNS-003", "DNS-004", "ISS-001", "ISS-002", "ISS-003", "ISS-004",
                 "TLS-001", "TLS-002", "TLS-003", "TLS-004"}
    assert must_pass <= run.ids_with("passed"), sorted(must_pass - run.ids_with("passed"))
    pod_identitys = [c for c in checks if c["area"] in ("NMI", "BIND") or c["id"] == "RBAC-005"]
    assert pod_identitys and all(c["outcome"] == "skipped" and "no pod identity in use" in c["message"]
                                 for c in pod_identitys), pod_identitys
    models = run.results["identity_models"]
    assert models["cluster"] == "workload-identity"
    assert {w["workload"]: w["model"] for w in models["workloads"]} == {
        "deployment/kube-addons/external-dns": "workload-identity", "deployment/kube-addons/cert-manager": "workload-identity"}
    assert "identity models: workload-identity" in run.stdout


def test_half_migrated_cluster_is_reported_as_such(tmp_path: Path) -> None:
    """external-dns on workload identity, cert-manager on pod identity: each half judged by its own model's checks."""
    run = aksid("demo", "--scenario", "benign-wi-half-migrated", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    models = run.results["identity_models"]
    assert models["cluster"] == "both"
    assert {w["workload"]: w["model"] for w in models["workloads"]} == {
        "deployment/kube-addons/external-dns": "workload-identity", "deployment/kube-addons/cert-manager": "pod-identity"}
    subjects = {(c["id"], c["subject"]) for c in run.results["checks"] if c["outcome"] == "passed"}
    assert ("BIND-002", "deployment/kube-addons/cert-manager") in subjects  # its pod identity, by BIND's rules
    assert ("BIND-002", "deployment/kube-addons/external-dns") not in subjects  # migrated: WI's rules judge it
    assert {("WI-004", "serviceaccount/kube-addons/external-dns"), ("NMI-001", "cluster/hello-aks")} <= subjects
    assert "Identity models: **both**" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_every_check_has_a_red_scenario(tmp_path: Path) -> None:
    run = aksid("demo", "--reports-dir", str(tmp_path), reports=tmp_path)
    catalogue = {c["id"] for c in run.results["checks"]}
    red = {check_id for name in SCENARIOS for check_id in load_scenario(name).expect_failed}
    assert catalogue - red == set(), f"checks without a red scenario: {sorted(catalogue - red)}"
