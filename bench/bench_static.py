"""Static mode's cost on the tutorial's files and the largest real inputs of the corpus: wall time and peak RSS of whole runs.

    .venv/bin/python bench/bench_static.py [--repeat 5]

For the tutorial's own files (the healthy scenario rendered: env.sh, its manifests, a plan.json), and the largest
Terraform plan and the largest ARM template in tests/corpus/, `aksid run --aksid-mode static` as a user types
it (one process per run, measured by wait4: wall seconds and the process's peak RSS), and a floor:
`python -c "import aksid.collect.static.build"`. Medians of --repeat runs.
Files only, no network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
ENV = ("export AZ_DNS_DOMAIN=example.com\nexport AZ_DNS_RESOURCE_GROUP=rg-dns\nexport AZ_AKS_RESOURCE_GROUP=rg-aks\n"
       "export AZ_AKS_CLUSTER_NAME=aks1\nexport AZ_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000\n")


def measure(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def largest(folder: str) -> Path:
    return max((CORPUS / folder).glob("*.json"), key=lambda p: p.stat().st_size)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aksid-bench-static-") as tmp:
        work = Path(tmp)
        (work / "env.sh").write_text(ENV, encoding="utf-8")
        common = [sys.executable, "-m", "aksid", "run", "--aksid-mode", "static", "--aksid-env-file", "env.sh",
                  "--aksid-reports-dir", "reports", "-q", "-p", "no:cacheprovider"]
        plan, template = largest("terraform"), largest("arm")
        from aksid.sandbox.render import render
        from aksid.sandbox.scenario import load_scenario

        tutorial = work / "tutorial"
        render(load_scenario("healthy"), tutorial)
        rows = {
            "floor (import the static collector)": [sys.executable, "-c", "import aksid.collect.static.build"],
            "the tutorial's files (env.sh, manifests, plan.json)": [
                *common[:6], "--aksid-env-file", str(tutorial / "env.sh"), "--aksid-manifests",
                str(tutorial / "manifests"), "--aksid-plan", str(tutorial / "plan.json"), "--aksid-source-root",
                str(tutorial), *common[8:]],
            f"plan {plan.name} ({plan.stat().st_size // 1024} KB)": [*common, "--aksid-plan", str(plan)],
            f"template {template.name} ({template.stat().st_size // 1024} KB)": [*common, "--aksid-arm-template",
                                                                                 str(template)],
        }
        print("| run | wall s (median) | peak RSS MB (median) | exit |\n|---|---|---|---|")
        for label, command in rows.items():
            measure(command, work)  # warm-up: bytecode caches
            runs = [measure(command, work) for _ in range(args.repeat)]
            print(f"| {label} | {statistics.median(r[0] for r in runs):.2f} | "
                  f"{statistics.median(r[1] for r in runs):.0f} | {runs[-1][2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
