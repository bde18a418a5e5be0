"""`aksid`: run the checks, run the demo against the sandbox, manage the sandbox, list scenarios."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# Settings a user's shell may carry that must not leak into a run against the sandbox.
_TARGET_VARIABLES = ("KUBECONFIG", "AZ_", "ACME_", "IDENTITY_", "AKSID_", "AZURE_")


# Spellings `aksid run` accepted before every target option was an --aksid-* option.
_RUN_ALIASES = {"--kube-context": "--aksid-kube-context"}
# pytest's built-in plugins `aksid run` has no use for (its checks are functions: no doctests, no unittest classes, no
# py.path fixtures, no pastebin): not imported, a few milliseconds of every run. `pytest` with the plugin keeps them all.
_UNUSED_PLUGINS = ("doctest", "unittest", "legacypath", "pastebin", "setuponly", "setupplan")


def run_suites(pytest_args: list[str]) -> int:
    """The bundled suites (and any paths given) through pytest; the plugin comes from its pytest11 entry point."""
    import pytest

    from aksid.paths import suites_dir
    from aksid.run_usage import ModeCheck, UsageProblem, asks_for_help, run_help

    if asks_for_help(pytest_args):  # aksid's options, grouped; pytest's own 500 lines only from `pytest --help`
        print(run_help(), end="")
        return 0
    try:
        blocked = [arg for name in _UNUSED_PLUGINS if f"no:{name}" not in pytest_args for arg in ("-p", f"no:{name}")]
        return int(pytest.main([str(suites_dir()), *blocked, *_spell_run_options(pytest_args)], plugins=[ModeCheck()]))
    except UsageProblem as exc:
        print(exc, file=sys.stderr)
        return 4


def _spell_run_options(args: list[str]) -> list[str]:
    spelled = []
    for arg in args:
        flag, sep, value = arg.partition("=")
        spelled.append(_RUN_ALIASES.get(flag, flag) + sep + value if flag in _RUN_ALIASES else arg)
    return spelled


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_TARGET_VARIABLES)}


def demo(scenario_ref: str, reports_dir: Path, extra: list[str], state_dir: Path | None = None,
         mode: str = "attach") -> int:
    """Sandbox up → the suites in attach mode → summary and reports → sandbox down (also on Ctrl-C)."""
    from aksid.sandbox.runtime import SandboxError, down, up
    from aksid.sandbox.scenario import ScenarioError, load_scenario

    try:
        _require_scenario(scenario_ref)
        scenario = load_scenario(scenario_ref)
    except ScenarioError as exc:
        print(f"aksid demo: {exc}", file=sys.stderr)
        return 4
    keep_state = state_dir is not None
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="aksid-sandbox-"))
    print(f"aksid demo: scenario '{scenario.name}' — {scenario.description}")
    # A terminated demo must still stop its sandbox: turn SIGTERM into the Ctrl-C path below.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        sandbox = up(scenario_ref, state_dir)
        print(f"aksid demo: sandbox up in {state_dir} (kube API and ARM on 127.0.0.1)")
        command = [sys.executable, "-m", "aksid", "run", "--aksid-profile", str(sandbox.profile), "--aksid-mode", mode,
                   "--aksid-reports-dir", str(reports_dir), "-q", "--tb=no", "-rN", "-p", "no:cacheprovider", *extra]
        code = subprocess.call(command, env=_clean_environment())
    except SandboxError as exc:
        print(f"aksid demo: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("aksid demo: interrupted; stopping the sandbox", file=sys.stderr)
        return 130
    finally:
        down(state_dir)
        signal.signal(signal.SIGTERM, previous)
        if not keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
    if code not in (0, 1):
        print(f"aksid demo: the suite run ended with exit code {code}", file=sys.stderr)
        return code
    return verdict(scenario.expect_failed, scenario.expect_error, reports_dir / "results.json", scenario.expect_mentions,
                   mode)


def _require_scenario(reference: str) -> None:
    """A built-in name that is none of them is answered with the closest names, not all of them."""
    from aksid.sandbox.scenario import ScenarioError, builtin_names
    from aksid.suggest import did_you_mean

    # scenario.resolve_path's rule: a reference without `/` or a YAML suffix is a built-in name
    if "/" in reference or reference.endswith((".yaml", ".yml")) or reference in (names := builtin_names()):
        return
    hint = did_you_mean(reference, names) or "none is close"
    raise ScenarioError(f"no built-in scenario '{reference}' ({hint}; `aksid scenarios` lists them)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def verdict(expect_failed: list[str], expect_error: list[str], results_path: Path,
            mentions: dict[str, list[str]] | None = None, mode: str = "attach") -> int:
    """0 when the outcomes are what the scenario expects (for `healthy`: everything passed).

    Expected IDs of checks that do not run in this mode (PROBE/CANARY in attach) are set aside."""
    from aksid.catalogue import load_catalogue

    modes = {entry.id: entry.modes for entry in load_catalogue()}
    expect_failed = [i for i in expect_failed if mode in modes.get(i, (mode,))]
    expect_error = [i for i in expect_error if mode in modes.get(i, (mode,))]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    # A waived failure was still detected: for the scenario's expectation it counts as failed.
    failed = sorted({c["id"] for c in results["checks"] if c["outcome"] in ("failed", "waived")})
    errors = sorted({c["id"] for c in results["checks"] if c["outcome"] == "error"})
    problems = []
    if failed != sorted(set(expect_failed)):
        problems.append(f"failed checks {failed or 'none'}, expected {sorted(set(expect_failed)) or 'none'}")
    if errors != sorted(set(expect_error)):
        problems.append(f"checks in error {errors or 'none'}, expected {sorted(set(expect_error)) or 'none'}")
    for check_id, texts in (mentions or {}).items():
        if check_id not in expect_failed + expect_error:
            continue  # a check of another mode
        said = " ".join(c["message"] for c in results["checks"] if c["id"] == check_id and c["outcome"] != "passed")
        missing = [text for text in texts if text not in said]
        if missing:
            problems.append(f"{check_id}'s message does not name {', '.join(repr(t) for t in missing)}")
    if problems:
        print(f"aksid demo: scenario expectation NOT met: {'; '.join(problems)}")
        return 1
    print("aksid demo: scenario expectation met" + (f" (red as expected: {', '.join(failed)})" if failed else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and flag, each described (`aksid COMMAND --help`); `aksid run --help` is aksid.run_usage's."""
    parser = argparse.ArgumentParser(prog="aksid", description=__doc__,
                                     epilog="`aksid COMMAND --help` describes a command and each of its flags.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the checks (pytest options pass through; `aksid run --help` lists aksid's)",
                         add_help=False)
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="aksid's and pytest's options and paths")
    demo_p = sub.add_parser("demo", help="run the checks against the embedded sandbox")
    demo_p.add_argument("--scenario", default="healthy", help="built-in scenario name or path (default: healthy)")
    demo_p.add_argument("--reports-dir", type=Path, default=Path("reports"),
                        help="where the reports go (default: reports; --aksid-reports-dir after -- wins)")
    demo_p.add_argument("--state-dir", type=Path, help="keep the sandbox's files (request log) here")
    demo_p.add_argument("--mode", choices=("attach", "provision"), default="attach",
                        help="attach (read only, default) or provision (probes and a canary, removed afterwards)")
    demo_p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest options, after --")
    sandbox = sub.add_parser("sandbox", help="bring the sandbox up or down, or render a scenario as a repository")
    # one parser per action, so `aksid sandbox up --help` describes exactly the flags `up` takes
    actions = sandbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    sandbox_up = actions.add_parser("up", help="start the fake Kubernetes API and ARM, DNS, ACME and web servers "
                                               "on 127.0.0.1, serving a scenario; writes a profile to run against")
    sandbox_down = actions.add_parser("down", help="stop the servers a `sandbox up` started")
    sandbox_render = actions.add_parser("render", help="write a scenario as a repository holds it (manifests, "
                                                       "plan.json, env.sh), for static mode")
    for action in (sandbox_up, sandbox_render):
        action.add_argument("--scenario", default="healthy", metavar="NAME",
                            help="built-in scenario name or path (default: healthy)")
    for action in (sandbox_up, sandbox_down):
        action.add_argument("--state-dir", type=Path, metavar="DIR",
                            help="where the sandbox keeps its files: profile, kubeconfig, request log, process ids "
                                 "(required)")
    sandbox_render.add_argument("--out", type=Path, metavar="DIR", help="where the manifests, plan.json and env.sh go (required)")
    sweep = sub.add_parser("sweep", help="delete what a provision run left (objects labelled aksid.io/run)")
    which = sweep.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="the run whose objects to delete")
    which.add_argument("--older-than", metavar="AGE", help="every run's objects created more than AGE ago (30m, 2h, 1d)")
    sweep.add_argument("--aksid-profile", metavar="PATH", help="the target's YAML profile, as for `aksid run`")
    sweep.add_argument("--aksid-env-file", metavar="PATH", help="the tutorial's env.sh, as for `aksid run`")
    sweep.add_argument("--aksid-kube-context", metavar="NAME", help="the kubeconfig context, as for `aksid run`")
    sweep.add_argument("--aksid-set", metavar="FIELD=VALUE", action="append", default=[],
                       help="override one target field, as for `aksid run` (repeatable)")
    merge = sub.add_parser("merge", help="merge results.json of separate runs (one per target) into one report")
    merge.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON",
                       help="the results.json of each run (each a target of its own)")
    merge.add_argument("--reports-dir", type=Path, default=Path("reports"),
                       help="where the merged reports go (default: reports)")
    diff_p = sub.add_parser("diff", help="what changed that matters between two runs (snapshots, results.json or "
                                         "reports folders), grouped by check")
    diff_p.add_argument("old", type=Path, metavar="OLD", help="the earlier run: snapshot.json, results.json or a "
                                                               "reports folder")
    diff_p.add_argument("new", type=Path, metavar="NEW", help="the later run, in any of the same forms")
    diff_p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                        help="text (default), markdown (for a pull request comment) or json")
    history = sub.add_parser("history", help="one HTML page: each check a row, each night (results.json) a column")
    history.add_argument("folder", type=Path, metavar="DIR", help="a folder of past results.json (searched recursively)")
    history.add_argument("--out", type=Path, default=Path("history.html"), help="where the page goes (default: history.html)")
    scenarios_p = sub.add_parser("scenarios", help="list the built-in scenarios, or show one with its bases applied")
    scenarios_p.add_argument("action", nargs="?", default="list", metavar="{list,show}",
                             help="list (default): names, expected red checks, descriptions; show: one scenario in full")
    scenarios_p.add_argument("name", nargs="?", metavar="NAME", help="show: a built-in scenario name or a scenario file")
    scenarios_p.add_argument("--format", choices=("yaml", "json"), default="yaml", help="show: the output format")
    deploy_p = sub.add_parser("deploy", help="write aksid's own RBAC manifests and Azure role definitions (deploy/)")
    deploy_p.add_argument("--out", type=Path, default=Path("deploy"), metavar="DIR",
                          help="the folder to write them to (default: ./deploy); a file there with other content "
                               "stops it, never overwritten")
    who = sub.add_parser("who-can", help="who can act as an identity, re-point it or widen its rights: each principal's "
                                         "shortest path, with every edge's evidence (reads a saved snapshot)")
    who.add_argument("identity", nargs="?", metavar="IDENTITY",
                     help="client id, name or resource id of a user-assigned identity (default: the DNS identity)")
    who.add_argument("--snapshot", type=Path, default=Path("reports/snapshot.json"), metavar="PATH",
                     help="the snapshot to read (default: reports/snapshot.json)")
    who.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    checks = sub.add_parser("checks", help="print the check catalogue (from the suites' check markers)")
    checks.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                        help="text (default), markdown (the README's table) or json")
    checks.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="also list the checks in these files or folders (a team's own checks)")
    checks.add_argument("--pages", type=Path, metavar="DIR",
                        help="write one page per bundled check into DIR (docs/checks/<ID>.md) instead of printing")
    for choice in sub._choices_actions:  # each subcommand's --help opens with the line `aksid --help` shows for it
        sub.choices[choice.dest].description = sub.choices[choice.dest].description or choice.help
    for choice in actions._choices_actions:
        actions.choices[choice.dest].description = actions.choices[choice.dest].description or choice.help
    return parser


class _VersionAction(argparse.Action):
    """`--version`, looked up when asked: importlib.metadata costs every other command ~30 ms."""

    def __init__(self, option_strings: list[str], dest: str, **_: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print aksid's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"aksid {_version()}")  # on stdout, as argparse's own version action prints
        parser.exit()


def _version() -> str:
    """The installed distribution's version; the package's own when run from a checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aksid")
    except PackageNotFoundError:
        from aksid import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["scenarios"], ["checks"]):
        return _listing(parser, argv)
    if argv[:1] == ["run"]:  # everything after `run` belongs to pytest, in its order
        return run_suites(argv[1:])
    return _dispatch(parser.parse_args(argv))


def _listing(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """`aksid scenarios | head` ends quietly, as the Python docs recommend (catch the broken pipe, point stdout at
    /dev/null so the interpreter's final flush has nowhere to fail). Never by SIGPIPE's default action: that is
    process-wide, and one reset socket would then kill silently whatever runs in this process next (a pytest-xdist
    worker that called `main(["scenarios"])` lost every later test that met a closed connection)."""
    try:
        code = _dispatch(parser.parse_args(argv))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        extra = [a for a in args.pytest_args if a != "--"]
        reports_dir = _option_value(extra, "--aksid-reports-dir") or args.reports_dir  # the run's spelling wins
        return demo(args.scenario, Path(reports_dir).resolve(), extra, args.state_dir, args.mode)
    if args.command == "sandbox":
        return _sandbox(args.action, getattr(args, "scenario", "healthy"),
                        args.out if args.action == "render" else args.state_dir)
    if args.command == "checks" and args.pages:
        return _check_pages(args.pages, args.paths)
    if args.command == "checks":
        return _catalogue(args.format, args.paths)
    if args.command == "merge":
        return _merge(args.results, args.reports_dir)
    if args.command == "diff":
        from aksid.diff import diff_command

        return diff_command(args.old, args.new, args.format)
    if args.command == "history":
        from aksid.history import history_command

        return history_command(args.folder, args.out)
    if args.command == "sweep":
        from aksid.provision.sweep import sweep_command

        return sweep_command(args)
    if args.command == "who-can":
        from aksid.access.who_can import who_can_command

        return who_can_command(args.snapshot, args.identity, args.format)
    if args.command == "deploy":
        from aksid.deploy_files import deploy_command

        return deploy_command(args.out)
    from aksid.scenario_command import scenarios_command

    return scenarios_command(args.action, args.name, args.format, require=_require_scenario)


def _merge(paths: list[Path], reports_dir: Path) -> int:
    from aksid.merge import MergeError, merge
    from aksid.reporting import REPORT_FILES
    from aksid.results import terminal_lines

    try:
        results, meta = merge(paths, reports_dir)
    except MergeError as exc:
        print(f"aksid merge: {exc}", file=sys.stderr)
        return 4
    for line in terminal_lines(results):
        print(line)
    print(f"merged {len(paths)} runs ({len(meta['targets'])} targets) into {reports_dir}: {', '.join(REPORT_FILES)}")
    return 1 if any(r.outcome in ("failed", "error") for r in results) else 0


def _option_value(args: list[str], flag: str) -> str | None:
    """The last value given to `flag` (pytest's rule: the last one wins), as `flag VALUE` or `flag=VALUE`."""
    value = None
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _check_pages(folder: Path, paths: list[Path]) -> int:
    from aksid.catalogue import load_catalogue
    from aksid.check_pages import write_pages

    if paths:  # the pages are the bundled checks' documentation, linked from every report
        print("aksid checks: --pages writes the bundled checks' pages only; leave out the PATH arguments", file=sys.stderr)
        return 4
    if folder.exists() and not folder.is_dir():
        print(f"aksid checks: --pages {folder} is a file, not a folder", file=sys.stderr)
        return 4
    written = write_pages(folder, load_catalogue())
    print(f"wrote {len(written)} pages to {folder}")
    return 0


def _catalogue(form: str, paths: list[Path]) -> int:
    from dataclasses import asdict

    from aksid.catalogue import CatalogueError, as_markdown, as_text, load_catalogue

    try:
        entries = load_catalogue(paths)
    except CatalogueError as exc:
        print(f"aksid checks: {exc}", file=sys.stderr)
        return 4
    if form == "json":
        print(json.dumps([asdict(entry) for entry in entries], indent=2))
    else:
        print(as_markdown(entries) if form == "markdown" else as_text(entries), end="")
    return 0


def _sandbox(action: str, scenario: str, state_dir: Path | None) -> int:
    from aksid.sandbox.runtime import SandboxError, down, up
    from aksid.sandbox.scenario import ScenarioError

    if state_dir is None:
        print(f"aksid sandbox: {action} needs {'--out' if action == 'render' else '--state-dir'} DIR", file=sys.stderr)
        return 4
    try:
        if action != "down":
            _require_scenario(scenario)
    except ScenarioError as exc:
        print(f"aksid sandbox: {exc}", file=sys.stderr)
        return 4
    try:
        if action == "render":
            from aksid.sandbox.render import render
            from aksid.sandbox.scenario import load_scenario

            written = render(load_scenario(scenario), state_dir)
            print(f"rendered: manifests {written['manifests']}, plan {written['plan']}, env file {written['env']}")
            if "not_rendered" in written:  # static mode on this folder may be greener than attach: say why
                left_out = [line for line in written["not_rendered"].read_text(encoding="utf-8").splitlines()
                            if line.startswith("- ")]
                print(f"aksid sandbox: {len(left_out)} of scenario {scenario}'s changes cannot be rendered, so static mode "
                      f"cannot see them (also in {written['not_rendered']}):", *left_out, sep="\n  ", file=sys.stderr)
            return 0
        if action == "up":
            sandbox = up(scenario, state_dir)
            print(f"sandbox up: profile {sandbox.profile}, kubeconfig {sandbox.kubeconfig}, "
                  f"request log {sandbox.request_log}")
        else:
            pids = down(state_dir)
            print(f"sandbox down: stopped {len(pids)} process(es)")
    except (SandboxError, ScenarioError) as exc:
        print(f"aksid sandbox: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
