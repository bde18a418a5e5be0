"""One collection's time and retry budget, shared by every collector thread.

A nightly run must not turn red for one hiccup, and must not hang past its deadline. The libraries
retry what they can (urllib3's `Retry` for the Kubernetes client, azure-core's `RetryPolicy` for ARM,
see retry_policies.py); what they cannot see (a DNS query over UDP, a TLS handshake, a LIST page whose
body is cut short) goes through `retrying` here. Both draw on the same `Budget`: one deadline for the
whole collection, a cap on a server's `Retry-After`, and a record of every retry for the summary.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

ATTEMPTS = 4  # the first try and three retries, as kubectl (client-go) and the Azure CLI do for reads
BACKOFF_BASE = 0.25  # seconds; doubled per retry, with full jitter, capped by BACKOFF_MAX
BACKOFF_MAX = 8.0


class RetryAfterTooLong(Exception):
    """A server asked to wait longer than the cap: give up at once rather than sleep through the night."""

    def __init__(self, who: str, seconds: float, cap: float) -> None:
        super().__init__(f"{who} asked to retry after {seconds:g} s (more than the {cap:g} s this run waits)")


class DeadlinePassed(Exception):
    """The collection's deadline passed before this evidence could be read."""


class GaveUp(Exception):
    """A retryable failure that lasted: the last error, after how many attempts."""

    def __init__(self, last: BaseException, attempts: int, why: str = "") -> None:
        super().__init__(f"{why or last} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class Retried:
    family: str  # kube, arm, dns, tls
    endpoint: str  # a path without its query, a server address, host:port
    cause: str  # "503", "429", "reset", "timeout", "truncated body"


class Budget:
    """The deadline (monotonic), the per-request timeout and the Retry-After cap of one collection."""

    def __init__(self, seconds: float, *, request_timeout: float = 30.0, retry_after_max: float = 30.0,
                 attempts: int = ATTEMPTS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.request_timeout = request_timeout
        self.retry_after_max = retry_after_max
        self.attempts = attempts
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + seconds
        self._lock = threading.Lock()
        self._retries: dict[Retried, int] = {}

    @classmethod
    def for_target(cls, target: Any) -> Budget:
        """A collection's budget from the target's settings (collect_timeout, request_timeout, retry_after_max)."""
        return cls(target.collect_timeout_seconds, request_timeout=target.request_timeout_seconds,
                   retry_after_max=target.retry_after_max_seconds)

    @classmethod
    def for_probes(cls, timeout: float) -> Budget:
        """A collector called on its own (provision mode's DNS and TLS reads): its attempts, each within `timeout`."""
        return cls(max(timeout * 2 * ATTEMPTS, 30), request_timeout=timeout)

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def timeout(self, wanted: float | None = None) -> float:
        """A per-request timeout that never runs past the deadline (at least a few ms, so a call can fail fast)."""
        return max(0.01, min(wanted if wanted is not None else self.request_timeout, self.remaining()))

    def backoff(self, retry: int) -> float:
        """Exponential backoff with full jitter (AWS's and azure-core's recipe), never past the deadline."""
        return min(random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2 ** retry)), max(0.0, self.remaining()))

    def check_retry_after(self, who: str, seconds: float) -> None:
        if seconds > self.retry_after_max:
            raise RetryAfterTooLong(who, seconds, self.retry_after_max)
        if seconds > self.remaining():
            raise DeadlinePassed(f"{who} asked to retry after {seconds:g} s, past the collection deadline "
                                 f"({self.seconds:g} s)")

    def record(self, family: str, endpoint: str, cause: str) -> None:
        key = Retried(family, endpoint, cause)
        with self._lock:
            self._retries[key] = self._retries.get(key, 0) + 1

    def retries_of_family(self, family: str) -> int:
        with self._lock:
            return sum(n for key, n in self._retries.items() if key.family == family)

    def summary(self) -> dict[str, Any]:
        """What the snapshot keeps: the budget and every retry made (no secrets: paths and addresses only)."""
        with self._lock:
            retries = [{"family": k.family, "endpoint": k.endpoint, "cause": k.cause, "count": n}
                       for k, n in sorted(self._retries.items(), key=lambda item: (item[0].family, item[0].endpoint))]
        return {"deadline_seconds": self.seconds, "elapsed_seconds": round(self._clock() - self.started, 3),
                "retries": retries}


def retrying(call: Callable[[], T], *, budget: Budget, family: str, endpoint: str,
             cause_of: Callable[[BaseException], str | None]) -> T:
    """`call()` again after a retryable failure (`cause_of(exc)` names it; None means not retryable), with
    backoff, within the budget's attempts and deadline. Raises GaveUp with the last error when it lasts."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - cause_of decides; anything else is re-raised as it was
            cause = cause_of(exc)
            if cause is None:
                raise
            if attempt >= budget.attempts:
                raise GaveUp(exc, attempt) from exc
            pause = budget.backoff(attempt - 1)
            if budget.remaining() <= pause:
                raise GaveUp(exc, attempt, f"{exc}; the collection deadline ({budget.seconds:g} s) passed") from exc
            budget.record(family, endpoint, cause)
            time.sleep(pause)
