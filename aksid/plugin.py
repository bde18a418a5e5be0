"""The pytest plugin (entry point `pytest11`): options, target resolution, one evidence collection per run, results.

Flow: pytest_configure decides whether the run asks for aksid (aksid/activation.py) and resolves the
target (usage error, exit 4, before any request) → pytest_sessionstart collects the snapshot once (in
the xdist controller; workers read its file) → pytest_generate_tests fans each check out over its
subjects → reports are written at session end. A run that never asks for aksid is left untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aksid.activation import (
    OPTIONS,
    asks_for_aksid,
    collect_once_per_run,
    collected_snapshot_path,
    include_bundled_suites,
    remove_shared_folder,
    settings_overrides,
)
from aksid.checks import SEVERITIES, NotApplicable, check_info
from aksid.config import LIVE_ONLY_FIELDS, ConfigError, Target, resolve_target
from aksid.evidence import EVIDENCE_KEY, Evidence
from aksid.fleet import INDEX, Member, collect_members, member_name, read_index, unique_names
from aksid.identity_models import header_lines, identity_models, skip_reason
from aksid.interrupts import reported_as_interrupted, terminate_as_interrupt
from aksid.memory import keep_until_exit, long_lived_allocations
from aksid.progress import Progress
from aksid.redact import redact_provision
from aksid.results import CheckResult, terminal_lines
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, HandOver, JsonScribe, Snapshot
from aksid.snapshot_target import target_from_snapshot
from aksid.waivers import Waiver, WaiverError, find_waiver, load_waivers

_STATE = pytest.StashKey["AksidState"]()
_LATE_USAGE_ERROR = pytest.StashKey[str]()
WORKER_WAIT = 3600.0  # seconds a worker waits for the controller's snapshot
HANDOVER = ".snapshot-handover.marshal"
SCRIBED = ".snapshot-written-by-a-worker"  # with -n: a worker wrote snapshot.json (JsonScribe); the controller need not
FLEET_PARAM = "aksid_target"  # the member a check runs for, in a fleet run
_PROPERTY = "aksid"


class AksidState:
    """Per-run state, kept in the config's stash (no module globals)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reports_dir = Path(config.getoption("aksid_reports_dir"))
        self.replay: Path | None = _path_option(config, "aksid_replay")
        self.target: Target | None = None
        self.kube_configuration: Any = None
        self.snapshot: Snapshot | None = None
        self.snapshot_path: Path | None = None
        self.credential: Any = None
        self.waivers: list[Waiver] = []
        self.stale: list[dict[str, Any]] = []
        self.collection: dict[str, Any] = {}  # coverage, retries, and the min-coverage verdict, for the summary
        self.identity_models: dict[str, Any] | None = None  # what results.json says about the identity models
        self.fail_on: str = config.getoption("aksid_fail_on")
        self.today = dt.datetime.now(dt.UTC).date()
        self.results: dict[str, CheckResult] = {}
        self.started = dt.datetime.now(dt.UTC)
        self.late_testrunuid: str | None = None  # xdist controller activated by its workers' results
        self.collector: threading.Thread | None = None  # with -n: the collection, beside the workers' start
        self.fleet: list[Member] | None = None  # --aksid-target: every environment of the run
        self.target_name: str | None = None  # a one-target run's name (see _target_name)
        self.handover: HandOver | None = None  # with -n: the workers' copy of the evidence (removed at the end)
        self.scribe_assigned = False  # with -n: one worker was asked to write snapshot.json

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Runs in the controller for every worker's reports too: results are gathered in one place."""
        for name, value in report.user_properties:
            if name == _PROPERTY:
                record = json.loads(value)
                self.results[record["nodeid"]] = CheckResult(**record)

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def mode(self) -> str:
        return "replay" if self.replay else self.config.getoption("aksid_mode") or "attach"


def _path_option(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    return Path(value).expanduser() if value else None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aksid", "aksid conformance checks")
    for flag, kwargs in OPTIONS:
        group.addoption(flag, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, not only in pyproject.toml, so a team's checks (no aksid ini) can carry the marker.
    config.addinivalue_line("markers", "check(id, title, severity, remediation, subjects, modes): an aksid conformance check")
    if asks_for_aksid(config):
        include_bundled_suites(config)
        _activate(config)
    elif not hasattr(config, "workerinput"):
        config.pluginmanager.register(_LateActivation(config), "aksid-late-activation")


def _activate(config: pytest.Config) -> AksidState:
    """Turn the plugin on for this run: waivers, then (in the controller) the target, before any request."""
    state = AksidState(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "aksid-state")
    waivers = _path_option(config, "aksid_waivers")
    try:
        state.waivers = load_waivers(waivers) if waivers else []
    except WaiverError as exc:
        raise pytest.UsageError(f"aksid: {exc}") from None
    if not state.is_worker:
        _run_infra_hooks(config)
        _resolve_target(state)
    return state


def _resolve_fleet(state: AksidState) -> None:
    """Every --aksid-target, resolved up front (one sentence naming the first bad one), before any request."""
    config = state.config
    if state.replay or state.mode != "attach":
        raise pytest.UsageError("aksid: --aksid-target runs attach mode only (one replay or mode per run)")
    from aksid.collect.arm import azure_credential
    from aksid.collect.kube import kube_configuration

    profiles = [Path(p).expanduser() for p in config.getoption("aksid_target")]
    try:
        names = unique_names(profiles)
        state.fleet = []
        for name, profile in zip(names, profiles, strict=True):
            target = resolve_target(profile=profile, env_file=_path_option(config, "aksid_env_file"),
                                    overrides=settings_overrides(config),
                                    kube_context=config.getoption("aksid_kube_context"))
            state.fleet.append(Member(name, target, kube_configuration(target), azure_credential(target)))
    except (ConfigError, ValueError) as exc:
        raise pytest.UsageError(f"aksid: {exc}") from None
    state.target = state.fleet[0].target


def _run_infra_hooks(config: pytest.Config) -> None:
    """Terratest's order: the `down` command is registered before `up` runs, so it runs whatever happens next."""
    from aksid.config import profile_hooks
    from aksid.infra_hooks import run_hook

    hooks = profile_hooks(_path_option(config, "aksid_profile"))
    up = config.getoption("aksid_provision_cmd") or hooks.get("up")
    down = config.getoption("aksid_teardown_cmd") or hooks.get("down")
    if down:
        config.add_cleanup(lambda: run_hook("teardown", down, _say(config)))
    if up and not run_hook("provision", up, _say(config)):
        raise pytest.UsageError(f"aksid: the provision command failed: {up}" + (" (the teardown command runs next)"
                                                                                 if down else ""))


def _say(config: pytest.Config) -> Any:
    def say(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"aksid: {line}")
        else:
            print(f"aksid: {line}", flush=True)
    return say


def _resolve_target(state: AksidState) -> None:
    config = state.config
    if state.replay and config.getoption("aksid_mode"):
        raise pytest.UsageError("aksid: --aksid-replay re-judges a saved snapshot; it takes no --aksid-mode")
    if config.getoption("aksid_target"):
        _resolve_fleet(state)
        return
    try:
        if state.replay:
            state.snapshot = Snapshot.load(state.replay)
            state.snapshot_path = state.replay
            # --aksid-set re-judges the saved evidence with other settings (e.g. another trust store)
            state.target = target_from_snapshot(state.snapshot, settings_overrides(config))
        else:
            state.target = resolve_target(
                profile=_path_option(config, "aksid_profile"),
                env_file=_path_option(config, "aksid_env_file"),
                overrides=settings_overrides(config),
                kube_context=config.getoption("aksid_kube_context"),
                unused=LIVE_ONLY_FIELDS if state.mode == "static" else frozenset(),
            )
            if state.mode == "static":
                return  # files only: no kube configuration, no credential, never a socket
            from aksid.collect.kube import kube_configuration

            state.kube_configuration = kube_configuration(state.target)
            from aksid.collect.arm import azure_credential

            state.credential = azure_credential(state.target)
    except (ConfigError, ValueError) as exc:
        raise pytest.UsageError(f"aksid: {exc}") from None


def _mode_skip_reason(check_id: str, modes: tuple[str, ...], mode: str) -> str:
    if mode == "static":
        return f"{check_id} needs a live environment (static mode reads the repository's files)"
    return (f"{check_id} applies in {', '.join(modes)} mode only (run with --aksid-mode {modes[0]}); "
            f"this run is in {mode} mode")


def _activate_late(config: pytest.Config) -> AksidState | None:
    """Collection found a check in a run that named no --aksid-* option: act now, once per run under xdist too."""
    try:
        state = _activate(config)
        if not state.is_worker:
            _collect(state)
            return state

        def collect() -> Path:
            _resolve_target(state)
            _collect(state)
            assert state.snapshot_path is not None
            return state.snapshot_path

        path = collect_once_per_run(config.workerinput["testrunuid"], collect)  # type: ignore[attr-defined]
        if state.snapshot is None:  # another worker collected
            state.snapshot, state.snapshot_path = Snapshot.load(path), path
            state.target = target_from_snapshot(state.snapshot)
        return state
    except pytest.UsageError as exc:
        # Raised here it would be one module's collection error; pytest_collection_modifyitems raises it for the run.
        config.stash[_LATE_USAGE_ERROR] = str(exc)
        return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config) -> None:
    problem = config.stash.get(_LATE_USAGE_ERROR, None)
    # An xdist worker cannot stop the run (its controller would crash): there each check is `error` with the cause.
    if problem is not None and not hasattr(config, "workerinput"):
        raise pytest.UsageError(problem)


class _LateActivation:
    """The xdist controller of a run without --aksid-* options: takes the results if the workers' collection found checks."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.testrunuid: str | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self.testrunuid = node.workerinput.get("testrunuid")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if _state(self.config) is not None or not any(name == _PROPERTY for name, _ in report.user_properties):
            return
        state = AksidState(self.config)
        state.late_testrunuid = self.testrunuid
        self.config.stash[_STATE] = state
        self.config.pluginmanager.register(state, "aksid-state")
        state.pytest_runtest_logreport(report)  # registered during this call: it would miss this first report


def _state(config: pytest.Config) -> AksidState | None:
    return config.stash.get(_STATE, None)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = _state(config)
    if state is None or state.target is None:
        return None
    lines = [f"aksid: mode {state.mode}, target {state.target.cluster_name} / {state.target.domain}"]
    for name, source in state.target.sources.items():
        lines.append(f"  {name} = {getattr(state.target, name)}  ({source})")
    if state.snapshot is not None and state.fleet is None:  # replay: the evidence is at hand before collection
        lines += header_lines(identity_models(state.snapshot))
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None or state.is_worker or state.snapshot is not None:
        return
    if _under_xdist(session.config) and state.mode != "provision":  # provision handles signals: main thread only
        _collect_beside_worker_start(state)
        return
    with reported_as_interrupted(), long_lived_allocations():
        _collect(state)


def _under_xdist(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and config.pluginmanager.hasplugin("dsession")


def _collect_beside_worker_start(state: AksidState) -> None:
    """With -n, the workers start (interpreters, imports) while the controller collects. A fleet's workers wait for
    the index file, which appears whole (written, then renamed) or not at all (a `.failed` file says why); one
    target's workers read the evidence as it is collected, from a stream that ends with the document (HandOver)."""
    path = state.reports_dir / (INDEX if state.fleet is not None else HANDOVER)
    for stale in (path, _failed_marker(path), state.reports_dir / SCRIBED):
        stale.unlink(missing_ok=True)
    if state.fleet is None:
        state.handover = HandOver(path)
    state.snapshot_path = path

    def collect() -> None:
        try:
            with long_lived_allocations():
                _collect(state)
        except BaseException as exc:  # noqa: BLE001 - the workers must hear of it, or they would wait forever
            if state.handover is not None:
                state.handover.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            _failed_marker(path).write_text(f"the evidence collection failed: {type(exc).__name__}: {exc}",
                                            encoding="utf-8")
            raise

    state.collector = threading.Thread(target=collect, name="aksid-collect", daemon=True)
    state.collector.start()


def _failed_marker(path: Path) -> Path:
    return path.with_name(f".{path.name}.failed")


def _await_snapshot(path: Path) -> None:
    """A worker waits for the controller's snapshot (bounded: a collection is bounded by its own timeouts)."""
    wait = _waiter(path)
    while not path.exists():
        wait()


def _waiter(path: Path, pause: float = 0.05) -> Any:
    """One pause of a worker waiting for the controller's evidence; raises when the collection failed or took too long."""
    deadline = time.monotonic() + WORKER_WAIT

    def wait() -> None:
        if _failed_marker(path).exists():
            raise EvidenceUnavailable(_failed_marker(path).read_text(encoding="utf-8"))
        if time.monotonic() > deadline:
            raise EvidenceUnavailable(f"the controller wrote no snapshot to {path} within {WORKER_WAIT:.0f} s")
        time.sleep(pause)
    return wait


def _collect_fleet(state: AksidState) -> None:
    """Each member's evidence, side by side with -n; the index of their snapshots is what workers wait for."""
    assert state.fleet is not None
    reporter = state.config.pluginmanager.get_plugin("terminalreporter")
    from aksid.collect.live import collect_live

    def collect(member: Member) -> None:
        progress = Progress(reporter, verbose=state.config.getoption("verbose") > 0, prefix=f"{member.name}: ")
        member.snapshot = collect_live(member.target, member.kube_configuration, member.credential, progress,
                                       read_secrets=state.config.getoption("aksid_read_secrets"))
        member.snapshot_path = state.reports_dir / "snapshots" / f"{member.name}.json"
        member.snapshot.save(member.snapshot_path)
        progress.done()

    parallel = int(getattr(state.config.option, "numprocesses", 0) or 1)
    state.snapshot_path = collect_members(state.fleet, collect, parallel, state.reports_dir)
    state.snapshot = state.fleet[0].snapshot
    if reporter is not None:
        reporter.write_line(f"aksid: evidence of {len(state.fleet)} targets collected, index {state.snapshot_path}")


def _collect(state: AksidState) -> None:
    """Collect the live evidence and write the snapshot every process of the run reads."""
    if state.fleet is not None:
        _collect_fleet(state)
        return
    config = state.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    progress = Progress(reporter, verbose=config.getoption("verbose") > 0)

    assert state.target is not None
    if state.mode == "static":
        state.snapshot = _collect_static(state)
    else:
        from aksid.collect.live import collect_live  # live modes only: it brings the Kubernetes and Azure clients

        state.snapshot = collect_live(state.target, state.kube_configuration, state.credential, progress,
                                      read_secrets=config.getoption("aksid_read_secrets"),
                                      on_page=state.handover.page if state.handover is not None else None)
    if state.mode == "provision":
        _provision(state, reporter)
    progress("snapshot: writing")
    state.snapshot_path = state.reports_dir / "snapshot.json"
    if state.handover is not None:
        state.handover.finish(state.snapshot.document)  # a worker writes snapshot.json from it (_save_unless_scribed)
    else:
        state.snapshot.save(state.snapshot_path)
    progress.done()
    if reporter is not None:
        reporter.write_line(f"aksid: evidence collected, snapshot written to {state.snapshot_path}")
        for problem in state.snapshot.errors:
            reporter.write_line(f"aksid: could not collect {problem}", yellow=True)


def _collect_static(state: AksidState) -> Snapshot:
    from aksid.collect.static.build import collect_static
    from aksid.collect.static.errors import StaticInputError

    config = state.config
    paths = {name: [Path(p).expanduser() for p in config.getoption(name)]
             for name in ("aksid_manifests", "aksid_plan", "aksid_arm_template", "aksid_arm_parameters")}
    if not any(paths.values()):
        raise pytest.UsageError("aksid: static mode needs at least one of --aksid-manifests, --aksid-plan, "
                                "--aksid-arm-template")
    assert state.target is not None
    root = _path_option(config, "aksid_source_root") or Path.cwd()
    try:
        return collect_static(state.target, paths["aksid_manifests"], paths["aksid_plan"], paths["aksid_arm_template"],
                              root, arm_parameters=paths["aksid_arm_parameters"])
    except StaticInputError as exc:
        raise pytest.UsageError(f"aksid: {exc}") from None


def _provision(state: AksidState, reporter: Any) -> None:
    """After the read-only collection: probes and a canary, observed and removed; their evidence joins the snapshot."""
    from aksid.provision.run import provision

    def say(line: str) -> None:  # the timeline of the waits is always printed: it is what a nightly log needs
        if reporter is not None:
            reporter.write_line(f"aksid: {line}")

    assert state.snapshot is not None and state.target is not None
    with terminate_as_interrupt():
        evidence = provision(state.target, state.kube_configuration, state.credential, state.snapshot.document, say)
    state.snapshot.document["provision"] = redact_provision(evidence)
    state.snapshot.document["mode"] = "provision"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers read the controller's snapshot instead of collecting again."""
    state = _state(node.config)
    if state is not None and state.snapshot_path is not None:
        node.workerinput["aksid_snapshot"] = str((state.handover.path if state.handover else state.snapshot_path).resolve())
        node.workerinput["aksid_fleet"] = state.fleet is not None
        node.workerinput["aksid_handover"] = state.handover is not None
        if state.handover is not None and not state.scribe_assigned:
            node.workerinput["aksid_scribe"] = str((state.reports_dir / "snapshot.json").resolve())
            state.scribe_assigned = True


def _take_over(path: Path, scribe_for: str | None) -> Snapshot:
    """A worker reads the evidence while the controller collects (short pauses: the last frame is small and awaited);
    the scribe also writes snapshot.json, so the controller has only the workers' reports left to take. Should it fail
    (a full disk), the controller writes the snapshot itself at the end."""
    if scribe_for is None:
        return HandOver.take_over(path, _waiter(path, pause=0.01))
    snapshot_json = Path(scribe_for)
    scribe = JsonScribe(snapshot_json.with_name(".snapshot-scribe.spool"))
    try:
        snapshot = HandOver.take_over(path, _waiter(path, pause=0.01), scribe)
        try:
            scribe.save(snapshot.document, snapshot_json)
            (snapshot_json.parent / SCRIBED).touch()
        except OSError:
            pass
        return snapshot
    finally:
        scribe.close()


def _save_unless_scribed(state: AksidState) -> None:
    """With -n the controller writes snapshot.json only when no worker did (see JsonScribe)."""
    if state.handover is None or state.snapshot is None or state.snapshot_path is None:
        return
    scribed = state.reports_dir / SCRIBED
    if scribed.exists():
        scribed.unlink()
    else:
        state.snapshot.save(state.snapshot_path)


def snapshot_of(config: pytest.Config) -> Snapshot:
    state = _state(config)
    if state is None:
        raise pytest.UsageError("aksid: the snapshot and target fixtures serve aksid checks: mark the test with "
                                "aksid.checks.check(...) or run it with an --aksid-* option")
    if state.snapshot is None and state.is_worker:
        path = Path(config.workerinput["aksid_snapshot"])  # type: ignore[attr-defined]
        if config.workerinput.get("aksid_fleet"):  # type: ignore[attr-defined]
            _await_snapshot(path)
            state.fleet = [Member(name, None, snapshot=Snapshot.load(member_path), snapshot_path=member_path)  # type: ignore[arg-type]
                           for name, member_path in read_index(path).items()]
            for member in state.fleet:
                member.target = target_from_snapshot(member.snapshot)
            state.snapshot = state.fleet[0].snapshot
            state.target = state.fleet[0].target
            return state.snapshot
        if config.workerinput.get("aksid_handover"):  # type: ignore[attr-defined]
            state.snapshot = _take_over(path, config.workerinput.get("aksid_scribe"))  # type: ignore[attr-defined]
        else:
            _await_snapshot(path)
            state.snapshot = Snapshot.load(path)
        # the controller validated the overrides already; in attach mode they are in the snapshot's target
        state.target = target_from_snapshot(state.snapshot, config.getoption("aksid_set") if state.replay else None)
    assert state.snapshot is not None
    return state.snapshot


@pytest.fixture(scope="session")
def snapshot(pytestconfig: pytest.Config) -> Snapshot:
    """The evidence of this run (live, or replayed)."""
    return snapshot_of(pytestconfig)


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    snapshot_of(pytestconfig)
    state = _state(pytestconfig)
    assert state is not None and state.target is not None
    return state.target


class Unavailable:
    """Stands in for the subjects of a check whose evidence could not be collected."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("check")
    if marker is None:
        return
    if _state(metafunc.config) is None and _LATE_USAGE_ERROR not in metafunc.config.stash:
        _activate_late(metafunc.config)
    problem = metafunc.config.stash.get(_LATE_USAGE_ERROR, None)
    if problem is not None:  # the run stops with that one sentence (pytest_collection_modifyitems), or checks say it (xdist)
        if "subject" in metafunc.fixturenames:
            metafunc.parametrize("subject", [Unavailable(problem)], ids=["evidence-unavailable"])
        return
    state = _state(metafunc.config)
    info = check_info(marker)
    if state is not None and state.mode not in info.modes:
        # its evidence may not exist in this mode: do not ask for subjects
        skip = pytest.mark.skip(reason=_mode_skip_reason(info.id, info.modes, state.mode))
        if state.fleet is not None:
            _parametrize_fleet(metafunc, state.fleet, _none_because(skip.kwargs["reason"]), info.id)
        elif "subject" in metafunc.fixturenames:
            metafunc.parametrize("subject", [pytest.param(None, marks=skip)], ids=["not-applicable"])
        return
    subjects_fn = marker.kwargs.get("subjects")
    if "subject" in metafunc.fixturenames and subjects_fn is None:
        raise pytest.UsageError(f"check {marker.kwargs.get('id')} takes `subject` but declares no subjects")
    subjects_fn = _model_guarded(subjects_fn, info.model)
    snap = snapshot_of(metafunc.config)
    state = _state(metafunc.config)
    assert state is not None
    if state.fleet is not None:
        _parametrize_fleet(metafunc, state.fleet, subjects_fn, info.id)
        return
    if "subject" in metafunc.fixturenames:
        params = _subject_params(subjects_fn, snap, state.target, info.id)
        metafunc.parametrize("subject", params, ids=[p.id for p in params])


def _model_guarded(subjects_fn: Any, model: str | None) -> Any:
    """A check of an identity model that is not in use has no subjects: it is skipped with the reason."""
    if model is None or subjects_fn is None:
        return subjects_fn

    def subjects(snapshot: Snapshot, target: Target) -> Any:
        reason = skip_reason(snapshot, model)
        if reason is not None:
            raise NotApplicable(reason)
        return subjects_fn(snapshot, target)
    return subjects


def _none_because(reason: str) -> Any:
    """A subjects function for a check that does not apply: every member reports it skipped, with the reason."""
    def subjects(_snapshot: Snapshot, _target: Target) -> dict[str, Any]:
        raise NotApplicable(reason)
    return subjects


def _subject_params(subjects_fn: Any, snap: Snapshot, target: Target | None, check_id: str) -> list[Any]:
    """One pytest.param per subject (its id names it), or one that stands for why there are none."""
    try:
        subjects = dict(subjects_fn(snap, target))
    except EvidenceUnavailable as exc:
        return [pytest.param(Unavailable(str(exc)), id="evidence-unavailable")]
    except (NotApplicable, EvidenceNotCollected) as exc:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(exc)), id="not-applicable")]
    if not subjects:
        raise pytest.UsageError(f"check {check_id}: subjects function returned nothing; "
                                "raise NotApplicable with a reason instead")
    return [pytest.param(value, id=subject_id) for subject_id, value in subjects.items()]


def _parametrize_fleet(metafunc: pytest.Metafunc, fleet: list[Member], subjects_fn: Any, check_id: str) -> None:
    """Every subject of every member; test ids start with the member's name (`prod/node/aks-1`)."""
    metafunc.fixturenames.append(FLEET_PARAM)  # a parameter the check does not take: the plugin hands it the member
    if "subject" not in metafunc.fixturenames:
        metafunc.parametrize(FLEET_PARAM, [m.name for m in fleet], ids=[m.name for m in fleet])
        return
    params = []
    for member in fleet:
        for param in _subject_params(subjects_fn, member.snapshot, member.target, check_id):
            params.append(pytest.param(member.name, param.values[0], marks=param.marks, id=f"{member.name}/{param.id}"))
    metafunc.parametrize((FLEET_PARAM, "subject"), params)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("check")
    problem = item.config.stash.get(_LATE_USAGE_ERROR, None)
    if marker is not None and problem is not None:
        raise EvidenceUnavailable(problem)
    state = _state(item.config)
    if marker is None or state is None:
        return
    info = check_info(marker)
    if state.mode not in info.modes:
        pytest.skip(_mode_skip_reason(info.id, info.modes, state.mode))
    callspec = getattr(item, "callspec", None)
    if callspec is not None and isinstance(callspec.params.get("subject"), Unavailable):
        raise EvidenceUnavailable(callspec.params["subject"].reason)
    if info.model is not None and (callspec is None or "subject" not in callspec.params):
        member = _member_of(item)
        reason = skip_reason(member.snapshot if member is not None else snapshot_of(item.config), info.model)
        if reason is not None:
            pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Evidence left out on purpose (an opt-in such as Secret reading) makes a check skip, with the reason.

    In a fleet run the check gets its member's snapshot and target, whatever the session fixtures hold."""
    member = _member_of(pyfuncitem)
    if member is not None:
        for name, value in (("snapshot", member.snapshot), ("target", member.target)):
            if name in pyfuncitem.funcargs:
                pyfuncitem.funcargs[name] = value
    try:
        return (yield)
    except EvidenceNotCollected as exc:
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    marker = item.get_closest_marker("check")
    if marker is None or _state(item.config) is None:
        return report
    outcome, message = _classify(report, call)
    if outcome is None:
        return report
    if outcome == "error" and call.excinfo is not None:
        report.longrepr = f"{message}"  # one sentence, not a traceback: the evidence was missing
    info = check_info(marker)
    callspec = getattr(item, "callspec", None)
    member = _member_of(item)
    subject = callspec.id if callspec is not None and "subject" in callspec.params else _cluster_subject(item.config)
    if member is not None:
        subject = subject.removeprefix(f"{member.name}/") if "subject" in callspec.params else (
            f"cluster/{member.target.cluster_name}")
    state = _state(item.config)
    waiver = find_waiver(state.waivers, info.id, subject) if state and outcome == "failed" else None
    waiver_record = None
    if waiver is not None and state is not None:
        waiver_record = {**waiver.describe(), "status": "expired" if waiver.expired(state.today) else "active"}
        if waiver.expired(state.today):
            message = f"{message} (waiver expired on {waiver.expires.isoformat()}: {waiver.reason})"
        else:
            outcome, message = "waived", f"waived until {waiver.expires.isoformat()}: {waiver.reason} — {message}"
            # pytest's own notion of an accepted failure: counted as xfailed, does not fail the run
            report.outcome, report.wasxfail = "skipped", f"waived: {waiver.reason}"
    record = {
        "id": info.id, "title": info.title, "severity": info.severity, "area": info.area,
        "subject": subject, "outcome": outcome, "message": message,
        "remediation": info.remediation, "nodeid": item.nodeid, "waiver": waiver_record,
        "locations": _locations(item, outcome, message),
        "target": member.name if member is not None else _target_name(item.config),
        **_evidence_fields(item, outcome),
    }
    report.user_properties.append((_PROPERTY, json.dumps(record)))
    return report


def _evidence_fields(item: pytest.Item, outcome: str) -> dict[str, Any]:
    """What the check recorded (the `evidence` fixture): the items always, the fix for a failure (or an error the
    check marked fixable: a setting to correct)."""
    recorded = item.stash.get(EVIDENCE_KEY, None)
    if recorded is None:
        return {"evidence": [], "fix": None}
    return {"evidence": recorded.record(), "fix": recorded.fix_for(outcome)}


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Where a check records what it compared (aksid.evidence); the plugin puts it on the check's result."""
    recorded = Evidence()
    request.node.stash[EVIDENCE_KEY] = recorded
    return recorded


def _member_of(item: pytest.Item) -> Member | None:
    callspec = getattr(item, "callspec", None)
    state = _state(item.config)
    if callspec is None or state is None or state.fleet is None or FLEET_PARAM not in callspec.params:
        return None
    return next(m for m in state.fleet if m.name == callspec.params[FLEET_PARAM])


def _locations(item: pytest.Item, outcome: str, message: str) -> list[dict[str, Any]] | None:
    """Static mode: the files and lines of the objects behind a finding (the snapshot records where each object came
    from; the check's evidence says which objects it judged)."""
    state = _state(item.config)
    sources = state.snapshot.document.get("sources") if state and state.snapshot else None
    if not sources or outcome not in ("failed", "waived", "error"):
        return None
    from aksid.locations import locate

    recorded = item.stash.get(EVIDENCE_KEY, None)
    items = recorded.items if recorded is not None else []
    return locate(message, sources, items, recorded.fix_text if recorded is not None else None) or None


def _target_name(config: pytest.Config) -> str | None:
    """A one-target run's name: its profile's `name:` or stem, else its cluster's name (`aksid merge` keys on it).
    Worked out once per run: every result carries it."""
    state = _state(config)
    if state is None:
        return None
    if state.target_name is None:
        profile = _path_option(config, "aksid_profile")
        if profile is not None and profile.is_file():
            state.target_name = member_name(profile)
        elif state.target is not None:
            state.target_name = state.target.cluster_name
    return state.target_name


def _cluster_subject(config: pytest.Config) -> str:
    if _LATE_USAGE_ERROR not in config.stash:
        snapshot_of(config)  # makes sure a worker knows the target
    state = _state(config)
    return f"cluster/{state.target.cluster_name}" if state and state.target else "cluster"


def _classify(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str | None, str]:
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    if report.passed:
        return ("passed", "") if report.when == "call" else (None, "")
    exc = call.excinfo.value if call.excinfo is not None else None
    if report.when == "call" and isinstance(exc, AssertionError):
        return "failed", _assertion_message(exc)
    if isinstance(exc, EvidenceUnavailable):
        return "error", f"could not verify: {exc}"
    return "error", f"could not verify: the check itself raised {type(exc).__name__}: {exc}"


def _assertion_message(exc: AssertionError) -> str:
    text = str(exc)
    # pytest's assertion rewriting appends "assert <expression>" after the author's message
    return text.split("\nassert ", 1)[0].strip() or "assertion failed"


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """Count a check that could not verify as `error`, whatever phase it happened in."""
    for name, value in getattr(report, "user_properties", ()):  # collection reports have none
        if name == _PROPERTY and json.loads(value)["outcome"] == "error" and report.when == "call":
            return "error", "E", "ERROR"
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is not None and state.collector is not None:
        state.collector.join()  # its lines belong before the summary; the workers already waited for it
    if state is not None and state.handover is not None:
        state.handover.path.unlink(missing_ok=True)
        if not state.is_worker:
            _save_unless_scribed(state)
    if state is not None and state.is_worker:
        keep_until_exit(state)  # the worker exits next: its copy of the evidence need not be freed object by object
    if state is None or state.is_worker or not state.results:
        return
    if state.late_testrunuid is not None:
        _adopt_workers_snapshot(state, state.late_testrunuid)
    results = list(state.results.values())
    used = {r.waiver["index"] for r in results if r.waiver}
    meta = {
        "mode": state.mode,
        "started": state.started.isoformat(timespec="seconds"),
        "snapshot": str(state.snapshot_path) if state.snapshot_path else None,
        "target": state.target.public_view() if state.target and state.fleet is None else None,
        "targets": _targets_meta(state),
        "identity_models": _identity_models_of(state.snapshot) if state.fleet is None else None,
        "fail_on": state.fail_on,
        "waivers": [w.describe() for w in state.waivers],
        "stale_waivers": [w.describe() for w in state.waivers if w.index not in used],
        **_collection_meta(state),
    }
    if session.config.getoption("aksid_baseline"):
        from aksid.reporting.baseline import apply_baseline

        snapshot = state.snapshot.document if state.snapshot is not None and state.fleet is None else None
        results = apply_baseline(Path(session.config.getoption("aksid_baseline")), results, meta, snapshot)
    from aksid.reporting import write_reports  # the controller's work only: xdist workers never import the writers

    write_reports(state.reports_dir, results, meta, _chain_snapshots(state))
    state.stale = meta["stale_waivers"]
    state.collection = {"coverage": meta.get("coverage"), "retries": meta.get("retries")}
    state.identity_models = meta["identity_models"]
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = exit_code(results, state.fail_on)
        minimum = session.config.getoption("aksid_min_coverage")
        percent = (meta.get("coverage") or {}).get("percent")
        if minimum is not None and percent is not None and percent < minimum:
            state.collection["below"] = (f"aksid: evidence coverage {percent:g}% is below --aksid-min-coverage "
                                         f"{minimum:g}%: the environment was not fully verified")
            session.exitstatus = int(pytest.ExitCode.TESTS_FAILED)


def _chain_snapshots(state: AksidState) -> dict[str | None, Snapshot | str | None]:
    """The evidence report.html draws its chain from: each fleet member's snapshot, or the run's."""
    if state.fleet is not None:
        return {m.name: m.snapshot for m in state.fleet}
    snapshot = state.snapshot
    if snapshot is None and state.snapshot_path is not None and state.snapshot_path.suffix == ".json":
        try:
            snapshot = Snapshot.load(state.snapshot_path)
        except ValueError as exc:
            return {_target_name(state.config): str(exc)}
    return {_target_name(state.config): snapshot}


def _collection_meta(state: AksidState) -> dict[str, Any]:
    """Coverage and retries of the run's evidence, from its snapshot(s) (a replay reports what was collected then)."""
    from aksid.coverage import coverage, merged

    if state.fleet is not None:
        named = [(m.name, m.snapshot.document) for m in state.fleet if m.snapshot is not None]
    elif state.snapshot is not None:
        named = [("", state.snapshot.document)]
    elif state.snapshot_path is not None and state.snapshot_path.suffix == ".json" and state.snapshot_path.exists():
        named = [("", Snapshot.load(state.snapshot_path).document)]
    else:
        return {}
    if not named:
        return {}
    reports = [coverage(document) for _, document in named]
    retries = [{**({"target": name} if name else {}), **retry}
               for name, document in named for retry in (document.get("collection") or {}).get("retries") or []]
    return {"coverage": reports[0] if len(reports) == 1 else merged(reports), "retries": retries}


def _adopt_workers_snapshot(state: AksidState, testrunuid: str) -> None:
    """A late-activated controller reports on the snapshot its workers collected, then removes their meeting place."""
    path = collected_snapshot_path(testrunuid)
    remove_shared_folder(testrunuid)
    if path is not None and path.exists():
        state.snapshot_path = path
        state.target = target_from_snapshot(Snapshot.load(path))


def _targets_meta(state: AksidState) -> list[dict[str, Any]]:
    if state.fleet is not None:
        return [{"name": m.name, "target": m.target.public_view() if m.target else None,
                 "snapshot": str(m.snapshot_path) if m.snapshot_path else None,
                 "identity_models": _identity_models_of(m.snapshot)} for m in state.fleet]
    name = _target_name(state.config)
    return [{"name": name, "target": state.target.public_view() if state.target else None,
             "snapshot": str(state.snapshot_path) if state.snapshot_path else None}] if name else []


def _identity_models_of(snapshot: Snapshot | None) -> dict[str, Any] | None:
    """Which identity model binds each workload to which identity (None when the run has no snapshot at hand)."""
    return identity_models(snapshot) if snapshot is not None else None


def exit_code(results: list[CheckResult], fail_on: str) -> int:
    """1 when a check at or above `fail_on` severity failed or could not verify; waived failures do not count."""
    threshold = SEVERITIES.index(fail_on)
    blocking = [r for r in results if r.outcome in ("failed", "error") and SEVERITIES.index(r.severity) >= threshold]
    return int(pytest.ExitCode.TESTS_FAILED) if blocking else int(pytest.ExitCode.OK)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state is None or state.is_worker or not state.results:
        return
    terminalreporter.section("aksid summary")
    results = list(state.results.values())
    if state.identity_models:
        for line in header_lines(state.identity_models):
            terminalreporter.write_line(line)
    for line in terminal_lines(results):
        terminalreporter.write_line(line)
    for result in results:
        if result.waiver and result.waiver["status"] == "expired":
            terminalreporter.write_line(
                f"EXPIRED WAIVER {result.id} [{result.subject}] expired {result.waiver['expires']}: the failure counts again",
                red=True, bold=True)
    for stale in state.stale:
        terminalreporter.write_line(f"stale waiver {stale['check']} {stale['subject']!r}: matches no failure ({stale['reason']})",
                                    yellow=True)
    _write_collection_lines(terminalreporter, state.collection)
    from aksid.reporting import REPORT_FILES

    terminalreporter.write_line(f"reports in {state.reports_dir}: {', '.join(REPORT_FILES)}")


def _write_collection_lines(terminalreporter: Any, collection: dict[str, Any]) -> None:
    from aksid.coverage import describe, describe_retries

    if collection.get("coverage"):
        complete = collection["coverage"]["percent"] >= 100
        terminalreporter.write_line(describe(collection["coverage"]), yellow=not complete)
    retries = describe_retries({"retries": collection.get("retries")})
    if retries:
        terminalreporter.write_line(retries)
    if collection.get("below"):
        terminalreporter.write_line(collection["below"], red=True, bold=True)
