"""Run `aksid` as a user would (a subprocess, clean environment) and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.evidence import Unresolved, resolve

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    reports: Path

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.reports / "results.json").read_text(encoding="utf-8"))

    def outcomes(self) -> dict[tuple[str, str], str]:
        return {(c["id"], c["subject"]): c["outcome"] for c in self.results["checks"]}

    def ids_with(self, outcome: str) -> set[str]:
        return {c["id"] for c in self.results["checks"] if c["outcome"] == outcome}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBECONFIG", "AZ_", "ACME_", "AKSID_", "AZURE_", "PYTEST_"))}
    env.update(extra)
    return env


def aksid(*args: str, reports: Path, env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """`python -m aksid ...` in the repo, with a clean environment, never hanging the self-tests."""
    process = subprocess.run(
        [sys.executable, "-m", "aksid", *args], cwd=REPO, env=env or clean_env(),
        capture_output=True, text=True, timeout=timeout,
    )
    return Run(process.returncode, process.stdout, process.stderr, reports)


def pytest_in(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """`python -m pytest ...` as a user types it in `cwd` (any folder: the plugin comes from its entry point)."""
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env or clean_env(),
        capture_output=True, text=True, timeout=timeout,
    )
    return Run(process.returncode, process.stdout, process.stderr, cwd / "reports")


def run_suites(*args: str, reports: Path, env: dict[str, str] | None = None) -> Run:
    return aksid("run", "--aksid-reports-dir", str(reports), "-q", "--tb=short", *args, reports=reports, env=env)


def evidence_not_in_snapshot(run: Run) -> list[str]:
    """Every evidence item whose value differs from what the run's snapshot holds at its source and field."""
    document = json.loads((run.reports / "snapshot.json").read_text(encoding="utf-8"))
    wrong = []
    checked = 0
    for result in run.results["checks"]:
        for item in result["evidence"] or []:
            if "source" not in item:
                continue
            checked += 1
            try:
                actual = resolve(document, item["source"], item["field"])
            except Unresolved as exc:
                wrong.append(f"{result['id']} [{result['subject']}] {item['source']} {item['field']}: {exc}")
                continue
            if actual != item["value"]:
                wrong.append(f"{result['id']} [{result['subject']}] {item['source']} {item['field']}: "
                             f"evidence {item['value']!r}, snapshot {actual!r}")
    assert checked > 50
    return wrong
