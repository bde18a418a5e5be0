"""Bring the sandbox up and down: processes started here are stopped by their PIDs.

`up` starts, in this order, the real DNS servers (three knotd, see dns.py: they start in tens of
milliseconds and a failure is raised here, in the caller's process) and the server process for the
fake kube API and ARM (serve.py), and records every PID in `pids.json` as soon as it exists;
`down` stops every PID recorded there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aksid.sandbox.dns import DnsSandbox, DnsSandboxError, start_dns, stop_dns
from aksid.sandbox.scenario import Scenario, load_scenario

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


def _write_pids(state_dir: Path, pids: dict[str, int]) -> None:
    _pids_file(state_dir).write_text(json.dumps(pids), encoding="utf-8")


def _knotd_role(pid: int, index: int) -> str:
    """`knotd-parent`, `knotd-a`, `knotd-b` (from the config path on its command line), for people and tests."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"knotd-{index}"
    config = next((arg.decode(errors="replace") for arg in argv if arg.endswith(b"/knot.conf")), "")
    return f"knotd-{Path(config).parent.name}" if config else f"knotd-{index}"


def _start_dns(scenario: Scenario, state_dir: Path) -> DnsSandbox | None:
    """knotd for the scenario's zone (from its Azure record sets) and its parent; None when Azure has no such zone."""
    found = scenario.dns_zone()
    if found is None:
        return None
    zone, record_sets = found
    name_servers = [str(name) for name in (zone.get("properties") or {}).get("nameServers") or []]
    if not name_servers:
        return None  # nothing would delegate to or serve the zone; the DNS checks report it from the ARM data
    try:
        return start_dns(state_dir, str(scenario.target["domain"]), record_sets, name_servers, scenario.dns or None)
    except DnsSandboxError as exc:
        raise SandboxError(f"the DNS sandbox for scenario {scenario.path} could not start: {exc}") from None


def up(scenario: str, state_dir: Path) -> Sandbox:
    """Start the sandbox for `scenario` (built-in name or path) and wait until it serves."""
    state_dir = state_dir.resolve()
    loaded = load_scenario(scenario)  # a malformed scenario fails here, in this process, with its message
    if _pids_file(state_dir).exists():
        raise SandboxError(f"a sandbox is already running in {state_dir}; run `aksid sandbox down --state-dir {state_dir}`")
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ready.json", "requests.jsonl"):
        (state_dir / stale).unlink(missing_ok=True)
    dns = _start_dns(loaded, state_dir)
    pids: dict[str, int] = {}
    endpoints: dict[str, object] = {}
    if dns is not None:
        pids = {_knotd_role(pid, index): pid for index, pid in enumerate(dns.pids)}
        endpoints = {"parent_servers": dns.parent_servers, "server_addresses": dns.server_addresses}
        _write_pids(state_dir, pids)
    reference = scenario if "/" not in scenario and not scenario.endswith((".yaml", ".yml")) else str(Path(scenario).resolve())
    log = (state_dir / "sandbox.log").open("w", encoding="utf-8")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "aksid.sandbox.serve", "--scenario", reference, "--state-dir", str(state_dir),
             "--dns-endpoints", json.dumps(endpoints)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    except OSError:
        down(state_dir)
        raise
    finally:
        log.close()
    _write_pids(state_dir, {"serve": process.pid, **pids})
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
    recorded: dict[str, int] = json.loads(pids_file.read_text(encoding="utf-8"))
    pids = list(recorded.values())
    knotds = [pid for name, pid in recorded.items() if name.startswith("knotd")]
    others = [pid for pid in pids if pid not in knotds]
    for pid in others:
        _signal(pid, signal.SIGTERM)
    stop_dns(knotds)  # TERM, wait, KILL; reaps them when they are our children (up ran in this process)
    deadline = time.monotonic() + STOP_TIMEOUT
    for pid in others:
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
