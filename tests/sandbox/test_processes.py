"""`start_daemons`, the one start-and-wait of every sandbox daemon: ready, exited, not ready in time, port lost."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from aksid.sandbox.processes import Daemon, Launcher, PortTaken, alive, start_daemons


class Failed(RuntimeError):
    pass


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_every_daemon_is_launched_at_once_and_returned_once_ready(tmp_path: Path) -> None:
    launch = Launcher()
    flags = [tmp_path / "one.ready", tmp_path / "two.ready"]
    daemons = [Daemon(f"daemon {index}", python(f"import pathlib, time; pathlib.Path({str(flag)!r}).touch(); time.sleep(60)"),
                      log=tmp_path / f"{index}.log", ready=flag.exists, ready_when=f"it touches {flag}")
               for index, flag in enumerate(flags)]
    try:
        processes = start_daemons(*daemons, error=Failed, timeout=20, launch=launch)
        assert [p.pid for p in processes] == [p.pid for p in launch.processes]
        assert all(alive(p.pid) for p in processes)
    finally:
        launch.stop()
    assert not any(alive(p.pid) for p in processes)


def test_a_daemon_that_exits_fails_with_its_code_and_the_end_of_its_log(tmp_path: Path) -> None:
    launch = Launcher()
    code = "print('starting'); print('error: the cause'); print('one'); print('two'); print('three'); raise SystemExit(3)"
    daemon = Daemon("the test daemon", python(code), log=tmp_path / "d.log", ready=lambda: False, ready_when="never",
                    cause=lambda log: next((line for line in log.splitlines() if line.startswith("error:")), ""))
    try:
        with pytest.raises(Failed) as failure:
            start_daemons(daemon, error=Failed, timeout=20, launch=launch)
    finally:
        launch.stop()
    assert str(failure.value) == (f"the test daemon exited during start-up (code 3): error: the cause; "
                                  f"{tmp_path / 'd.log'} ends: one | two | three")


def test_a_daemon_not_ready_in_time_fails_naming_what_it_waited_for(tmp_path: Path) -> None:
    launch = Launcher()
    daemon = Daemon("the slow daemon", python("print('listening', flush=True); import time; time.sleep(60)"),
                    log=tmp_path / "d.log", ready=lambda: False, ready_when="it answers on port 1")
    started = time.monotonic()
    try:
        with pytest.raises(Failed) as failure:
            start_daemons(daemon, error=Failed, timeout=0.5, launch=launch)
    finally:
        launch.stop()
    assert time.monotonic() - started < 10
    assert str(failure.value).startswith("the slow daemon was not ready within 0.5 s (it answers on port 1): ")


def test_a_daemon_whose_log_says_it_lost_its_port_raises_port_taken(tmp_path: Path) -> None:
    launch = Launcher()
    daemon = Daemon("d", python("print('bind: address already in use'); raise SystemExit(1)"), log=tmp_path / "d.log",
                    ready=lambda: False, ready_when="never", port_taken="address already in use")
    try:
        with pytest.raises(PortTaken):
            start_daemons(daemon, error=Failed, timeout=20, launch=launch)
    finally:
        launch.stop()


def test_a_probe_that_knows_it_never_will_fails_at_once(tmp_path: Path) -> None:
    def refuses() -> bool:
        raise Failed("the zone was refused")

    launch = Launcher()
    daemon = Daemon("d", python("import time; time.sleep(60)"), log=tmp_path / "d.log", ready=refuses, ready_when="-")
    try:
        with pytest.raises(Failed, match="the zone was refused"):
            start_daemons(daemon, error=Failed, timeout=20, launch=launch)
    finally:
        launch.stop()


def test_down_never_signals_a_recorded_pid_that_now_names_someone_else(tmp_path: Path) -> None:
    """PIDs are recycled within minutes (pid_max 32768): a sandbox's record that outlived its processes must not
    stop whoever has the number now (a pytest worker died of it), while what the sandbox started still stops."""
    import json
    import subprocess
    import sys

    from aksid.sandbox.processes import alive, launch_process
    from aksid.sandbox.runtime import down

    state = tmp_path / "state"
    state.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # runs from elsewhere
    ours = launch_process([sys.executable, "-c", "import time, sys; time.sleep(60)", str(state / "serve")],
                          log=state / "serve.log")
    try:
        (state / "pids.json").write_text(json.dumps({"serve": ours.pid, "knotd-a": stranger.pid}), encoding="utf-8")
        down(state)
        assert stranger.poll() is None, "down() signalled a process it did not start"
        assert not alive(ours.pid), "down() left the sandbox's own process running"
    finally:
        stranger.kill()
        stranger.wait()
