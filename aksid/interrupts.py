"""Ctrl-C and SIGTERM during a run's long work (collecting, provisioning): the run stops the way pytest stops an
interrupted session (its short report, exit code 2, never a traceback), after every `finally` (the teardown) ran.

Python delivers a signal as a KeyboardInterrupt raised wherever the main thread is, and a library can turn it into
an error of its own there (pydantic-core, building the `kubernetes` client's validator of an API method on its first
call, reports it as a SchemaError). So each signal is also noted: the run still ends as interrupted, and a poll whose
`except Exception` swallowed such an error stops at its next round (`raise_if_interrupted`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

_received: list[int] = []  # the signals that asked this process to stop; once asked, it stays asked


def note_interrupt(number: int) -> None:
    _received.append(number)


def raise_if_interrupted() -> None:
    """At a safe point of a poll: stop if a signal arrived and what it raised was swallowed on the way."""
    if _received:
        raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the Ctrl-C path, so `finally` blocks (the teardown) run on both."""
    with _interrupting(signal.SIGTERM):
        yield


@contextmanager
def reported_as_interrupted() -> Iterator[None]:
    with _interrupting(signal.SIGINT):
        try:
            yield
        except KeyboardInterrupt as exc:
            if not _has_entry_without_line(exc):
                raise
            # CPython 3.11 can record a frame interrupted between two statements with no line number (tb_lineno
            # None, seen in urllib's getproxies_environment); pytest's report of the interrupt then subtracts from
            # None and dies with its own traceback. A fresh interrupt raised here has a line in every frame.
            raise KeyboardInterrupt from None
        except BaseException:
            if not _received:
                raise
            raise KeyboardInterrupt from None  # the interrupt, turned into another error by a library


@contextmanager
def _interrupting(sig: signal.Signals) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def interrupt(number: int, _frame: object) -> None:
        note_interrupt(number)
        raise KeyboardInterrupt

    previous = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        signal.signal(sig, previous)


def _has_entry_without_line(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            if tb.tb_lineno is None:
                return True
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return False
