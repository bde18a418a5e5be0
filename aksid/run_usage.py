"""`aksid run`'s own help and usage errors, ahead of pytest's.

`aksid run` hands its arguments to pytest, whose `--help` is hundreds of lines with aksid's options far down, and
whose usage errors read `pytest.main(): error: ...`. Here the help is aksid's options, grouped, rendered from
aksid.activation.OPTIONS (so it cannot drift from what the plugin accepts; an option added there and not placed
in a group below still shows, under "other"), and an unknown --aksid-mode is answered in aksid's words.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Generator
from typing import Any

import pytest

from aksid.modes import selectable_modes
from aksid.suggest import closest

# (title, description, flags). A flag named here but not (yet) among the options is simply not shown.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("target", "what is checked: the environment's settings and where they come from",
     ("--aksid-profile", "--aksid-target", "--aksid-env-file", "--aksid-set", "--aksid-kube-context")),
    ("mode", "how the evidence is gathered: a live environment (attach, provision), a saved snapshot or a repository",
     ("--aksid-mode", "--aksid-replay", "--aksid-manifests", "--aksid-plan", "--aksid-arm-template",
      "--aksid-arm-parameters", "--aksid-source-root", "--aksid-provision-cmd", "--aksid-teardown-cmd",
      "--aksid-read-secrets")),
    ("selection", "which checks run (pytest's -k EXPRESSION selects too)",
     ("--aksid-check", "--aksid-skip-check")),
    ("reports", "what is written and what it is compared with",
     ("--aksid-reports-dir", "--aksid-baseline", "--aksid-waivers")),
    ("thresholds", "when the run fails, and how long it may take",
     ("--aksid-fail-on", "--aksid-min-coverage", "--aksid-timeout")),
)
OTHER = ("other", "further aksid options")

USAGE = "aksid run [AKSID OPTIONS] [PYTEST OPTIONS] [PATH ...]"
DESCRIPTION = ("Run aksid's checks (and a team's own, in the PATHs given) through pytest. Settings come from the "
               "profile, the env file, the environment and --aksid-set, in rising precedence.")
EPILOG = ("pytest's own options pass through unchanged (-k EXPRESSION, -x, -v, --tb=STYLE, -n NUM with "
          "pytest-xdist, ...): `pytest --help` lists them.")


def asks_for_help(args: list[str]) -> bool:
    """-h/--help among `aksid run`'s arguments (not after `--`, where everything is a path)."""
    before = args[:args.index("--")] if "--" in args else args
    return "-h" in before or "--help" in before


def run_help() -> str:
    """The help of `aksid run`: aksid's options by group, then where pytest's own options are described."""
    from aksid.activation import OPTIONS  # imported here: `aksid --help` needs neither pytest nor the plugin

    parser = argparse.ArgumentParser(prog="aksid run", usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
                                     add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    by_flag = dict(OPTIONS)
    placed = {flag for _, _, flags in GROUPS for flag in flags}
    others = tuple(flag for flag in by_flag if flag not in placed)
    for title, description, flags in (*GROUPS, (*OTHER, others)):
        present = [flag for flag in flags if flag in by_flag]
        if not present:
            continue
        group = parser.add_argument_group(title, description)
        for flag in present:
            group.add_argument(flag, **_described(by_flag[flag]))
    return parser.format_help()


def _described(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The option's argparse keywords, its choices spelled out in its help (a metavar hides them)."""
    described = dict(kwargs)
    if "choices" in kwargs:
        described["help"] = f"{kwargs.get('help', '')} [{', '.join(map(str, kwargs['choices']))}]".strip()
    # `%` would be read as a format specifier by argparse's help formatter
    described["help"] = described.get("help", "").replace("%", "%%")
    return described


class UsageProblem(Exception):
    """A usage error of `aksid run`, said in aksid's words (exit 4)."""


class ModeCheck:
    """A pytest plugin object `aksid run` passes to pytest.main: an unknown --aksid-mode in aksid's words.

    The check happens where pytest checks it (argparse choices, SelectableModes), after every plugin is loaded, so a
    mode that a plugin registers (`-p`, an entry point) is known; only pytest's message is replaced."""

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_parse(self, pluginmanager: Any, args: list[str]) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except pytest.UsageError as exc:
            text = str(exc)
            if "argument --aksid-mode" not in text or "invalid choice" not in text:
                raise
            given = re.search(r"invalid choice: (['\"])(.*?)\1", text)
            raise UsageProblem(unknown_mode(given.group(2) if given else "")) from None


def unknown_mode(mode: str) -> str:
    modes = selectable_modes()
    near = closest(mode, modes, n=1)
    hint = f": did you mean '{near[0]}'?" if near else ""
    return (f"aksid run: --aksid-mode '{mode}' is not a mode{hint} (modes: {', '.join(modes)}; a saved snapshot "
            "is re-judged with --aksid-replay SNAPSHOT)")
