"""Self-test fixtures: sandboxes started on demand and always stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aksid.sandbox.runtime import Sandbox, down, up


@pytest.fixture
def sandbox_for(tmp_path: Path) -> Iterator[Any]:
    """Start sandboxes on demand; every one is stopped by PID at teardown."""
    started: list[Path] = []

    def start(scenario: str = "healthy") -> Sandbox:
        state_dir = tmp_path / f"sandbox-{len(started)}"
        started.append(state_dir)
        return up(scenario, state_dir)

    yield start
    for state_dir in started:
        down(state_dir)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One `healthy` sandbox shared by a module's tests (a module may define its own `healthy` instead)."""
    sandbox = up("healthy", tmp_path_factory.mktemp("sandbox"))
    yield sandbox
    down(sandbox.state_dir)


@pytest.fixture(scope="session")
def base_reports(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reports folder (snapshot.json, results.json) of a demo run of a base scenario, run once per session
    (per xdist worker) and mode: `aksid demo --scenario <scenario> [--mode provision]`. Read it, never write it."""
    from .harness import aksid

    runs: dict[tuple[str, str], Path] = {}

    def reports(scenario: str = "healthy", mode: str = "attach") -> Path:
        if (scenario, mode) not in runs:
            folder = tmp_path_factory.mktemp(f"base-{scenario}" + ("" if mode == "attach" else f"-{mode}"))
            run = aksid("demo", "--scenario", scenario, "--reports-dir", str(folder),
                        *([] if mode == "attach" else ["--mode", mode]), reports=folder)
            assert run.code == 0, run.stdout + run.stderr
            runs[(scenario, mode)] = folder
        return runs[(scenario, mode)]

    return reports
