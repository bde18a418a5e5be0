"""Run static mode on one corpus case as a user would, and compare its verdicts with the table (cases.yaml).

Shared by tests/test_corpus.py and bench/corpus_verdicts.py (which also measures another aksid, e.g. an older
checkout, on the same table: `--python` names its interpreter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent
ORDER = ("error", "failed", "passed", "skipped")  # a check's verdict: the worst over its subjects


@dataclass
class Case:
    name: str
    env: dict[str, str]
    exit: int
    expect: dict[str, dict[str, str]]
    set_aside: bool = False
    manifests: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    arm_template: list[str] = field(default_factory=list)
    arm_parameters: dict[str, Any] | None = None
    usage: str | None = None  # exit 4: what the one sentence must say
    why: str = ""

    @property
    def files(self) -> list[str]:
        return self.manifests + self.plan + self.arm_template


def load_cases(path: Path = CORPUS / "cases.yaml") -> list[Case]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Case(**entry) for entry in document["cases"]]


@dataclass
class Verdicts:
    code: int
    output: str
    checks: dict[str, str]  # check id -> worst outcome over its subjects
    messages: dict[str, list[str]]


def run_case(case: Case, workdir: Path, python: str = sys.executable, timeout: float = 240) -> Verdicts:
    workdir.mkdir(parents=True, exist_ok=True)
    env_file = workdir / "env.sh"
    env_file.write_text("".join(f"export {k}={json.dumps(str(v))}\n" for k, v in case.env.items()), encoding="utf-8")
    args = ["run", "--aksid-mode", "static", "--aksid-env-file", str(env_file), "--aksid-source-root", str(CORPUS),
            "--aksid-reports-dir", str(workdir / "reports"), "-q", "-p", "no:cacheprovider"]
    for option, files in (("--aksid-manifests", case.manifests), ("--aksid-plan", case.plan),
                          ("--aksid-arm-template", case.arm_template)):
        for name in files:
            args += [option, str(CORPUS / name)]
    if case.arm_parameters:
        parameters = workdir / "parameters.json"
        parameters.write_text(json.dumps({"parameters": {k: {"value": v} for k, v in case.arm_parameters.items()}}),
                              encoding="utf-8")
        args += ["--aksid-arm-parameters", str(parameters)]
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("KUBECONFIG", "AZ_", "ACME_", "AKSID_", "AZURE_", "PYTEST_", "IDENTITY_NAME"))}
    process = subprocess.run([python, "-m", "aksid", *args], cwd=workdir, env=environ, capture_output=True, text=True,
                             timeout=timeout)
    checks: dict[str, str] = {}
    messages: dict[str, list[str]] = {}
    results = workdir / "reports" / "results.json"
    if process.returncode in (0, 1) and results.exists():
        for result in json.loads(results.read_text(encoding="utf-8"))["checks"]:
            outcome = result["outcome"]
            known = checks.get(result["id"], "skipped")
            checks[result["id"]] = min(known, outcome, key=lambda o: ORDER.index(o) if o in ORDER else 0)
            messages.setdefault(result["id"], []).append(f"{outcome}: {result['message']}")
    return Verdicts(process.returncode, process.stdout + process.stderr, checks, messages)


def wrong_verdicts(case: Case, verdicts: Verdicts) -> list[str]:
    """Every way the run differs from the table (empty: right)."""
    wrong = []
    if verdicts.code != case.exit:
        wrong.append(f"exit {verdicts.code}, expected {case.exit}")
    if case.exit == 4:
        if case.usage and case.usage not in verdicts.output:
            wrong.append(f"the usage error does not say {case.usage!r}")
        if "Traceback" in verdicts.output or "INTERNALERROR" in verdicts.output:
            wrong.append("a traceback instead of one sentence")
        return wrong
    for check_id, outcome in sorted(verdicts.checks.items()):
        expected = case.expect.get(check_id, {}).get("outcome", "skipped")
        if outcome != expected:
            wrong.append(f"{check_id} {outcome}, expected {expected} ({'; '.join(verdicts.messages[check_id])[:300]})")
    missing = sorted(set(case.expect) - set(verdicts.checks))
    if missing and verdicts.checks:
        wrong.append(f"no result for {', '.join(missing)}")
    return wrong
