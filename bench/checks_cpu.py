"""A pytest plugin for bench_scale.py: the CPU seconds each process of a run spends in the checks phase (from the
first test it starts or hears of, to the end of its session), one JSON line per process appended to the file named
by $AKSID_BENCH_CHECKS_CPU. With -n the controller's share is xdist handing out the tests and taking their reports."""

from __future__ import annotations

import json
import os
import time

_first_test: list[float] = []


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    if not _first_test:
        _first_test.append(time.process_time())


def pytest_sessionfinish(session) -> None:  # noqa: ANN001 - a pytest.Session
    path = os.environ.get("AKSID_BENCH_CHECKS_CPU")
    if not path:
        return
    role = "worker" if hasattr(session.config, "workerinput") else "controller"
    cpu = time.process_time() - _first_test[0] if _first_test else 0.0
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"role": role, "cpu": round(cpu, 3)}) + "\n")
