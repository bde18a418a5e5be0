"""Bounded polls with progress and a timeline (Terratest's DoWithRetry: the description in every line).

A wait ends when its attempt has a value, when the evidence says it never will (the attempt returns
`CannotSucceed(cause)`: a controller's permanent error, aksid.provision.stop_rules), or at the deadline. Progress is
what changed, not every poll: on a terminal one live line rewritten in place, in a CI log one line per new state of
a wait (and each pending wait's state once a minute), so a red run reads as a handful of lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aksid.interrupts import raise_if_interrupted

# An attempt sees what the others found so far; it returns (value, or None while not yet, what it saw).
Attempt = Callable[[Mapping[str, Any]], tuple[Any | None, str]]
LINE_WIDTH = 160  # a state line longer than this is cut (an SDK error can be kilobytes)
LIVE_WIDTH = 100  # the live line fits a terminal of 100 columns
REMINDER_SECONDS = 60.0


@dataclass(frozen=True)
class CannotSucceed:
    """An attempt's answer when the wait is over without a value: the cause, as the finding will say it."""

    cause: str


class Transient(str):
    """What an attempt saw when the poll itself failed (a timeout, a reset): less telling than any answer, so the
    "last seen" of a wait that times out is the last real answer (404, an error of the controller's), not this."""


@dataclass
class Timeline:
    """Every wait of the run, in order: what, how long, how it ended. Reported as it goes and kept as evidence.

    `progress` prints a line; `live`, when given (a terminal), rewrites the one live line ("" clears it)."""

    deadline: float  # a time.monotonic() value
    progress: Callable[[str], None]
    live: Callable[[str], None] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    _live_shown: bool = False

    def wait_all(self, attempts: Mapping[str, Attempt], interval: float = 1.0) -> dict[str, dict[str, Any]]:
        """Poll every attempt until each has a value, cannot succeed, or the deadline passes; waits overlap.

        Returns {description: {"status": "ok", "value": ..., "seconds": s} or {"status": "timeout", "reason":
        "... did not happen within N s; last seen: ...", "last": ...} or, when the evidence said it cannot succeed,
        {"status": "timeout", "stopped": True, "reason": "... cannot succeed: <cause>", "last": <cause>}}.
        The stopped form keeps status "timeout" (the controller did not do it: a finding, as the checks read it).
        """
        began = reminded = time.monotonic()
        found: dict[str, Any] = {}  # a value, or CannotSucceed
        seen = dict.fromkeys(attempts, "nothing yet")
        telling: dict[str, str] = {}  # the last answer that was not Transient
        printed: dict[str, set[str]] = {d: set() for d in attempts}  # states already reported (CI), per wait
        results: dict[str, dict[str, Any]] = {}
        polls = 0
        while True:
            raise_if_interrupted()  # an attempt may have swallowed the interrupt as an error of a library's
            for description, attempt in attempts.items():
                if description in found:
                    continue
                value, seen[description] = attempt(found)
                if not isinstance(seen[description], Transient):
                    telling[description] = seen[description]
                if isinstance(value, CannotSucceed):
                    found[description] = value
                    results[description] = self._stopped(description, time.monotonic() - began, value.cause)
                elif value is not None:
                    found[description] = value
                    results[description] = {"status": "ok", "value": value, "seconds": self._done(description, began)}
            now = time.monotonic()
            pending = [d for d in attempts if d not in found]
            if not pending:
                self._clear_live()
                return results
            if now >= self.deadline:
                for description in pending:
                    last = telling.get(description, seen[description])
                    results[description] = self._timed_out(description, now - began, last)
                return results
            if self.live is not None:
                first = pending[0]
                self._show_live(f"aksid: waiting {now - began:.0f} s for {len(pending)} step(s): {first}: {seen[first]}")
            else:
                remind = now - reminded >= REMINDER_SECONDS
                for description in pending:
                    state = _shape(seen[description])
                    # the first state of a wait is where it starts, not a change: said only if it lasts a minute
                    if (state not in printed[description] and polls) or remind:
                        self.progress(_cut(f"waiting for {description}: {seen[description]} ({now - began:.0f} s)"))
                    printed[description].add(state)
                reminded = now if remind else reminded
            polls += 1
            time.sleep(min(interval, max(0.05, self.deadline - now)))

    def wait(self, description: str, attempt: Callable[[], tuple[Any | None, str]], interval: float = 1.0) -> Any:
        """One wait; raises WaitTimeout with the reason when the deadline passes or it cannot succeed."""
        result = self.wait_all({description: lambda _found: attempt()}, interval)[description]
        if result["status"] != "ok":
            raise WaitTimeout(result["reason"])
        return result["value"]

    def _say(self, line: str) -> None:
        self._clear_live()
        self.progress(line)

    def _show_live(self, line: str) -> None:
        assert self.live is not None
        self.live(line if len(line) <= LIVE_WIDTH else line[:LIVE_WIDTH - 1] + "…")
        self._live_shown = True

    def _clear_live(self) -> None:
        if self.live is not None and self._live_shown:
            self.live("")
            self._live_shown = False

    def _done(self, description: str, began: float) -> float:
        seconds = round(time.monotonic() - began, 1)
        self.steps.append({"step": description, "seconds": seconds, "outcome": "done"})
        self._say(f"{description}: done after {seconds:.1f} s")
        return seconds

    def _stopped(self, description: str, seconds: float, cause: str) -> dict[str, Any]:
        self.steps.append({"step": description, "seconds": round(seconds, 1), "outcome": f"cannot succeed ({cause})"})
        self._say(_cut(f"{description}: cannot succeed, stopped after {seconds:.0f} s: {cause}"))
        return {"status": "timeout", "stopped": True, "last": cause,
                "reason": f"{description} cannot succeed: {cause} (seen after {seconds:.0f} s)"}

    def _timed_out(self, description: str, seconds: float, seen: str) -> dict[str, Any]:
        self.steps.append({"step": description, "seconds": round(seconds, 1), "outcome": f"timed out ({seen})"})
        self._say(_cut(f"{description}: NOT done within {seconds:.0f} s ({seen})"))
        return {"status": "timeout", "last": seen,
                "reason": f"{description} did not happen within {seconds:.0f} s; last seen: {seen}"}


def _shape(state: str) -> str:
    """A state without its numbers: "holds ['10.0.0.1']" and a count that grows are one state, not one per poll."""
    return "".join("#" if char.isdigit() else char for char in state)


def _cut(line: str) -> str:
    return line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH - 1] + "…"


class WaitTimeout(Exception):
    """What did not happen before the deadline (or cannot happen); the message names it."""
