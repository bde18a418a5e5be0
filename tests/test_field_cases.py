"""Field cases from the issue trackers (tests/field_cases/, held out while BIND-005/WI-006 were written): each meets
its expectation. A case whose evidence is in a Secret says so in its header and runs with --aksid-read-secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import REPO, aksid

CASES = sorted((REPO / "tests" / "field_cases").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_each_field_case_meets_its_expectation(path: Path, tmp_path: Path) -> None:
    extra = ["--", "--aksid-read-secrets"] if "Needs --aksid-read-secrets" in path.read_text(encoding="utf-8") else []
    run = aksid("demo", "--scenario", str(path), "--reports-dir", str(tmp_path), *extra, reports=tmp_path)
    assert run.code == 0 and "scenario expectation met" in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]
