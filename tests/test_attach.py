"""Attach mode against the sandbox: read-only, replayable, one collection under xdist, clear errors."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import yaml

from .harness import aksid, run_suites

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def test_demo_run_never_writes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = aksid("demo", "--reports-dir", str(tmp_path / "reports"), "--state-dir", str(state), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    requests = [json.loads(line) for line in (state / "requests.jsonl").read_text().splitlines()]
    assert {r["server"] for r in requests} == {"kube", "arm"}
    assert [r for r in requests if r["method"] in WRITE_METHODS] == []
    assert not (state / "pids.json").exists(), "the demo must stop the sandbox it started"


def test_replay_gives_the_same_results_without_any_request(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("healthy")
    live = run_suites("--aksid-profile", str(sandbox.profile), reports=tmp_path / "live")
    assert live.code == 0, live.stdout + live.stderr
    seen = len(sandbox.requests())
    replay = run_suites("--aksid-replay", str(tmp_path / "live" / "snapshot.json"), reports=tmp_path / "replay")
    assert replay.code == 0, replay.stdout + replay.stderr
    assert replay.outcomes() == live.outcomes()
    assert replay.results["mode"] == "replay"
    assert len(sandbox.requests()) == seen, "replay must not touch the network"


def test_xdist_gives_the_same_results_with_one_collection(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("nmi-missing-on-a-node")
    serial = run_suites("--aksid-profile", str(sandbox.profile), reports=tmp_path / "serial")
    pods_lists_serial = [r for r in sandbox.requests() if r["path"].startswith("/api/v1/pods")]
    parallel = run_suites("--aksid-profile", str(sandbox.profile), "-n", "2", reports=tmp_path / "parallel")
    assert serial.code == parallel.code == 1, parallel.stdout + parallel.stderr
    assert parallel.outcomes() == serial.outcomes()
    pods_lists = [r for r in sandbox.requests() if r["path"].startswith("/api/v1/pods")]
    assert len(pods_lists) == 2 * len(pods_lists_serial) == 2, "each run must list pods exactly once"


def test_kubectl_lists_the_nmi_pods_from_the_sandbox(sandbox_for) -> None:
    sandbox = sandbox_for("healthy")
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(sandbox.kubeconfig), "get", "pods", "-A", "-l", "component=nmi"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 3 and all(row[0] == "kube-system" and row[1].startswith("nmi-") for row in rows), result.stdout


def test_unreachable_cluster_is_an_error_not_a_failure(sandbox_for, tmp_path: Path) -> None:
    from aksid.sandbox.runtime import down

    sandbox = sandbox_for("healthy")
    down(sandbox.state_dir)  # the profile stays, the servers are gone
    run = run_suites("--aksid-profile", str(sandbox.profile), reports=tmp_path)
    assert run.code == 1
    assert run.ids_with("failed") == set() and run.ids_with("passed") == set()
    messages = {c["message"] for c in run.results["checks"] if c["outcome"] == "error"}
    assert any("unreachable" in m for m in messages), messages
    assert "Traceback" not in run.stdout + run.stderr


def test_scenario_by_path_with_arm_throttling(tmp_path: Path) -> None:
    """Written the README's way: a patch over `healthy`, by path; ARM answers 429 for the cluster."""
    scenario = tmp_path / "throttled.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "arm-throttled",
        "description": "ARM throttles reads of the managed cluster",
        "base": "healthy",
        # every check that needs the managed cluster could not verify; none may pass or fail on a guess
        "expect": {"error": ["ACCESS-001", "ACCESS-002", "BIND-001", "MIG-002", "NMI-004", "NMI-005", "RBAC-003",
                             "RBAC-005"]},
        "azure": {"faults": [{"match": "managedClusters/hello-aks", "status": 429,
                              "headers": {"Retry-After": "30"}, "code": "TooManyRequests"}]},
    }))
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(tmp_path / "r"), reports=tmp_path / "r")
    assert run.code == 0, run.stdout + run.stderr
    errors = [c for c in run.results["checks"] if c["outcome"] == "error"]
    assert errors and all("429" in c["message"] and "retry after 30 s" in c["message"] for c in errors), errors


PLANTED = "planted-Secret-Value-7f3a9c"


def test_planted_secrets_never_reach_reports_or_output(tmp_path: Path) -> None:
    encoded = base64.b64encode(PLANTED.encode()).decode()
    scenario = tmp_path / "planted.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "planted-secret", "description": "a client secret in a Secret and in an env var", "base": "healthy",
        "kube": {
            "add": [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": "leaky", "namespace": "kube-addons",
                                  "annotations": {"kubectl.kubernetes.io/last-applied-configuration": PLANTED}},
                     "data": {"client-secret": encoded}}],
            "patch": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "hello", "name": "hello-kubernetes",
                       "merge": {"spec": {"template": {"spec": {"containers": [{
                           "name": "hello-kubernetes", "image": "paulbouwer/hello-kubernetes:1.10",
                           "args": [f"--client-secret={PLANTED}"],
                           "env": [{"name": "AZURE_CLIENT_SECRET", "value": PLANTED}]}]}}}}}],
        },
    }))
    reports = tmp_path / "reports"
    state = tmp_path / "state"
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(reports), "--state-dir", str(state),
                "--", "--aksid-read-secrets", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    tokens = [(state / "arm-token").read_text(), yaml.safe_load((state / "kubeconfig").read_text())["users"][0]["user"]["token"]]
    snapshot = (reports / "snapshot.json").read_text()
    assert "leaky" in snapshot and "AZURE_CLIENT_SECRET" in snapshot, "the planted objects must have been collected"
    secret_evidence = [i for c in run.results["checks"] for i in c["evidence"]
                       if i.get("source", "").startswith("kube v1/Secret")]
    assert secret_evidence, "the reports carry evidence read from Secrets, and must still hold no secret"
    for path in [*reports.iterdir()]:
        text = path.read_text()
        for secret in (PLANTED, encoded, *tokens):
            assert secret not in text, f"{path.name} leaks a secret"
    for secret in (PLANTED, encoded, *tokens):
        assert secret not in run.stdout + run.stderr


def test_terminated_demo_stops_its_sandbox(tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    from .harness import REPO, clean_env

    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "aksid", "demo", "--reports-dir", str(tmp_path / "r"), "--state-dir", str(state)],
        cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "sandbox up" in line:
            break
    pid = json.loads((state / "pids.json").read_text())["serve"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 130
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"sandbox server {pid} still running after the demo was terminated")
    assert not (state / "pids.json").exists()
