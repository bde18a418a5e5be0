"""Changing a running sandbox's faults without restarting it (the fault matrix reuses one sandbox).

The test side writes `faults.json` in the state dir (`set_faults`); the sandbox process watches it
(`FaultWatcher`), swaps the faults of its fake Kubernetes API and fake ARM, and writes the generation it
applied to `faults.applied`, which `set_faults` waits for. A scenario's own faults are replaced.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAULTS_FILE = "faults.json"
APPLIED_FILE = "faults.applied"
_POLL_SECONDS = 0.05


def set_faults(state_dir: Path, *, kube: list[dict[str, Any]] | None = None, arm: list[dict[str, Any]] | None = None,
               wait: float = 10.0) -> None:
    """Replace the running sandbox's kube and ARM faults; returns once the sandbox applied them."""
    applied = state_dir / APPLIED_FILE
    previous = _read_json(applied) or {}
    generation = int(previous.get("generation", 0)) + 1
    document = {"generation": generation, "kube": kube or [], "arm": arm or []}
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".faults-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(tmp, state_dir / FAULTS_FILE)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = _read_json(applied) or {}
        if state.get("generation") == generation:
            if state.get("error"):
                raise ValueError(f"the sandbox refused the faults: {state['error']}")
            return
        time.sleep(_POLL_SECONDS)
    raise TimeoutError(f"the sandbox in {state_dir} did not apply the faults within {wait:g} s")


class FaultWatcher:
    """In the sandbox process: applies `faults.json` whenever it changes."""

    def __init__(self, state_dir: Path, apply_kube: Callable[[list[dict[str, Any]]], None],
                 apply_arm: Callable[[list[dict[str, Any]]], None]) -> None:
        self.path = state_dir / FAULTS_FILE
        self.applied = state_dir / APPLIED_FILE
        self._apply = (apply_kube, apply_arm)
        self._stop = threading.Event()
        self._seen: float | None = None
        self._thread = threading.Thread(target=self._run, name="aksid-fault-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            try:
                mtime = self.path.stat().st_mtime_ns
            except OSError:
                continue
            if mtime == self._seen:
                continue
            self._seen = mtime
            document = _read_json(self.path) or {}
            result: dict[str, Any] = {"generation": document.get("generation")}
            try:
                self._apply[0](list(document.get("kube") or []))
                self._apply[1](list(document.get("arm") or []))
            except (ValueError, TypeError) as exc:
                result["error"] = str(exc)
            self.applied.write_text(json.dumps(result), encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
