"""What a run prints, without pytest: its header, its closing summary, and which of pytest's sections it replaces.

By default short: a one-line header (mode, target, profile), the identity models in one line, then the findings and
totals (aksid.results.report_lines), the coverage line and the reports written. With -v the full form: every
setting and where it came from, each workload's identity binding. pytest's FAILURES/ERRORS sections and short
summary keep the tests that are not checks; a check's block says what its traceback would, without the Python
source, unless --tb or -v asks for the tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

AKSID_PROPERTY = "aksid"  # the user property a check's report carries its result in (aksid/plugin.py)


def header_line(mode: str, said: list[str]) -> str:
    """`aksid: mode attach, target hello-aks / example.test, profile p.yaml (-v: every setting and its source)`."""
    return f"aksid: mode {', '.join([mode, *said])} (-v: every setting and its source)"


def identity_model_lines(models: dict[str, Any], verbose: bool) -> list[str]:
    """The identity models in one line (each workload by its name), or, with -v, why, and which identity each
    workload reaches."""
    if verbose:
        from aksid.identity_models import header_lines

        return header_lines(models)
    workloads = ", ".join(f"{w['workload'].rsplit('/', 1)[-1]}: {w['model']}" for w in models["workloads"])
    return [f"identity models: {models['cluster']}" + (f" ({workloads})" if workloads else "")]


def shows_tracebacks(tbstyle: str, verbose: int) -> bool:
    """pytest's tracebacks of the checks only when asked: --tb given (pytest's default is `auto`), or -v."""
    return tbstyle != "auto" or verbose > 0


def is_check_report(report: Any) -> bool:
    return any(name == AKSID_PROPERTY for name, _ in getattr(report, "user_properties", ()))


@contextmanager
def hidden_from_pytest(stats: MutableMapping[str, list[Any]], hide: bool) -> Iterator[None]:
    """While pytest writes its summary sections (FAILURES, ERRORS, short test summary: all read its `stats`), its
    failed and errored reports hold no check: aksid's blocks say it. Put back after, for its final count."""
    kept = {key: stats[key] for key in ("failed", "error") if key in stats} if hide else {}
    for key, reports in kept.items():
        stats[key] = [report for report in reports if not is_check_report(report)]
    try:
        yield
    finally:
        stats.update(kept)
