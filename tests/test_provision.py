"""Provision mode against the sandbox: probes and a canary observed, every object labelled and removed,
whatever happens (failure, SIGINT, SIGTERM); the team's own up/down commands around a run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aksid.sandbox.scenario import builtin_names, load_scenario

from .harness import REPO, aksid, clean_env, run_suites

RUN_LABEL = "aksid.io/run"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PROVISION_IDS = {"PROBE-001", "PROBE-002", "CANARY-001", "CANARY-002", "CANARY-003"}
# the red scenarios of provision mode: those whose expectation names a PROBE or CANARY check
RED = [name for name in builtin_names()
       if PROVISION_IDS & set(load_scenario(name).expect_failed + load_scenario(name).expect_error)]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory):
    from aksid.sandbox.runtime import down, up

    sandbox = up("healthy", tmp_path_factory.mktemp("sandbox"))
    yield sandbox
    down(sandbox.state_dir)


def labelled_objects(sandbox) -> list[str]:
    """Every object of the sandbox's kube API carrying any run label, read through the official client."""
    from kubernetes import client, config

    api = client.ApiClient(config.new_client_from_config(str(sandbox.kubeconfig)).configuration)
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    found = []
    for lister in (core.list_pod_for_all_namespaces, core.list_service_for_all_namespaces,
                   apps.list_deployment_for_all_namespaces, net.list_ingress_for_all_namespaces, core.list_namespace):
        found += [f"{item.kind or ''}{item.metadata.namespace}/{item.metadata.name}"
                  for item in lister(label_selector=RUN_LABEL).items]
    return found


def writes(sandbox, since: int = 0) -> list[dict]:
    return [r for r in sandbox.requests()[since:] if r["method"] in WRITES]


def test_provision_on_healthy_is_green_and_leaves_nothing(healthy, tmp_path: Path) -> None:
    before = len(healthy.requests())
    run = run_suites("--aksid-profile", str(healthy.profile), "--aksid-mode", "provision", reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.ids_with("passed") >= PROVISION_IDS, run.stdout
    assert {"NMI-002", "BIND-002", "RBAC-001", "DNS-003", "TLS-001"} <= run.ids_with("passed")
    assert run.results["mode"] == "provision"
    assert "the A record of aksid-canary.example.test in Azure DNS: done after" in run.stdout  # the printed timeline
    assert labelled_objects(healthy) == []
    made = writes(healthy, before)
    run_id = json.loads((tmp_path / "snapshot.json").read_text())["provision"]["run_id"]
    assert {r["method"] for r in made} == {"POST", "DELETE"} and all(r["server"] == "kube" for r in made)
    # every create and every delete names an object carrying this run's label, nothing else
    assert all((r.get("labels") or {}).get(RUN_LABEL) == run_id for r in made), [r for r in made if not r.get("labels")]


def test_provision_evidence_holds_claims_never_a_token(healthy, tmp_path: Path) -> None:
    run = run_suites("--aksid-profile", str(healthy.profile), "--aksid-mode", "provision", reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    text = "\n".join(path.read_text() for path in tmp_path.iterdir() if path.is_file()) + run.stdout + run.stderr
    assert "eyJ" not in text, "a JWT reached a report"
    bound = json.loads((tmp_path / "snapshot.json").read_text())["provision"]["probes"]["probe-bound"]["value"]
    assert set(bound["claims"]) == {"oid", "appid", "tid", "aud", "exp", "xms_mirid"}


@pytest.mark.parametrize("name", RED)
def test_each_provision_red_scenario(name: str, tmp_path: Path) -> None:
    run = aksid("demo", "--mode", "provision", "--scenario", name, "--reports-dir", str(tmp_path), "--",
                "--aksid-set", "provision_timeout=10", reports=tmp_path)
    assert run.code == 0, f"{name}: exit {run.code}\n{run.stdout}\n{run.stderr}"  # expectation (and mentions) met
    scenario = load_scenario(name)
    assert run.ids_with("failed") == set(scenario.expect_failed)


def test_an_attach_run_of_a_provision_scenario_ignores_its_provision_ids(tmp_path: Path) -> None:
    run = aksid("demo", "--scenario", "probe-nmi-leaky", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    skipped = {c["id"]: c["message"] for c in run.results["checks"] if c["outcome"] == "skipped"}
    assert set(skipped) >= PROVISION_IDS and "--aksid-mode provision" in skipped["PROBE-001"]


def _interrupted_run(healthy, tmp_path: Path, sig: signal.Signals, after_posts: int) -> subprocess.CompletedProcess:
    """Start a provision run, send `sig` once the sandbox has seen `after_posts` creates, let it finish."""
    before = len(healthy.requests())
    process = subprocess.Popen(
        [sys.executable, "-m", "aksid", "run", "--aksid-profile", str(healthy.profile), "--aksid-mode", "provision",
         "--aksid-reports-dir", str(tmp_path), "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while len([r for r in writes(healthy, before) if r["method"] == "POST"]) < after_posts:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the fixed point"
        time.sleep(0.01)
    process.send_signal(sig)
    out, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out)


@pytest.mark.parametrize(("sig", "after_posts"), [(signal.SIGINT, 3), (signal.SIGTERM, 7)], ids=["sigint", "sigterm"])
def test_an_interrupted_run_leaves_nothing(healthy, tmp_path: Path, sig: signal.Signals, after_posts: int) -> None:
    done = _interrupted_run(healthy, tmp_path, sig, after_posts)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout
    assert labelled_objects(healthy) == [], done.stdout


def test_infra_hooks_provision_check_destroy(tmp_path: Path) -> None:
    state = tmp_path / "env"
    up = f"{sys.executable} -m aksid sandbox up --state-dir {state}"
    down = f"{sys.executable} -m aksid sandbox down --state-dir {state}"
    run = run_suites("--aksid-provision-cmd", up, "--aksid-teardown-cmd", down, "--aksid-profile",
                     str(state / "profile.yaml"), "--aksid-mode", "provision", reports=tmp_path / "reports")
    assert run.code == 0, run.stdout + run.stderr
    assert "provision command exited 0" in run.stdout and "teardown command exited 0" in run.stdout
    assert not (state / "pids.json").exists(), "the teardown command must have stopped the environment"


def test_a_failed_provision_command_still_runs_the_teardown(tmp_path: Path) -> None:
    state = tmp_path / "env"
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"provision": {
        "up": f"{sys.executable} -m aksid sandbox up --state-dir {state} && exit 3",
        "down": f"{sys.executable} -m aksid sandbox down --state-dir {state}"}}))
    run = run_suites("--aksid-profile", str(profile), reports=tmp_path / "reports")
    assert run.code == 4, run.stdout + run.stderr
    assert "the provision command failed" in run.stdout + run.stderr
    assert "teardown command exited 0" in run.stdout + run.stderr
    assert (state / "ready.json").exists() is False and not (state / "pids.json").exists()
    assert "Traceback" not in run.stdout + run.stderr


def test_sweep_removes_what_a_killed_run_left(healthy, tmp_path: Path) -> None:
    from kubernetes import client, config

    api = client.ApiClient(config.new_client_from_config(str(healthy.kubeconfig)).configuration)
    leftover = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "aksid-killed", "labels": {RUN_LABEL: "20261201t0000-dead00"}}}
    client.CoreV1Api(api).create_namespace(leftover)
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "not-ours", "labels": {"team": "a"}}}
    client.CoreV1Api(api).create_namespace(other)
    swept = aksid("sweep", "--run-id", "20261201t0000-dead00", "--aksid-profile", str(healthy.profile), reports=tmp_path)
    assert swept.code == 0, swept.stdout + swept.stderr
    assert "deleted namespace/aksid-killed" in swept.stdout
    names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    assert "aksid-killed" not in names and "not-ours" in names
    client.CoreV1Api(api).delete_namespace("not-ours")
