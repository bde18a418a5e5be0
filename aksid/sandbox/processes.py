"""The sandbox's own processes (knotd, pebble, nginx, the API server process): start, find, stop.

Every server runs in its own session, so a Ctrl-C to a test run does not reach it: it is stopped by PID,
from the PID record (`pids.json`) when `down` runs in another process. Every one is started the same way,
by `start_daemons`: launched, then polled until its readiness probe passes, failing in one sentence that names
it, why (it exited, or was not ready in time) and how its log ends. Ports are picked at random below
Linux's ephemeral range and probed; a server can still lose its port to another process between the probe
and its own bind, which its start-up wait reports as `PortTaken` and `start_on_free_ports` retries.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

# Below Linux's ephemeral range (32768-60999), so the kernel never hands "our" port to an outgoing socket.
PORT_RANGE = (20000, 32767)
BIND_ATTEMPTS = 5
STOP_TIMEOUT = 3.0
KILL_TIMEOUT = 1.0
POLL_INTERVAL = 0.01
LOG_TAIL_LINES = 3  # how much of a daemon's log a start-up failure quotes

# Processes started in this process, by PID: Popen reaps them (no zombie outlives stop) and never warns.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

Ports = TypeVar("Ports")
Started = TypeVar("Started")


class PortTaken(Exception):
    """Another process bound a chosen port between our probe and the server's bind: pick others."""


class NoFreePorts(RuntimeError):
    """No free port was found in PORT_RANGE; the message names the addresses."""


# --- starting -----------------------------------------------------------------------------------


def launch_process(argv: list[str], *, log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                   append: bool = True) -> subprocess.Popen[bytes]:
    """Start a server in its own session, its output into `log`; `alive` and `stop_process` know it as ours."""
    with log.open("ab" if append else "wb") as handle:
        process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                   env=dict(env) if env is not None else None, start_new_session=True)
    _CHILDREN[process.pid] = process
    return process


class Launcher:
    """`launch_process` for one start-up attempt, remembering what it started so a failed attempt stops
    exactly its own processes (two pebbles start at once in two threads)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def __call__(self, argv: list[str], *, log: Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = launch_process(argv, log=log, cwd=cwd, env=env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        stop_processes([process.pid for process in self.processes])
        self.processes.clear()


class Launch(Protocol):
    """How a daemon is launched: `launch_process`, a `Launcher`, or a wrapper recording the PID at once."""

    def __call__(self, argv: list[str], *, log: Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]: ...


@dataclass(frozen=True)
class Daemon:
    """One server for `start_daemons`: how to run it, when it is ready, and what its failure quotes."""

    name: str  # as the failure names it: "pebble", "knotd for the a server (127.0.0.54:25202)"
    argv: list[str]
    log: Path  # its stdout and stderr
    ready: Callable[[], bool]  # True once it serves; may raise when it never will (knotd refusing its zone)
    ready_when: str  # what `ready` waits for, in the failure's words: "https://127.0.0.1:PORT/dir answers 200"
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    port_taken: str | None = None  # what its logs say when it lost its port to a race: PortTaken, to retry
    logs: tuple[Path, ...] = ()  # the logs a failure reads (default: `log`), e.g. nginx's own error.log first
    cause: Callable[[str], str] | None = None  # the line of those logs naming the cause, quoted before their end

    def log_text(self) -> str:
        return "\n".join(_read_text(path) for path in self.logs or (self.log,))


def start_daemons(
    *daemons: Daemon,
    error: Callable[[str], Exception],
    timeout: float,
    deadline: float | None = None,
    launch: Launch = launch_process,
    interval: float = POLL_INTERVAL,
) -> list[subprocess.Popen[bytes]]:
    """Launch every daemon (all at once: their start-ups overlap), then poll until each one's `ready` passes.

    A daemon that exits first fails with `error("<name> exited during start-up (code N): ...")`, or PortTaken when
    its logs say `port_taken`; one still not ready at the deadline (`timeout` from now, or the `deadline` of a start
    retried on other ports) with `error("<name> was not ready within S s (...)")`; both quote the end of its log.
    What was launched is not stopped here: `launch` decides who stops it, by PID (a `Launcher` in
    `start_on_free_ports`, or the PID record).
    """
    deadline = time.monotonic() + timeout if deadline is None else deadline
    processes = [launch(daemon.argv, log=daemon.log, cwd=daemon.cwd, env=daemon.env) for daemon in daemons]
    pending = list(zip(daemons, processes, strict=True))
    while pending:
        pending = [(daemon, process) for daemon, process in pending if not _ready(daemon, process, error)]
        if pending and time.monotonic() > deadline:
            daemon = pending[0][0]
            raise error(f"{daemon.name} was not ready within {timeout:g} s ({daemon.ready_when}): {_ending(daemon)}")
        if pending:
            time.sleep(interval)
    return processes


def _ready(daemon: Daemon, process: subprocess.Popen[bytes], error: Callable[[str], Exception]) -> bool:
    code = process.poll()
    if code is not None:
        if daemon.port_taken is not None and daemon.port_taken in daemon.log_text():
            raise PortTaken()
        raise error(f"{daemon.name} exited during start-up (code {code}): {_ending(daemon)}")
    return daemon.ready()


def _ending(daemon: Daemon) -> str:
    """How its logs end; led by the line naming the cause, when the daemon knows it and it is not among them."""
    text = daemon.log_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    where = ", ".join(str(path) for path in daemon.logs or (daemon.log,))
    if not lines:
        return f"nothing in {where}"
    tail = lines[-LOG_TAIL_LINES:]
    ending = f"{where} ends: {' | '.join(tail)}"
    cause = daemon.cause(text) if daemon.cause is not None else ""
    return f"{cause}; {ending}" if cause and not any(cause in line for line in tail) else ending


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def start_on_free_ports(
    pick: Callable[[], Ports],
    start: Callable[[Ports, Launcher], Started],
    *,
    error: Callable[[str], Exception],
    exhausted: str,
    attempts: int = BIND_ATTEMPTS,
) -> Started:
    """pick port(s) -> launch and wait until ready (`start`, launching through the Launcher it is given).

    When `start` raises PortTaken, what it launched is stopped and other ports are tried, `attempts` times in
    all; then `error(exhausted)` is raised. Any other failure also stops what was launched, and propagates:
    a failed start never leaves a process behind. NoFreePorts from `pick` becomes `error(its message)`.
    """
    for attempt in range(1, attempts + 1):
        try:
            ports = pick()
        except NoFreePorts as exc:
            raise error(str(exc)) from None
        launcher = Launcher()
        try:
            return start(ports, launcher)
        except PortTaken:
            launcher.stop()
            if attempt == attempts:
                raise error(exhausted) from None
        except BaseException:
            launcher.stop()
            raise
    raise AssertionError("unreachable")


def free_ports(addresses: Sequence[str], count: int = 1, *, udp: bool = False) -> list[int]:
    """`count` distinct ports free on every address (TCP, and UDP too with `udp`); the server may still
    lose one to a race (see PortTaken)."""
    rng = random.SystemRandom()
    ports: list[int] = []
    for _ in range(500):
        port = rng.randint(*PORT_RANGE)
        if port not in ports and all(_bindable(address, port, udp) for address in addresses):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise NoFreePorts(f"no {count} free port(s) in {PORT_RANGE[0]}-{PORT_RANGE[1]} on {', '.join(addresses)}")


def _bindable(address: str, port: int, udp: bool) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


# --- the PID record -----------------------------------------------------------------------------


class PidRecord:
    """`pids.json`: every process of one sandbox by role (`knotd-a`, `nginx`, `serve`...), rewritten as soon
    as each PID exists, so that `down` (maybe in another process) finds whatever had started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pids: dict[str, int] = {}

    def exists(self) -> bool:
        return self.path.exists()

    def add(self, name: str, pid: int) -> None:
        self._pids[name] = pid
        self.path.write_text(json.dumps(self._pids), encoding="utf-8")

    def read(self) -> dict[str, int] | None:
        """The recorded PIDs by role, or None when there is no record."""
        if not self.path.exists():
            return None
        return {str(name): int(pid) for name, pid in json.loads(self.path.read_text(encoding="utf-8")).items()}

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# --- liveness and signals -----------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether `pid` still runs. Our own children are reaped on the way: a zombie counts as gone."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    if reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def reap(pid: int) -> bool:
    """Collect `pid`'s exit status if it is an exited child of ours; True when it was collected."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child (another process started it), or already reaped
    return reaped == pid


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Signal `pid`; one that is already gone is no error (stopping is idempotent)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- stopping -----------------------------------------------------------------------------------


def stop_process(pid: int, timeout: float = STOP_TIMEOUT, owned: Owned | None = None) -> None:
    """SIGTERM, wait, then SIGKILL; reap it when it is our child."""
    stop_processes([pid], timeout, owned)


def stop_processes(pids: Iterable[int], timeout: float = STOP_TIMEOUT, owned: Owned | None = None) -> None:
    """SIGTERM them all at once (their shutdowns overlap), then as `wait_then_kill`."""
    pids = [pid for pid in pids if owned is None or owned(pid)]
    for pid in pids:
        send_signal(pid, signal.SIGTERM)
    wait_then_kill(pids, timeout, owned=owned)


def wait_then_kill(pids: Iterable[int], timeout: float, interval: float = POLL_INTERVAL,
                   owned: Owned | None = None) -> None:
    """Wait for each (one deadline for all), SIGKILL what is left and wait for that; reap our children. With
    `owned`, a PID that no longer passes it counts as gone: it exited and the number now names someone else's."""
    deadline = time.monotonic() + timeout

    def running(pid: int) -> bool:
        return alive(pid) and (owned is None or owned(pid))

    for pid in pids:
        while running(pid) and time.monotonic() < deadline:
            time.sleep(interval)
        if running(pid):
            send_signal(pid, signal.SIGKILL)
            _wait_gone(pid, time.monotonic() + KILL_TIMEOUT, interval)
        if not alive(pid):
            _CHILDREN.pop(pid, None)


# A process recorded earlier is still the one we started: with PIDs only 15 bits wide (pid_max 32768 here), a test
# session recycles them within minutes, and a stale record must never signal a stranger (a pytest worker was).
Owned = Callable[[int], bool]


def started_from(directory: Path | str) -> Owned:
    """Our own live child, or a process with an argument naming something under `directory` or running in it
    (what a sandbox starts: knotd, pebble and serve name their state dir, nginx and its workers run in it)."""
    text = str(directory).encode()

    def owned(pid: int) -> bool:
        child = _CHILDREN.get(pid)
        if child is not None:
            return child.poll() is None
        entry = Path(f"/proc/{pid}")
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return any(text in arg for arg in argv) or _cwd(entry).encode().startswith(text)
    return owned


def _wait_gone(pid: int, deadline: float, interval: float) -> None:
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(interval)


# --- finding processes through /proc ------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (nginx's workers: a KILLed master would orphan them)."""
    found = []
    for child, entry in _proc_entries():
        try:
            fields = _stat_fields(entry)
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(child)
    return found


def command_line(pid: int) -> list[str]:
    """The arguments `pid` was started with; [] when it is gone (or a zombie, whose command line is empty)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    args = raw.split(b"\0")
    if args[-1] == b"":
        args.pop()  # the terminating NUL (a process that rewrote its command line may have none)
    return [arg.decode(errors="replace") for arg in args]


def processes_under(directory: Path | str, *, program: str | None = None) -> list[int]:
    """Live processes (no zombies) with an argument naming something under `directory`, or running in it
    (nginx's workers rewrite their command line); with `program`, only those whose argv[0] ends with it.
    What tests and people use to see what a sandbox started, or left behind."""
    text = str(directory)
    found = []
    for pid, entry in _proc_entries():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = _stat_fields(entry)[0]
        except OSError:
            continue
        if state == "Z" or (program is not None and not argv[0].endswith(program.encode())):
            continue
        if any(text.encode() in arg for arg in argv) or _cwd(entry).startswith(text):
            found.append(pid)
    return found


def _proc_entries() -> Iterator[tuple[int, Path]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name), entry


def _stat_fields(entry: Path) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): state, ppid, ..."""
    return (entry / "stat").read_text().rpartition(")")[2].split()


def _cwd(entry: Path) -> str:
    try:
        return os.readlink(entry / "cwd")
    except OSError:
        return ""  # another user's process, or gone
