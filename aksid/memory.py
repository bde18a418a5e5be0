"""The cyclic garbage collector and a large snapshot.

Collecting or loading a 20,000-pod snapshot allocates millions of small dicts and lists that all live until
the run ends and hold no reference cycles. With the collector on, every full collection re-scans all of
them again: at that size it costs more than the parsing itself (json.loads of a 70 MB snapshot: 0.6 s
with the collector paused, 2.6-5 s with it running)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """No cyclic collection while large acyclic trees are built (they hold no cycles to find); the collector is
    restored as it was after. `freeze`: what was built lives on, so later collections skip it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def long_lived_allocations() -> contextlib.AbstractContextManager[None]:
    """Pause the collector while the evidence is built or loaded, then freeze it: it lives to the run's end."""
    return gc_paused(freeze=True)


_KEPT: list[object] = []


def keep_until_exit(obj: object) -> None:
    """Let `obj` (a worker's evidence) outlive the interpreter's teardown: a process about to exit would otherwise free
    its millions of objects one by one (0.25 s of CPU at 20,000 pods, beside the controller still writing the snapshot).
    Held by a frozen reference cycle, which the last collection at exit leaves alone; the OS takes the memory back.
    Only for processes that exit when the run ends (xdist workers): anywhere else it would leak."""
    _KEPT.append(obj)
    if len(_KEPT) == 1:
        holder = [_KEPT]
        _KEPT.append(holder)  # the cycle: _KEPT -> holder -> _KEPT, kept when the module's globals are cleared
    gc.freeze()
