"""The small things a new user meets first: a fast scenario listing and `scenarios show`, a replay that outlives the
sandbox's trust store, `make demo` without a browser, CI examples that install a pinned aksid, `aksid deploy`,
sweep's "nothing to remove", merge naming a clash of target names, and render saying what it cannot render."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid import cli
from aksid.paths import deploy_dir
from aksid.results import RESULTS_SCHEMA
from aksid.sandbox import scenario as scenario_module
from aksid.sandbox.scenario import builtin_names, load_scenario

from .harness import REPO, aksid, clean_env

RUN_LABEL = "aksid.io/run"


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- aksid scenarios ------------------------------------------------------------------------------------------

def test_the_listing_loads_no_scenario(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def full_load(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the listing loaded a scenario with its bases")

    monkeypatch.setattr(scenario_module, "load_scenario", full_load)
    assert cli.main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == builtin_names()
    [red] = [line for line in lines if line.startswith("rbac-zone-role-missing ")]
    assert "RBAC-001, CANARY-001, CANARY-002" in red


@pytest.mark.parametrize("name", ["healthy", "rbac-zone-role-missing", "wi-pod-identity-leftovers", "tls-expired-leaf"])
def test_the_listing_says_what_a_full_load_says(name: str) -> None:
    [summary] = [s for s in scenario_module.builtin_summaries() if s.name == name]
    loaded = load_scenario(name)
    assert (summary.description, summary.expect_failed, summary.expect_error) == (
        loaded.description, loaded.expect_failed, loaded.expect_error)


def _fields(scenario: scenario_module.Scenario) -> dict[str, Any]:
    return {k: v for k, v in vars(scenario).items() if k != "path"}


@pytest.mark.parametrize("name", ["rbac-zone-role-missing", "wi-pod-identity-leftovers"])
def test_show_prints_the_scenario_with_its_bases_applied(name: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scenarios", "show", name]) == 0
    shown = capsys.readouterr().out
    document = yaml.safe_load(shown)
    assert "base" not in document
    original = load_scenario(name)
    assert len(document["kube"]["add"]) == len(original.kube_objects) > 50  # the base's objects are in it
    flat = tmp_path / f"{name}-flat.yaml"
    flat.write_text(shown, encoding="utf-8")
    assert _fields(load_scenario(str(flat))) == _fields(original)  # one file that loads as the same scenario

    assert cli.main(["scenarios", "show", name, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(document, default=str))


@pytest.mark.parametrize(("argv", "said"), [
    (["scenarios", "show"], "show needs a scenario NAME"),
    (["scenarios", "healthy"], "'healthy' is neither list nor show; `aksid scenarios show healthy` prints"),
    (["scenarios", "list", "healthy"], "is for `aksid scenarios show healthy`"),
    (["scenarios", "show", "healty"], "did you mean 'healthy'"),
])
def test_scenarios_usage_errors_are_one_sentence(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 4
    captured = capsys.readouterr()
    assert said in _one_line(captured.err) and captured.out == ""


# -- replay after the sandbox is gone --------------------------------------------------------------------------

def test_a_demo_snapshot_replays_after_its_trust_store_is_deleted(base_reports: Any, tmp_path: Path) -> None:
    source = base_reports("healthy") / "snapshot.json"
    document = json.loads(source.read_text(encoding="utf-8"))
    trust_store = document["target"]["trust_store"]
    assert trust_store and not Path(trust_store).exists()  # the demo removed its sandbox, and the file with it
    recorded = document["trust_store"]
    assert recorded["path"] == trust_store and recorded["certificates"]
    assert all(pem.startswith("-----BEGIN CERTIFICATE-----") for pem in recorded["certificates"])  # public roots only

    replay = aksid("run", "--aksid-replay", str(source), "--aksid-reports-dir", str(tmp_path / "r"), "-q",
                   reports=tmp_path / "r")
    [tls] = [c for c in replay.results["checks"] if c["id"] == "TLS-001"]
    assert tls["outcome"] == "passed", tls["message"]
    notes = [item.get("note", "") for item in tls["evidence"] if item.get("field") == "trust_store"]
    assert any("no longer exists" in note and "recorded" in note for note in notes), tls["evidence"]

    del document["trust_store"]  # a snapshot that did not carry the roots: the file's absence is all there is
    bare = tmp_path / "without-roots.json"
    bare.write_text(json.dumps(document), encoding="utf-8")
    replay = aksid("run", "--aksid-replay", str(bare), "--aksid-reports-dir", str(tmp_path / "b"), "-q",
                   reports=tmp_path / "b")
    [tls] = [c for c in replay.results["checks"] if c["id"] == "TLS-001"]
    assert tls["outcome"] == "error" and "cannot be read" in tls["message"]


# -- make demo / make test -------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_only_make_test_installs_chromium() -> None:
    def planned(goal: str) -> str:
        return subprocess.run(["make", "-n", goal], cwd=REPO, capture_output=True, text=True, check=True,
                              timeout=60).stdout

    demo, test = planned("demo"), planned("test")
    assert "aksid demo" in demo and "chromium" not in demo
    assert "pytest tests" in test and re.search(r"apt-get install .*\bchromium\b", test)
    assert "test -x \"$binary\"" in demo and "/usr/bin/chromium" in test  # each checks what it needs before apt


# -- CI examples -----------------------------------------------------------------------------------------------

PINNED = re.compile(r"aksid @ git\+https://\S+@[0-9a-f]{40}|\S+\.whl")


@pytest.mark.parametrize("workflow", ["github-actions.yml", "azure-pipelines.yml"])
def test_the_ci_examples_install_a_pinned_aksid(workflow: str) -> None:
    document = yaml.safe_load((REPO / "examples" / "ci" / workflow).read_text(encoding="utf-8"))
    variables = document.get("env") or document.get("variables") or {}
    steps = document["jobs"]["aksid"]["steps"] if "jobs" in document else document["steps"]
    scripts = [step.get("run") or step.get("script") or "" for step in steps]
    installs = [shlex.split(line.strip())[2:] for script in scripts for line in script.splitlines()
                if line.strip().startswith("pip install")]
    assert installs, "no pip install step"
    for arguments in installs:
        for argument in arguments:
            value = variables.get(argument.removeprefix("$"), argument) if argument.startswith("$") else argument
            assert PINNED.fullmatch(value), f"{workflow}: `pip install {argument}` is {value!r}, not a pinned source"


# -- aksid deploy ----------------------------------------------------------------------------------------------

def _shipped() -> dict[str, bytes]:
    where = deploy_dir()
    assert where is not None
    return {p.name: p.read_bytes() for p in where.iterdir() if p.suffix in (".yaml", ".json")}


def test_deploy_writes_the_shipped_files_and_never_over_a_changed_one(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rights"
    assert cli.main(["deploy", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == _shipped() and "rbac.yaml" in _shipped()
    assert f"kubectl apply -f {out}/rbac.yaml" in said
    assert cli.main(["deploy", "--out", str(out)]) == 0  # the same files again: nothing to protect
    capsys.readouterr()
    (out / "cronjob.yaml").write_text("# filled in by the team\n", encoding="utf-8")
    assert cli.main(["deploy", "--out", str(out)]) == 4
    assert "cronjob.yaml already exist(s) with other content" in _one_line(capsys.readouterr().err)
    assert (out / "cronjob.yaml").read_text(encoding="utf-8") == "# filled in by the team\n"


def test_deploy_works_from_the_installed_layout(tmp_path: Path) -> None:
    """The package as a wheel lays it out (setuptools' build_py, pyproject's package-dir and package-data): a pip user
    without a clone gets the same files."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md", "aksid", "suites", "fixtures", "deploy"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, context / name)
    built = tmp_path / "lib"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(built)],
                   cwd=context, check=True, capture_output=True, timeout=120)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process = subprocess.run([sys.executable, "-m", "aksid", "deploy", "--out", "rights"], cwd=elsewhere,
                             env={**clean_env(), "PYTHONPATH": str(built)}, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    assert {p.name: p.read_bytes() for p in (elsewhere / "rights").iterdir()} == _shipped()


# -- aksid sweep -----------------------------------------------------------------------------------------------

def test_sweep_says_nothing_to_remove_and_what_it_looked_for(healthy: Any, tmp_path: Path) -> None:
    from kubernetes import client, config

    swept = aksid("sweep", "--run-id", "20261201t0000-none00", "--aksid-profile", str(healthy.profile), reports=tmp_path)
    assert swept.code == 0, swept.stdout + swept.stderr
    line = swept.stdout.strip()
    assert line.startswith("aksid sweep: nothing to remove: no pods, deployments, services, ingresses, namespaces "
                           f"labelled {RUN_LABEL}=20261201t0000-none00 in the cluster at https://127.0.0.1:"), line

    api = client.CoreV1Api(client.ApiClient(config.new_client_from_config(str(healthy.kubeconfig)).configuration))
    api.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "aksid-young", "labels": {RUN_LABEL: "20261201t0000-young0"}}})
    try:
        swept = aksid("sweep", "--older-than", "1d", "--aksid-profile", str(healthy.profile), reports=tmp_path)
        assert swept.code == 0, swept.stdout + swept.stderr
        assert "nothing to remove" in swept.stdout and "older than 1d (1 younger kept)" in swept.stdout, swept.stdout
    finally:
        api.delete_namespace("aksid-young")


# -- aksid merge -----------------------------------------------------------------------------------------------

def _results(folder: Path, name: str, cluster: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "results.json"
    path.write_text(json.dumps({"schema": RESULTS_SCHEMA, "mode": "attach", "started": "2026-12-01T00:00:00+00:00",
                                "checks": [], "targets": [{"name": name, "target": {"cluster_name": cluster}}]}),
                    encoding="utf-8")
    return path


def test_merge_names_a_clash_of_target_names_and_how_to_name_targets(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    prod = _results(tmp_path / "prod", "profile", "prod-aks")
    staging = _results(tmp_path / "staging", "profile", "staging-aks")
    assert cli.main(["merge", str(prod), str(staging), "--reports-dir", str(tmp_path / "merged")]) == 4
    line = _one_line(capsys.readouterr().err)
    assert f"{prod} and {staging} are runs of two different targets both named 'profile'" in line
    assert "(clusters prod-aks and staging-aks)" in line and "give each profile its own `name:`" in line
    assert not (tmp_path / "merged").exists()

    assert cli.main(["merge", str(prod), str(prod), "--reports-dir", str(tmp_path / "merged")]) == 4
    assert "reports target profile again" in _one_line(capsys.readouterr().err)


# -- aksid sandbox render --------------------------------------------------------------------------------------

def test_render_says_what_it_cannot_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repo"
    assert cli.main(["sandbox", "render", "--scenario", "bind-exception-label-on-bare-pod", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 of scenario bind-exception-label-on-bare-pod's changes cannot be rendered" in err
    assert "Pod kube-system/dns-debug (added): a bare Pod" in err
    note = (out / "NOT-RENDERED.md").read_text(encoding="utf-8")
    assert "- Pod kube-system/dns-debug (added): a bare Pod" in note
    assert "dns-debug" not in "".join(p.read_text() for p in (out / "manifests").iterdir())

    # a scenario whose change a repository holds: no note, and none left from the render before
    assert cli.main(["sandbox", "render", "--scenario", "rbac-zone-role-missing", "--out", str(out)]) == 0
    assert capsys.readouterr().err == "" and not (out / "NOT-RENDERED.md").exists()


@pytest.mark.parametrize(("name", "said"), [
    ("iss-issuer-not-ready", "ClusterIssuer letsencrypt-prod (changed): only its status or runtime fields differ"),
    ("nmi-daemonset-missing", "DaemonSet kube-system/nmi (removed)"),
    ("dns-server-serves-old-ip", "dns: the name servers' answers"),
])
def test_render_names_each_kind_of_change_it_leaves_out(name: str, said: str) -> None:
    from aksid.sandbox.render import not_rendered

    assert any(line.startswith(said) for line in not_rendered(load_scenario(name))), not_rendered(load_scenario(name))


def test_a_listing_cut_short_ends_quietly_and_leaves_sigpipe_alone() -> None:
    """`aksid scenarios | head -1` ends without a traceback; and calling main() for a listing in this process changes no
    signal disposition: SIGPIPE's default action is process-wide, and with it one reset socket killed, without a word,
    the pytest-xdist worker that later ran tests/test_resilience.py's fault proxies (seen under strace: the worker
    `+++ killed by SIGPIPE +++` after test_housekeeping called main(["scenarios"]) in it)."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["scenarios"]) == 0
        assert cli.main(["checks"]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before == signal.SIG_IGN  # Python's own: EPIPE is an exception
    listing = subprocess.run(f"{sys.executable} -m aksid checks --format json | head -c 10", shell=True,
                             capture_output=True, text=True, timeout=60)
    assert listing.stdout == "[\n  {\n    " and listing.stderr == "", listing.stderr
