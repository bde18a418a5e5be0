"""A Ctrl-C or SIGTERM during a run's long work (collecting, provisioning) ends it the way pytest ends an
interrupted session: its short report, exit code 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType


@contextmanager
def reported_as_interrupted() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt as exc:
        if not _has_entry_without_line(exc):
            raise
        # CPython 3.11 can record a frame interrupted between two statements with no line number (tb_lineno None,
        # seen in urllib's getproxies_environment); pytest's report of the interrupt then subtracts from None and
        # the run dies with pytest's own traceback. A fresh interrupt raised here has a line in every frame; the
        # teardown has already run (its `finally` was inside).
        raise KeyboardInterrupt from None


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
