"""One run: its members and their evidence, the checks' results, and what it ends with (reports, exit code, summary).

The pytest hooks (aksid/plugin.py) drive it. Before any request: `load_waivers()`, `run_infra_hooks()` (the
team's provision command) and `resolve()` (the targets): every usage error is one sentence, before a socket
opens. Then `collect()` once per run (in the xdist controller; workers `adopt()` what aksid/run/handover.py
hands them), `cases()` fans a check out over its subjects, `judge()` turns one check's outcome into a result
(waivers, evidence, file locations), and `finish()` returns a RunOutcome for the terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aksid.check_info import SEVERITIES, CheckInfo, NotApplicable
from aksid.fleet import Member, collect_members
from aksid.identity_models import identity_models, skip_reason
from aksid.progress import Progress
from aksid.results import CheckResult
from aksid.run.handover import Publisher, Received, receive, tell
from aksid.run.options import RunOptions
from aksid.run.sources import CollectContext, EvidenceSource, RunError, one_target_name, source_for
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot
from aksid.snapshot_target import target_from_snapshot
from aksid.waivers import Waiver, WaiverError, find_waiver, load_waivers

FAILED, OK = 1, 0  # exit codes (pytest's TESTS_FAILED and OK)


class Terminal:
    """Where a run's lines go when no pytest terminal reporter is at hand."""

    isatty = False

    def write_line(self, line: str, **_style: bool) -> None:
        print(line, flush=True)


@dataclass(frozen=True)
class Case:
    """One test of a check: a subject (or a fleet member), or why there is none."""

    id: str
    value: Any = None
    skip: str | None = None  # the check does not apply: the reason
    member: str | None = None  # a fleet run: the member the case is for


class Unavailable:
    """Stands in for the subjects of a check whose evidence could not be collected: the check is `error`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class RunMeta:
    """What results.json and every report say about the run beside its results."""

    mode: str
    started: str
    snapshot: str | None
    target: dict[str, Any] | None
    targets: list[dict[str, Any]]
    identity_models: dict[str, Any] | None
    fail_on: str
    waivers: list[dict[str, Any]]
    stale_waivers: list[dict[str, Any]]
    coverage: dict[str, Any] | None = None
    retries: list[dict[str, Any]] | None = None
    collected: bool = True  # coverage and retries are known (a snapshot was at hand)
    baseline: dict[str, Any] | None = None
    migration: dict[str, Any] | None = None  # aksid.migration: per workload from → to → state (None: no snapshot)

    def as_dict(self) -> dict[str, Any]:
        meta = {"mode": self.mode, "started": self.started, "snapshot": self.snapshot, "target": self.target,
                "targets": self.targets, "identity_models": self.identity_models, "fail_on": self.fail_on,
                "waivers": self.waivers, "stale_waivers": self.stale_waivers}
        if self.collected:
            meta |= {"coverage": self.coverage, "retries": self.retries}
        if self.migration is not None:
            meta["migration"] = self.migration
        return meta


@dataclass
class RunOutcome:
    """A finished run, for the terminal: its results, its metadata, the exit code and the lines to close with."""

    results: list[CheckResult]
    meta: RunMeta
    exit_code: int
    below_coverage: str | None = None  # --aksid-min-coverage was not met: the sentence saying so
    expired: list[CheckResult] = field(default_factory=list)
    verbose: bool = False  # -v: the identity models in full

    def summary(self, reports_dir: Path) -> list[tuple[str, dict[str, bool]]]:
        """The lines a run closes with, each with its style (`red`, `yellow`, `bold`): the identity models, one block
        per finding, the totals, the waivers to look at, the coverage line and the reports written."""
        from aksid.coverage import describe, describe_retries
        from aksid.reporting import REPORT_FILES
        from aksid.results import report_lines
        from aksid.run.terminal import identity_model_lines

        lines: list[tuple[str, dict[str, bool]]] = []
        if self.meta.identity_models:
            lines += [(line, {}) for line in identity_model_lines(self.meta.identity_models, self.verbose)]
        from aksid.migration import terminal_lines

        lines += [(line, {}) for line in terminal_lines(self.meta.migration)]
        lines += report_lines(self.results)
        lines += [(f"EXPIRED WAIVER {r.id} [{r.subject}] expired {r.waiver['expires']}: the failure counts again",  # type: ignore[index]
                   {"red": True, "bold": True}) for r in self.expired]
        lines += [(f"stale waiver {s['check']} {s['subject']!r}: matches no failure ({s['reason']})", {"yellow": True})
                  for s in self.meta.stale_waivers]
        if self.meta.coverage:
            lines.append((describe(self.meta.coverage), {"yellow": self.meta.coverage["percent"] < 100}))
        retries = describe_retries({"retries": self.meta.retries})
        if retries:
            lines.append((retries, {}))
        if self.below_coverage:
            lines.append((self.below_coverage, {"red": True, "bold": True}))
        lines.append((f"reports in {reports_dir}: {', '.join(REPORT_FILES)}", {}))
        return lines


class Run:
    def __init__(self, options: RunOptions, terminal: Any = None) -> None:
        self.options = options
        self.terminal = terminal
        self.source: EvidenceSource = source_for(options.mode)
        self.members: list[Member] = []
        self.waivers: list[Waiver] = []
        self.results: dict[str, CheckResult] = {}
        self.started = dt.datetime.now(dt.UTC)
        self.today = self.started.date()
        self.snapshot_path: Path | None = None  # the run's snapshot.json (or fleet index, or the replayed file)
        self.publisher: Publisher | None = None  # with -n: what the workers read while the controller collects

    # ------------------------------------------------------------------ what the run is about
    @property
    def mode(self) -> str:
        return self.options.mode

    @property
    def fleet(self) -> list[Member] | None:
        return self.members if self.options.is_fleet else None

    @property
    def target(self) -> Any:
        return self.members[0].target if self.members else None

    @property
    def snapshot(self) -> Snapshot | None:
        return self.members[0].snapshot if self.members else None

    @property
    def name(self) -> str | None:
        """A one-target run's name (`aksid merge` keys on it); a fleet's results carry their member's."""
        return self.members[0].name if self.members and self.fleet is None else None

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    # ------------------------------------------------------------------ before any request
    def load_waivers(self) -> None:
        try:
            self.waivers = load_waivers(self.options.waivers) if self.options.waivers else []
        except WaiverError as exc:
            raise RunError(str(exc)) from None

    def check_selection(self, args: list[str]) -> None:
        """A --aksid-check/--aksid-skip-check name that no bundled check or area has is a usage error before any
        request, unless the run collects other paths too (a team's checks: judged once collected)."""
        from aksid.paths import suites_dir
        from aksid.run.selection import beside_other_paths, declared_ids, names_of

        selection, suites = self.options.selection, suites_dir()
        problem = selection.unknown(names_of(declared_ids(suites))) if selection else None
        if problem is not None and not beside_other_paths(args, suites):
            raise RunError(problem)

    def run_infra_hooks(self, defer: Callable[[Callable[[], Any]], None]) -> None:
        """Terratest's order: the `down` command is registered (with `defer`) before `up` runs, so it runs whatever
        happens next."""
        from aksid.config import profile_hooks
        from aksid.infra_hooks import run_hook

        hooks = profile_hooks(self.options.profile)
        up = self.options.provision_cmd or hooks.get("up")
        down = self.options.teardown_cmd or hooks.get("down")
        if down:
            defer(lambda: run_hook("teardown", down, self.say))
        if up and not run_hook("provision", up, self.say):
            raise RunError(f"the provision command failed: {up}" + (" (the teardown command runs next)" if down else ""))

    def resolve(self) -> None:
        """The run's members, from the command line and the profiles: every mistake said before any request."""
        if self.options.replay and self.options.mode_given:
            raise RunError("--aksid-replay re-judges a saved snapshot; it takes no --aksid-mode")
        if self.options.is_fleet and self.mode != "attach":
            raise RunError("--aksid-target runs attach mode only (one replay or mode per run)")
        self.members = self.source.members(self.options)
        if not self.source.collects:
            self.snapshot_path = self.members[0].snapshot_path

    # ------------------------------------------------------------------ evidence
    def collect(self) -> None:
        """Every member's evidence, once per run; the snapshot (or fleet index) every process of the run reads."""
        reports = self.options.reports_dir
        if self.fleet is not None:
            def collect(member: Member) -> None:
                progress = Progress(self.terminal, verbose=self.options.verbose, prefix=f"{member.name}: ")
                member.snapshot = self.source.collect(member, self.options, CollectContext(progress, self.say))
                member.snapshot_path = reports / "snapshots" / f"{member.name}.json"
                member.snapshot.save(member.snapshot_path)
                progress.done()

            self.snapshot_path = collect_members(self.members, collect, max(1, self.options.parallel), reports)
            self.say(f"evidence of {len(self.members)} targets collected, index {self.snapshot_path}")
            return
        if not self.source.collects:
            return
        member = self.members[0]
        progress = Progress(self.terminal, verbose=self.options.verbose)
        on_page = self.publisher.page if self.publisher is not None else None
        member.snapshot = self.source.collect(member, self.options, CollectContext(progress, self.say, on_page,
                                                                                   self._live_line()))
        progress("snapshot: writing")
        self.snapshot_path = reports / "snapshot.json"
        if self.publisher is not None:
            self.publisher.finish(member.snapshot.document)  # a worker writes snapshot.json from it
        else:
            member.snapshot.save(self.snapshot_path)
        progress.done()
        self.say(f"evidence collected, snapshot written to {self.snapshot_path}")
        for problem in member.snapshot.errors:
            self.say(f"could not collect {problem}", yellow=True)

    def adopt(self, received: Received) -> None:
        """A worker's run: the evidence the controller collected."""
        self.members = received.members
        if not received.fleet:
            self.members[0].name = one_target_name(self.options, self.members[0].target)

    def with_evidence(self, workerinput: Mapping[str, Any] | None) -> Run:
        """The run, its evidence at hand: an xdist worker (`workerinput`) receives it from the controller on first use
        (the controller validated the overrides already; in live modes they are in the snapshot's target)."""
        if self.snapshot is None and workerinput is not None:
            self.adopt(receive(workerinput, list(self.options.settings) if self.options.replay else None))
        assert self.snapshot is not None
        return self

    def deselected(self, checks: list[tuple[str, str]], quiet: bool) -> set[int]:
        """Of the collected checks ((id, area) pairs), the positions --aksid-check/--aksid-skip-check leave out; an
        unknown name is a RunError (unless `quiet`: an xdist worker cannot stop the run, its names select nothing)."""
        selection = self.options.selection
        if not selection:
            return set()
        from aksid.paths import suites_dir
        from aksid.run.selection import declared_ids, names_of

        dropped, problem = selection.dropped(checks, names_of(declared_ids(suites_dir()) | {c for c, _ in checks}))
        if problem is not None and not quiet:
            raise RunError(problem)
        return dropped

    def tell_worker(self, workerinput: MutableMapping[str, Any]) -> None:
        """xdist: what a worker needs to receive the evidence instead of collecting again."""
        if self.publisher is not None:
            self.publisher.tell(workerinput)
        elif self.snapshot_path is not None:
            tell(workerinput, self.snapshot_path, fleet=self.fleet is not None)

    @staticmethod
    def subject_of(case_id: str | None, member: Member | None) -> str | None:
        """A result's subject from its test case's id (a fleet's ids start with the member's name); None: the check
        runs once, for the cluster."""
        return case_id.removeprefix(f"{member.name}/") if case_id is not None and member is not None else case_id

    def adopt_file(self, path: Path) -> None:
        """A controller that did not collect (activated late, by its workers' results): the snapshot they wrote."""
        target = target_from_snapshot(Snapshot.load(path))
        self.members = [Member(one_target_name(self.options, target), target)]
        self.snapshot_path = path

    def header_lines(self) -> list[str]:
        """The run's header: one line (mode, target, where it came from); with -v every field and its source. The
        identity models are in the closing summary (known in every mode by then): said once."""
        from aksid.run.terminal import header_line

        if self.fleet is not None:
            said = [f"{len(self.fleet)} targets ({', '.join(m.name for m in self.fleet)})"]
        else:
            said = [f"target {self.target.cluster_name} / {self.target.domain}"]
            said += [f"{what} {path}" for what, path in (("snapshot", self.options.replay), ("profile", self.options.profile),
                                                          ("env file", self.options.env_file)) if path]
        lines = [header_line(self.mode, said)]
        if self.options.verbose:
            lines += [f"  {name} = {getattr(self.target, name)}  ({source})" for name, source in self.target.sources.items()]
        return lines

    def _live_line(self) -> Callable[[str], None] | None:
        """On a terminal (and without -v), a wait's state as one line rewritten in place; in a log, None."""
        terminal = self.terminal
        if terminal is None or self.options.verbose or not getattr(terminal, "isatty", False):
            return None
        return lambda line: terminal.rewrite(f"aksid: {line}", erase=True)

    def say(self, line: str, **style: bool) -> None:
        (self.terminal or Terminal()).write_line(f"aksid: {line}", **style)

    # ------------------------------------------------------------------ checks
    def applies(self, info: CheckInfo) -> str | None:
        """Why the check does not run in this run's mode, or None when it does."""
        if self.mode in info.modes:
            return None
        if self.mode == "static":
            return f"{info.id} needs a live environment (static mode reads the repository's files)"
        return (f"{info.id} applies in {', '.join(info.modes)} mode only (run with --aksid-mode {info.modes[0]}); "
                f"this run is in {self.mode} mode")

    def cases(self, info: CheckInfo, subjects_fn: Any, takes_subject: bool) -> list[Case]:
        """The check's tests: one per subject (per member, in a fleet), or one saying why there are none. Empty when
        the check takes no subject and the run has one target: it runs once."""
        reason = self.applies(info)
        if reason is None and takes_subject and subjects_fn is None:
            raise RunError(f"check {info.id} takes `subject` but declares no subjects")
        subjects_fn = _none_because(reason) if reason is not None else _model_guarded(subjects_fn, info.model)
        if self.fleet is not None:
            if not takes_subject:
                return [Case(m.name, m.name, member=m.name) for m in self.fleet]
            return [replace(case, id=f"{m.name}/{case.id}", member=m.name)
                    for m in self.fleet for case in _subject_cases(subjects_fn, m.snapshot, m.target, info.id)]
        if not takes_subject:
            return []
        if reason is not None:
            return [Case("not-applicable", skip=reason)]
        return _subject_cases(subjects_fn, self.snapshot, self.target, info.id)

    def before(self, info: CheckInfo, params: dict[str, Any] | None, member: Member | None) -> tuple[str, str] | None:
        """Before a check runs: ("skip", why) when it does not apply, ("error", why) when its evidence is missing."""
        reason = self.applies(info)
        if reason is not None:
            return "skip", reason
        if params is not None and isinstance(params.get("subject"), Unavailable):
            return "error", params["subject"].reason
        if params is None or "subject" not in params:
            reason = self.model_skip(info, member)
            return ("skip", reason) if reason is not None else None
        return None

    def model_skip(self, info: CheckInfo, member: Member | None) -> str | None:
        """A check of an identity model not in use, run once (no subjects): why it is skipped."""
        if info.model is None:
            return None
        snapshot = member.snapshot if member is not None else self.snapshot
        return skip_reason(snapshot, info.model)

    def judge(self, info: CheckInfo, subject: str | None, outcome: str, message: str, nodeid: str,
              member: Member | None = None, recorded: Any = None) -> CheckResult:
        """One check's result: a failure a waiver covers is `waived` (or says its waiver expired)."""
        if subject is None:
            subject = f"cluster/{member.target.cluster_name}" if member is not None else self._cluster_subject()
        waiver = find_waiver(self.waivers, info.id, subject) if outcome == "failed" else None
        waiver_record = None
        if waiver is not None:
            expired = waiver.expired(self.today)
            waiver_record = {**waiver.describe(), "status": "expired" if expired else "active"}
            if expired:
                message = f"{message} (waiver expired on {waiver.expires.isoformat()}: {waiver.reason})"
            else:
                outcome, message = "waived", f"waived until {waiver.expires.isoformat()}: {waiver.reason} — {message}"
        return CheckResult(
            id=info.id, title=info.title, severity=info.severity, area=info.area, subject=subject, outcome=outcome,
            message=message, remediation=info.remediation, nodeid=nodeid, waiver=waiver_record,
            locations=self._locations(outcome, message, recorded),
            target=member.name if member is not None else self.name,
            evidence=recorded.record() if recorded is not None else [],
            fix=recorded.fix_for(outcome) if recorded is not None else None)

    def _cluster_subject(self) -> str:
        return f"cluster/{self.target.cluster_name}" if self.target is not None else "cluster"

    def _locations(self, outcome: str, message: str, recorded: Any) -> list[dict[str, Any]] | None:
        """Static mode: the files and lines of the objects behind a finding (the snapshot records where each object
        came from; the check's evidence says which objects it judged)."""
        sources = self.snapshot.document.get("sources") if self.snapshot is not None else None
        if not sources or outcome not in ("failed", "waived", "error"):
            return None
        from aksid.locations import locate

        items = recorded.items if recorded is not None else []
        return locate(message, sources, items, recorded.fix_text if recorded is not None else None) or None

    def record(self, result: CheckResult) -> None:
        self.results[result.nodeid] = result

    # ------------------------------------------------------------------ the end
    def finish(self) -> RunOutcome:
        """Reports written; the exit code by --aksid-fail-on and --aksid-min-coverage."""
        results = list(self.results.values())
        used = {r.waiver["index"] for r in results if r.waiver}
        meta = RunMeta(
            mode=self.mode, started=self.started.isoformat(timespec="seconds"),
            snapshot=str(self.snapshot_path) if self.snapshot_path else None,
            target=self.target.public_view() if self.target and self.fleet is None else None,
            targets=self._targets_meta(),
            identity_models=_identity_models_of(self.snapshot) if self.fleet is None else None,
            fail_on=self.options.fail_on, waivers=[w.describe() for w in self.waivers],
            stale_waivers=[w.describe() for w in self.waivers if w.index not in used],
            migration=_migration_of(self.snapshot, self.target) if self.fleet is None else None)
        at_hand = self._snapshot_at_hand()  # read once: a late-activated controller loads it from its file
        self._collection_meta(meta, at_hand)
        snapshots = self._chain_snapshots(at_hand)
        as_dict = meta.as_dict()
        if self.options.baseline is not None:
            from aksid.reporting.baseline import apply_baseline

            snapshot = self.snapshot.document if self.snapshot is not None and self.fleet is None else None
            results = apply_baseline(self.options.baseline, results, as_dict, snapshot)
            meta.baseline = as_dict.get("baseline")
        from aksid.reporting import write_reports  # the controller's work only: workers never import the writers

        write_reports(self.options.reports_dir, results, as_dict, snapshots)
        outcome = RunOutcome(results, meta, exit_code(results, self.options.fail_on),
                             expired=[r for r in results if r.waiver and r.waiver["status"] == "expired"],
                             verbose=self.options.verbose)
        minimum, percent = self.options.min_coverage, (meta.coverage or {}).get("percent")
        if minimum is not None and percent is not None and percent < minimum:
            outcome.below_coverage = (f"aksid: evidence coverage {percent:g}% is below --aksid-min-coverage "
                                      f"{minimum:g}%: the environment was not fully verified")
            outcome.exit_code = FAILED
        return outcome

    def _snapshot_at_hand(self) -> Snapshot | str | None:
        """The run's snapshot, loaded from its file when this process did not hold it (a late-activated controller)."""
        if self.snapshot is not None or self.snapshot_path is None or self.snapshot_path.suffix != ".json":
            return self.snapshot
        try:
            return Snapshot.load(self.snapshot_path)
        except (OSError, ValueError) as exc:
            return str(exc)

    def _chain_snapshots(self, at_hand: Snapshot | str | None) -> dict[str | None, Snapshot | str | None]:
        """The evidence report.html draws its chain from: each fleet member's snapshot, or the run's."""
        if self.fleet is not None:
            return {m.name: m.snapshot for m in self.fleet}
        return {self.name: at_hand}

    def _collection_meta(self, meta: RunMeta, at_hand: Snapshot | str | None) -> None:
        """Coverage and retries of the run's evidence, from its snapshot(s) (a replay reports what was collected)."""
        from aksid.coverage import coverage, merged

        if self.fleet is not None:
            named = [(m.name, m.snapshot.document) for m in self.fleet if m.snapshot is not None]
        else:
            snapshot = at_hand
            named = [("", snapshot.document)] if isinstance(snapshot, Snapshot) else []
        meta.collected = bool(named)
        if not named:
            return
        reports = [coverage(document) for _, document in named]
        meta.coverage = reports[0] if len(reports) == 1 else merged(reports)
        meta.retries = [{**({"target": name} if name else {}), **retry} for name, document in named
                        for retry in (document.get("collection") or {}).get("retries") or []]

    def _targets_meta(self) -> list[dict[str, Any]]:
        if self.fleet is not None:
            return [{"name": m.name, "target": m.target.public_view() if m.target else None,
                     "snapshot": str(m.snapshot_path) if m.snapshot_path else None,
                     "identity_models": _identity_models_of(m.snapshot)} for m in self.fleet]
        name = self.name
        return [{"name": name, "target": self.target.public_view() if self.target else None,
                 "snapshot": str(self.snapshot_path) if self.snapshot_path else None}] if name else []


def exit_code(results: Iterable[CheckResult], fail_on: str) -> int:
    """1 when a check at or above `fail_on` severity failed or could not verify; waived failures do not count."""
    threshold = SEVERITIES.index(fail_on)
    blocking = [r for r in results if r.outcome in ("failed", "error") and SEVERITIES.index(r.severity) >= threshold]
    return FAILED if blocking else OK


def _identity_models_of(snapshot: Snapshot | None) -> dict[str, Any] | None:
    """Which identity model binds each workload to which identity (None when the run has no snapshot at hand)."""
    return identity_models(snapshot) if snapshot is not None else None


def _migration_of(snapshot: Snapshot | None, target: Any) -> dict[str, Any] | None:
    """The migration to workload identity per workload (aksid.migration; None without a snapshot at hand)."""
    from aksid.migration import migration_section

    return migration_section(snapshot, target) if snapshot is not None else None


def _model_guarded(subjects_fn: Any, model: str | None) -> Any:
    """A check of an identity model that is not in use has no subjects: it is skipped with the reason."""
    if model is None or subjects_fn is None:
        return subjects_fn

    def subjects(snapshot: Snapshot, target: Any) -> Any:
        reason = skip_reason(snapshot, model)
        if reason is not None:
            raise NotApplicable(reason)
        return subjects_fn(snapshot, target)
    return subjects


def _none_because(reason: str) -> Any:
    """A subjects function for a check that does not apply: every member reports it skipped, with the reason."""
    def subjects(_snapshot: Snapshot, _target: Any) -> dict[str, Any]:
        raise NotApplicable(reason)
    return subjects


def _subject_cases(subjects_fn: Any, snapshot: Snapshot | None, target: Any, check_id: str) -> list[Case]:
    """One case per subject (its id names it), or one that stands for why there are none."""
    try:
        subjects = dict(subjects_fn(snapshot, target))
    except EvidenceUnavailable as exc:
        return [Case("evidence-unavailable", Unavailable(str(exc)))]
    except (NotApplicable, EvidenceNotCollected) as exc:
        return [Case("not-applicable", skip=str(exc))]
    if not subjects:
        raise RunError(f"check {check_id}: subjects function returned nothing; raise NotApplicable with a reason instead")
    return [Case(subject_id, value) for subject_id, value in subjects.items()]
