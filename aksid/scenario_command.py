"""`aksid scenarios` (the built-in scenarios, one line each) and `aksid scenarios show NAME` (one in full)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import yaml


def scenarios_command(action: str, name: str | None, form: str,
                      require: Callable[[str], None] = lambda _reference: None) -> int:
    """`require` raises ScenarioError for a reference that names no scenario (the CLI's did-you-mean)."""
    if action == "show":
        if not name:
            print("aksid scenarios: show needs a scenario NAME (a built-in name from `aksid scenarios`, or a file)",
                  file=sys.stderr)
            return 4
        return _show(name, form, require)
    if action != "list":  # not argparse's choices: `aksid scenarios healthy` is answered with what was meant
        print(f"aksid scenarios: '{action}' is neither list nor show; `aksid scenarios show {action}` prints that scenario",
              file=sys.stderr)
        return 4
    if name:
        print(f"aksid scenarios: '{name}' is for `aksid scenarios show {name}`; the listing takes no name", file=sys.stderr)
        return 4
    from aksid.sandbox.scenario import ScenarioError, builtin_summaries

    try:
        summaries = builtin_summaries()
    except ScenarioError as exc:
        print(f"aksid scenarios: {exc}", file=sys.stderr)
        return 4
    for summary in summaries:
        expected = ", ".join(summary.expect_failed + summary.expect_error) or "all green"
        print(f"{summary.name:<32} {expected:<20} {summary.description}")
    return 0


def _show(name: str, form: str, require: Callable[[str], None]) -> int:
    from aksid.sandbox.scenario import ScenarioError, flattened, load_scenario

    try:
        require(name)
        document = flattened(load_scenario(name))
    except ScenarioError as exc:
        print(f"aksid scenarios: {exc}", file=sys.stderr)
        return 4
    if form == "json":
        # YAML timestamps a scenario may hold (creationTimestamp) print as their ISO text
        print(json.dumps(document, indent=2, default=str))
    else:
        print(yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120), end="")
    return 0
