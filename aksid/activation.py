"""When the aksid plugin acts, and on which tests.

Installed through the `pytest11` entry point, the plugin is loaded by every pytest run in the
environment, so it must leave unrelated runs exactly as they are. It acts only when the run asks
for aksid: an `--aksid-*` option, the bundled suites among the paths, or, found only while
collecting, a test carrying the `check` marker (a team's own checks run with plain `pytest`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from aksid.checks import SEVERITIES
from aksid.modes import SelectableModes
from aksid.paths import suites_dir

# (flag, argparse keywords): every option of the plugin, spelled --aksid-*, so no other plugin's flag collides.
OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--aksid-profile", {"metavar": "PATH", "help": "YAML profile (sections target, kube, azure, dns, tls)"}),
    ("--aksid-target", {"metavar": "PROFILE", "action": "append", "default": [],
                        "help": "one environment of a fleet (repeatable): its profile; named by its `name:` or file stem"}),
    ("--aksid-env-file", {"metavar": "PATH", "help": "the tutorial's env.sh, read without executing it"}),
    ("--aksid-set", {"metavar": "FIELD=VALUE", "action": "append", "default": [],
                     "help": "override one target field; wins over every other source"}),
    ("--aksid-kube-context", {"metavar": "NAME", "help": "kubeconfig context to use (`aksid run` also takes --kube-context)"}),
    ("--aksid-replay", {"metavar": "PATH", "help": "check a saved snapshot; no network at all"}),
    ("--aksid-mode", {"metavar": "MODE", "choices": SelectableModes(), "default": None,
                      "help": "attach (default: read only), provision (also create labelled probes and a canary, "
                              "observe, remove them) or static (read a repository's files: no cluster, no cloud)"}),
    ("--aksid-manifests", {"metavar": "PATH", "action": "append", "default": [],
                           "help": "static mode: a file or folder of Kubernetes YAML (helm/helmfile/kustomize output too)"}),
    ("--aksid-plan", {"metavar": "FILE", "action": "append", "default": [],
                      "help": "static mode: a Terraform plan as `terraform show -json tfplan` writes it"}),
    ("--aksid-arm-template", {"metavar": "FILE", "action": "append", "default": [],
                              "help": "static mode: an ARM template (e.g. `bicep build` output), deployed to "
                                      "aks_resource_group; FILE@GROUP deploys it to GROUP"}),
    ("--aksid-arm-parameters", {"metavar": "FILE", "action": "append", "default": [],
                                "help": "static mode: an ARM parameters file whose values the templates deploy with "
                                        "(default: their parameters' default values)"}),
    ("--aksid-source-root", {"metavar": "DIR", "default": None,
                             "help": "static mode: paths in findings are relative to it (default: the current folder)"}),
    ("--aksid-provision-cmd", {"metavar": "CMD", "help": "a command that creates the environment, run before anything "
                                                         "else (profile provision.up); its files may be the profile's"}),
    ("--aksid-teardown-cmd", {"metavar": "CMD", "help": "a command that destroys the environment, run after everything, "
                                                        "also when the provision command or the checks failed "
                                                        "(profile provision.down)"}),
    ("--aksid-read-secrets", {"action": "store_true", "default": False,
                              "help": "read Secret contents (redacted before they are stored); off by default"}),
    ("--aksid-waivers", {"metavar": "FILE", "help": "YAML waivers: check, subject pattern, reason, expires"}),
    ("--aksid-fail-on", {"metavar": "SEVERITY", "default": "low", "choices": SEVERITIES,
                         "help": "exit non-zero only for failures/errors at or above this severity (default: low)"}),
    ("--aksid-reports-dir", {"metavar": "DIR", "default": "reports", "help": "where reports go (default: reports)"}),
    ("--aksid-timeout", {"metavar": "SECONDS", "default": None,
                         "help": "deadline of the whole evidence collection, retries included (default: 300; "
                                 "the setting collect_timeout)"}),
    ("--aksid-baseline", {"metavar": "PATH", "default": None,
                          "help": "an earlier run (results.json, snapshot.json or its reports folder): every report "
                                  "shows the changes since, and marks checks red since as new"}),
    ("--aksid-check", {"metavar": "ID|AREA", "action": "append", "default": [],
                       "help": "run only this check (RBAC-003) or area (RBAC); repeatable, or comma-separated"}),
    ("--aksid-skip-check", {"metavar": "ID|AREA", "action": "append", "default": [],
                            "help": "leave out this check or area (wins over --aksid-check); repeatable, or comma-separated"}),
    ("--aksid-min-coverage", {"metavar": "PERCENT", "type": float, "default": None,
                              "help": "exit 1 when less than this share of the evidence could be collected"}),
)


def settings_overrides(config: Any) -> list[str]:
    """`--aksid-set` pairs, then `--aksid-timeout` (the last word, like --aksid-set's), which config.parse_overrides
    reads as the field it sets."""
    pairs = list(config.getoption("aksid_set") or [])
    if config.getoption("aksid_timeout") is not None:
        pairs.append(f"--aksid-timeout={config.getoption('aksid_timeout')}")
    return pairs


def dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def options_given(config: pytest.Config) -> list[str]:
    """The --aksid-* options this run set (on the command line, in addopts or PYTEST_ADDOPTS)."""
    return [flag for flag, kwargs in OPTIONS if config.getoption(dest(flag)) != kwargs.get("default")]


def names_bundled_suites(args: Iterable[str]) -> bool:
    suites = suites_dir()
    for arg in args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


def asks_for_aksid(config: pytest.Config) -> bool:
    """Known before collection: an --aksid-* option, or the bundled suites among the paths."""
    return bool(options_given(config)) or names_bundled_suites(config.args)


def include_bundled_suites(config: pytest.Config) -> None:
    """An aksid run always runs the bundled checks: beside the paths given, instead of the invocation directory.

    A path inside the bundled suites (one module, one test) selects from them and is kept as it is.
    """
    if names_bundled_suites(config.args):
        return
    suites = str(suites_dir())
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR:
        config.args = [suites]  # `pytest --aksid-profile p.yaml` in any folder: the checks, not that folder's tests
    else:
        config.args = [*config.args, suites]


def shared_folder(testrunuid: str) -> Path:
    """Where the xdist workers of one run meet when only collection revealed checks."""
    return Path(tempfile.gettempdir()) / f"aksid-run-{testrunuid}"


def collect_once_per_run(testrunuid: str, collect: Callable[[], Path]) -> Path:
    """The first worker to get the lock collects and writes the snapshot; the others read its path (xdist's recipe)."""
    folder = shared_folder(testrunuid)
    folder.mkdir(exist_ok=True)
    done = folder / "snapshot-path"
    from filelock import FileLock  # only a late-activated xdist run takes it (10 ms of import for every other run)

    with FileLock(str(folder / "collect.lock")):
        if done.exists():
            return Path(done.read_text(encoding="utf-8"))
        path = collect()
        done.write_text(str(path.resolve()), encoding="utf-8")
        return path


def collect_in_first_worker(testrunuid: str, run: Any, collect: Callable[[], Any]) -> None:
    """A worker of a late-activated run: the first to get the lock collects (`collect`); the others receive its
    snapshot (aksid.run.handover)."""
    from aksid.run.handover import receive

    def collected() -> Path:
        collect()
        assert run.snapshot_path is not None
        return run.snapshot_path

    path = collect_once_per_run(testrunuid, collected)
    if run.snapshot is None:  # another worker collected
        run.adopt(receive({"aksid_snapshot": str(path)}))


def adopt_workers_snapshot(run: Any, testrunuid: str) -> None:
    """A late-activated controller reports on the snapshot its workers collected, then removes their meeting place."""
    path = collected_snapshot_path(testrunuid)
    remove_shared_folder(testrunuid)
    if path is not None and path.exists():
        run.adopt_file(path)


def collected_snapshot_path(testrunuid: str) -> Path | None:
    done = shared_folder(testrunuid) / "snapshot-path"
    return Path(done.read_text(encoding="utf-8")) if done.exists() else None


def remove_shared_folder(testrunuid: str) -> None:
    shutil.rmtree(shared_folder(testrunuid), ignore_errors=True)
