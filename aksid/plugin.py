"""The pytest plugin (entry point `pytest11`): pytest's hooks, handing the run to aksid/run/.

Flow: pytest_configure decides whether the run asks for aksid (aksid/activation.py) and resolves the
target (usage error, exit 4, before any request) → pytest_sessionstart collects the snapshot once (in
the xdist controller; workers receive it, aksid/run/handover.py) → pytest_generate_tests fans each check
out over its subjects → each check's outcome becomes a result → reports are written at session end. A run
that never asks for aksid is left untouched. What a run does lives in aksid.run; here is what pytest needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import pytest

from aksid.activation import (
    OPTIONS,
    adopt_workers_snapshot,
    asks_for_aksid,
    collect_in_first_worker,
    include_bundled_suites,
)
from aksid.checks import check_info
from aksid.config import Target
from aksid.evidence import EVIDENCE_KEY, Evidence
from aksid.fleet import Member
from aksid.interrupts import reported_as_interrupted
from aksid.memory import keep_until_exit, long_lived_allocations
from aksid.pytest_check_items import CheckItemHooks
from aksid.pytest_outcomes import outcome_of
from aksid.pytest_terminal import PytestTerminal
from aksid.results import CheckResult
from aksid.run.handover import Publisher
from aksid.run.options import RunOptions
from aksid.run.run import Run, RunOutcome, Unavailable
from aksid.run.sources import RunError
from aksid.run.terminal import AKSID_PROPERTY as _PROPERTY
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot

_HOOKS = pytest.StashKey["RunHooks"]()
_LATE_USAGE_ERROR = pytest.StashKey[str]()
FLEET_PARAM = "aksid_target"  # the member a check runs for, in a fleet run


class RunHooks(CheckItemHooks):
    """The run of this pytest process, and what only pytest needs beside it; registered as a plugin for the
    controller to gather every worker's results in one place (and, CheckItemHooks, to select and report checks)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run = Run(RunOptions.read(config.getoption, verbose=config.getoption("verbose") > 0,
                                       parallel=int(getattr(config.option, "numprocesses", 0) or 0)),
                       PytestTerminal(config))
        self.late_testrunuid: str | None = None  # xdist controller activated by its workers' results
        self.collector: threading.Thread | None = None  # with -n: the collection, beside the workers' start
        self.outcome: RunOutcome | None = None

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Runs in the controller for every worker's reports too."""
        for name, value in report.user_properties:
            if name == _PROPERTY:
                record = json.loads(value)
                self.run.record(CheckResult(**record))


@contextmanager
def _usage_errors() -> Iterator[None]:
    """What the run refuses (a RunError) is a usage error: one sentence, exit 4."""
    try:
        yield
    except RunError as exc:
        raise pytest.UsageError(f"aksid: {exc}") from None


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


def _activate(config: pytest.Config) -> RunHooks:
    """Turn the plugin on for this run: waivers, then (in the controller) the target, before any request."""
    with _usage_errors():
        hooks = RunHooks(config)
        config.stash[_HOOKS] = hooks
        config.pluginmanager.register(hooks, "aksid-state")
        hooks.run.load_waivers()
        if not hooks.is_worker:
            hooks.run.check_selection(config.args)
            hooks.run.run_infra_hooks(config.add_cleanup)
            hooks.run.resolve()
    return hooks


def _activate_late(config: pytest.Config) -> None:
    """Collection found a check in a run that named no --aksid-* option: act now, once per run under xdist too."""
    try:
        hooks = _activate(config)
        if hooks.is_worker:  # the first worker collects (resolving the target first), the others receive its snapshot
            collect_in_first_worker(config.workerinput["testrunuid"], hooks.run,  # type: ignore[attr-defined]
                                    lambda: _collect(hooks, resolve=True))
        else:
            _collect(hooks)
    except pytest.UsageError as exc:
        # Raised here it would be one module's collection error; pytest_collection_modifyitems raises it for the run.
        config.stash[_LATE_USAGE_ERROR] = str(exc)


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
        if _hooks(self.config) is not None or not any(name == _PROPERTY for name, _ in report.user_properties):
            return
        hooks = RunHooks(self.config)
        hooks.late_testrunuid = self.testrunuid
        self.config.stash[_HOOKS] = hooks
        self.config.pluginmanager.register(hooks, "aksid-state")
        hooks.pytest_runtest_logreport(report)  # registered during this call: it would miss this first report


def _hooks(config: pytest.Config) -> RunHooks | None:
    return config.stash.get(_HOOKS, None)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    hooks = _hooks(config)
    return hooks.run.header_lines() if hooks is not None and hooks.run.target is not None else None


def pytest_sessionstart(session: pytest.Session) -> None:
    hooks = _hooks(session.config)
    if hooks is None or hooks.is_worker or hooks.run.snapshot is not None:
        return
    under_xdist = getattr(session.config.option, "numprocesses", None) and session.config.pluginmanager.hasplugin("dsession")
    if under_xdist and hooks.run.mode != "provision":  # provision handles signals: main thread only
        _collect_beside_worker_start(hooks)
        return
    with reported_as_interrupted(), long_lived_allocations():
        _collect(hooks)


def _collect(hooks: RunHooks, resolve: bool = False) -> None:
    with _usage_errors():
        if resolve:
            hooks.run.resolve()
        hooks.run.collect()


def _collect_beside_worker_start(hooks: RunHooks) -> None:
    """With -n, the workers start (interpreters, imports) while the controller collects and publishes."""
    run = hooks.run
    run.publisher = Publisher(run.options.reports_dir, fleet=run.fleet is not None)
    hooks.collector = run.publisher.beside(lambda: _collect(hooks), long_lived_allocations)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers receive the controller's evidence instead of collecting again."""
    hooks = _hooks(node.config)
    if hooks is not None:
        hooks.run.tell_worker(node.workerinput)


def _run_with_evidence(config: pytest.Config) -> Run:
    """The run, its evidence at hand: a worker receives it from the controller on first use."""
    hooks = _hooks(config)
    if hooks is None:
        raise pytest.UsageError("aksid: the snapshot and target fixtures serve aksid checks: mark the test with "
                                "aksid.checks.check(...) or run it with an --aksid-* option")
    return hooks.run.with_evidence(getattr(config, "workerinput", None))


@pytest.fixture(scope="session")
def snapshot(pytestconfig: pytest.Config) -> Snapshot:
    """The evidence of this run (live, or replayed)."""
    return _run_with_evidence(pytestconfig).snapshot  # type: ignore[return-value]


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    return _run_with_evidence(pytestconfig).target


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Where a check records what it compared (aksid.evidence); the plugin puts it on the check's result."""
    recorded = Evidence()
    request.node.stash[EVIDENCE_KEY] = recorded
    return recorded


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("check")
    if marker is None:
        return
    if _hooks(metafunc.config) is None and _LATE_USAGE_ERROR not in metafunc.config.stash:
        _activate_late(metafunc.config)
    takes_subject = "subject" in metafunc.fixturenames
    problem = metafunc.config.stash.get(_LATE_USAGE_ERROR, None)
    if problem is not None:  # the run stops with that one sentence (pytest_collection_modifyitems), or checks say it (xdist)
        if takes_subject:
            metafunc.parametrize("subject", [Unavailable(problem)], ids=["evidence-unavailable"])
        return
    info = check_info(marker)
    hooks = _hooks(metafunc.config)
    assert hooks is not None
    run = hooks.run if hooks.run.applies(info) is not None and not hooks.run.options.is_fleet else (
        _run_with_evidence(metafunc.config))  # a check that does not apply here needs no evidence
    with _usage_errors():
        cases = run.cases(info, marker.kwargs.get("subjects"), takes_subject)
    values = [((c.member,) if run.fleet is not None else ()) + ((c.value,) if takes_subject else ()) for c in cases]
    params = [pytest.param(*value, id=c.id, marks=pytest.mark.skip(reason=c.skip) if c.skip is not None else ())
              for c, value in zip(cases, values, strict=True)]
    if run.fleet is not None:
        metafunc.fixturenames.append(FLEET_PARAM)  # a parameter the check does not take: the plugin hands it the member
        metafunc.parametrize((FLEET_PARAM, "subject") if takes_subject else FLEET_PARAM, params)
    elif cases:
        metafunc.parametrize("subject", params)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("check")
    problem = item.config.stash.get(_LATE_USAGE_ERROR, None)
    if marker is not None and problem is not None:
        raise EvidenceUnavailable(problem)
    hooks = _hooks(item.config)
    if marker is None or hooks is None:
        return
    callspec = getattr(item, "callspec", None)
    if hooks.run.applies(check_info(marker)) is None:
        _run_with_evidence(item.config)  # a worker's evidence, for the identity model's verdict
    verdict = hooks.run.before(check_info(marker), callspec.params if callspec else None, _member_of(item))
    if verdict is not None and verdict[0] == "error":
        raise EvidenceUnavailable(verdict[1])
    if verdict is not None:
        pytest.skip(verdict[1])


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
    hooks = _hooks(item.config)
    if marker is None or hooks is None:
        return report
    outcome, message = outcome_of(report, call)
    if outcome is None:
        return report
    if outcome == "error" and call.excinfo is not None:
        report.longrepr = f"{message}"  # one sentence, not a traceback: the evidence was missing
    callspec, member = getattr(item, "callspec", None), _member_of(item)
    subject = hooks.run.subject_of(callspec.id if callspec and "subject" in callspec.params else None, member)
    if subject is None and member is None and _LATE_USAGE_ERROR not in item.config.stash:
        _run_with_evidence(item.config)  # makes sure a worker knows the target
    result = hooks.run.judge(check_info(marker), subject, outcome, message, item.nodeid, member,
                             item.stash.get(EVIDENCE_KEY, None))
    if result.outcome == "waived":  # pytest's own notion of an accepted failure: counted as xfailed, does not fail the run
        report.outcome, report.wasxfail = "skipped", f"waived: {result.waiver['reason']}"  # type: ignore[index]
    report.user_properties.append((_PROPERTY, json.dumps(asdict(result))))
    return report


def _member_of(item: pytest.Item) -> Member | None:
    params, hooks = getattr(getattr(item, "callspec", None), "params", {}), _hooks(item.config)
    return hooks.run.member(params[FLEET_PARAM]) if hooks is not None and FLEET_PARAM in params else None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """Count a check that could not verify as `error`, whatever phase it happened in."""
    for name, value in getattr(report, "user_properties", ()):  # collection reports have none
        if name == _PROPERTY and json.loads(value)["outcome"] == "error" and report.when == "call":
            return "error", "E", "ERROR"
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    hooks = _hooks(session.config)
    if hooks is None:
        return
    run = hooks.run
    if hooks.collector is not None:
        hooks.collector.join()  # its lines belong before the summary; the workers already waited for it
    if run.publisher is not None and not hooks.is_worker:
        run.publisher.end(run.snapshot, run.options.reports_dir / "snapshot.json")
    if hooks.is_worker:
        keep_until_exit(run)  # the worker exits next: its copy of the evidence need not be freed object by object
        return
    if not run.results:
        return
    if hooks.late_testrunuid is not None:
        adopt_workers_snapshot(hooks.run, hooks.late_testrunuid)
    hooks.outcome = run.finish()
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = hooks.outcome.exit_code
