"""Bounded polls with progress lines and a timeline (Terratest's DoWithRetry: the description in every line)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aksid.interrupts import raise_if_interrupted

# An attempt sees what the others found so far; it returns (value, or None while not yet, what it saw).
Attempt = Callable[[Mapping[str, Any]], tuple[Any | None, str]]


@dataclass
class Timeline:
    """Every wait of the run, in order: what, how long, how it ended. Printed as it goes and kept as evidence."""

    deadline: float  # a time.monotonic() value
    progress: Callable[[str], None]
    steps: list[dict[str, Any]] = field(default_factory=list)

    def wait_all(self, attempts: Mapping[str, Attempt], interval: float = 1.0) -> dict[str, dict[str, Any]]:
        """Poll every attempt until each has a value or the deadline passes; independent waits overlap.

        Returns {description: {"status": "ok", "value": ..., "seconds": s} or
        {"status": "timeout", "reason": "... did not happen within N s; last seen: ..."}}.
        """
        began = reported = time.monotonic()
        found: dict[str, Any] = {}
        seen = dict.fromkeys(attempts, "nothing yet")
        results: dict[str, dict[str, Any]] = {}
        while True:
            raise_if_interrupted()  # an attempt may have swallowed the interrupt as an error of a library's
            for description, attempt in attempts.items():
                if description in found:
                    continue
                value, seen[description] = attempt(found)
                if value is not None:
                    found[description] = value
                    results[description] = {"status": "ok", "value": value, "seconds": self._done(description, began)}
            now = time.monotonic()
            pending = [d for d in attempts if d not in found]
            if not pending:
                return results
            if now >= self.deadline:
                for description in pending:
                    results[description] = self._timed_out(description, now - began, seen[description])
                return results
            if now - reported >= 5:
                for description in pending:
                    self.progress(f"waiting for {description}: {now - began:.0f} s ({seen[description]})")
                reported = now
            time.sleep(min(interval, max(0.05, self.deadline - now)))

    def wait(self, description: str, attempt: Callable[[], tuple[Any | None, str]], interval: float = 1.0) -> Any:
        """One wait; raises WaitTimeout with the reason when the deadline passes."""
        result = self.wait_all({description: lambda _found: attempt()}, interval)[description]
        if result["status"] != "ok":
            raise WaitTimeout(result["reason"])
        return result["value"]

    def _done(self, description: str, began: float) -> float:
        seconds = round(time.monotonic() - began, 1)
        self.steps.append({"step": description, "seconds": seconds, "outcome": "done"})
        self.progress(f"{description}: done after {seconds:.1f} s")
        return seconds

    def _timed_out(self, description: str, seconds: float, seen: str) -> dict[str, Any]:
        self.steps.append({"step": description, "seconds": round(seconds, 1), "outcome": f"timed out ({seen})"})
        self.progress(f"{description}: NOT done within {seconds:.0f} s ({seen})")
        return {"status": "timeout", "last": seen,
                "reason": f"{description} did not happen within {seconds:.0f} s; last seen: {seen}"}


class WaitTimeout(Exception):
    """What did not happen before the deadline; the message names it."""
