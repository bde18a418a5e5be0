"""Soak: provision runs interrupted at seeded random moments must leave nothing with a run label.

    .venv/bin/python bench/bench_provision_interrupts.py [--runs 20] [--seed 11] [--scenario healthy]

One sandbox; first one uninterrupted run measures how long a provision run takes, then each run gets
SIGINT or SIGTERM (alternately) after a random delay in [0, that duration]. After every run the
sandbox's kube API is listed for objects carrying `aksid.io/run`. Prints a table and the totals,
writes them to bench/results/provision_interrupts.json. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

from aksid.sandbox.runtime import down, up

RUN_LABEL = "aksid.io/run"


def labelled(kubeconfig: Path) -> list[str]:
    api = client.ApiClient(config.new_client_from_config(str(kubeconfig)).configuration)
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    found = []
    for lister in (core.list_pod_for_all_namespaces, core.list_service_for_all_namespaces,
                   apps.list_deployment_for_all_namespaces, net.list_ingress_for_all_namespaces, core.list_namespace):
        found += [f"{item.metadata.namespace}/{item.metadata.name}" for item in lister(label_selector=RUN_LABEL).items]
    return found


def start(profile: Path, reports: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "AZ_", "ACME_", "AKSID_", "AZURE_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "aksid", "run", "--aksid-profile", str(profile), "--aksid-mode", "provision",
         "--aksid-reports-dir", str(reports), "-q", "-p", "no:cacheprovider"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenario", default="healthy")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="aksid-bench-") as tmp:
        sandbox = up(args.scenario, Path(tmp) / "sandbox")
        try:
            began = time.monotonic()
            start(sandbox.profile, Path(tmp) / "r0").wait(timeout=300)
            span = time.monotonic() - began
            rows = []
            for index in range(args.runs):
                sig = signal.SIGINT if index % 2 == 0 else signal.SIGTERM
                delay = rng.uniform(0, span)
                process = start(sandbox.profile, Path(tmp) / f"r{index + 1}")
                time.sleep(delay)
                process.send_signal(sig)
                code = process.wait(timeout=300)
                left = labelled(sandbox.kubeconfig)
                rows.append({"run": index + 1, "signal": sig.name, "delay_s": round(delay, 2), "exit": code,
                             "left": left})
                print(f"{index + 1:>3} {sig.name:<8} after {delay:5.2f} s  exit {code:>3}  left {len(left)} {left or ''}")
        finally:
            down(sandbox.state_dir)
    left_total = sum(len(row["left"]) for row in rows)
    print(f"uninterrupted run: {span:.1f} s; {len(rows)} interrupted runs; objects left with a run label: {left_total}")
    out = Path(__file__).parent / "results" / "provision_interrupts.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "span_s": round(span, 2), "runs": rows, "left_total": left_total},
                              indent=1))
    return 1 if left_total else 0


if __name__ == "__main__":
    sys.exit(main())
