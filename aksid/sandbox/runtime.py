"""Bring the sandbox up and down: processes started here are stopped by their PIDs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aksid.sandbox.scenario import load_scenario

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class SandboxError(RuntimeError):
    """The sandbox could not start or stop; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    state_dir: Path

    @property
    def profile(self) -> Path:
        return self.state_dir / "profile.yaml"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def request_log(self) -> Path:
        return self.state_dir / "requests.jsonl"

    def requests(self) -> list[dict[str, object]]:
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text(encoding="utf-8").splitlines() if line]


def _pids_file(state_dir: Path) -> Path:
    return state_dir / "pids.json"


def up(scenario: str, state_dir: Path) -> Sandbox:
    """Start the sandbox for `scenario` (built-in name or path) and wait until it serves."""
    state_dir = state_dir.resolve()
    load_scenario(scenario)  # a malformed scenario fails here, in this process, with its message
    if _pids_file(state_dir).exists():
        raise SandboxError(f"a sandbox is already running in {state_dir}; run `aksid sandbox down --state-dir {state_dir}`")
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ready.json", "requests.jsonl"):
        (state_dir / stale).unlink(missing_ok=True)
    reference = scenario if "/" not in scenario and not scenario.endswith((".yaml", ".yml")) else str(Path(scenario).resolve())
    log = (state_dir / "sandbox.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "aksid.sandbox.serve", "--scenario", reference, "--state-dir", str(state_dir)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    _pids_file(state_dir).write_text(json.dumps({"serve": process.pid}), encoding="utf-8")
    deadline = time.monotonic() + START_TIMEOUT
    while not (state_dir / "ready.json").exists():
        if process.poll() is not None:
            down(state_dir)
            tail = (state_dir / "sandbox.log").read_text(encoding="utf-8").strip().splitlines()[-1:]
            raise SandboxError(f"the sandbox server exited during start-up: {' '.join(tail) or 'no output'}")
        if time.monotonic() > deadline:
            down(state_dir)
            raise SandboxError(f"the sandbox did not become ready within {START_TIMEOUT:.0f} s (see {state_dir}/sandbox.log)")
        time.sleep(0.05)
    return Sandbox(state_dir)


def down(state_dir: Path) -> list[int]:
    """Stop every process recorded in the state dir; return the PIDs that were stopped."""
    state_dir = state_dir.resolve()
    pids_file = _pids_file(state_dir)
    if not pids_file.exists():
        return []
    pids = list(json.loads(pids_file.read_text(encoding="utf-8")).values())
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            _reap(pid)
    pids_file.unlink(missing_ok=True)
    (state_dir / "ready.json").unlink(missing_ok=True)
    return pids


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int) -> bool:
    _reap(pid)  # a child of ours lingers as a zombie until reaped
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
