"""How pytest's report of a check reads as an aksid outcome: passed, failed (its assertion's message, without
pytest's rewritten expression), skipped (the reason), or error (the evidence was missing, or the check raised)."""

from __future__ import annotations

from typing import Any

from aksid.snapshot import EvidenceUnavailable


def outcome_of(report: Any, call: Any) -> tuple[str | None, str]:
    """A check's outcome and message from pytest's report and call (None: a phase that decides nothing)."""
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
