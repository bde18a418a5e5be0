"""Benchmark: wall time and peak memory of `aksid demo`, on `healthy` and on a scaled-up cluster.

    .venv/bin/python bench/bench_demo.py [--nodes 300] [--repeat 3]

The scaled scenario adds N Linux nodes, each with an NMI pod and ten app pods, as a patch over
`healthy` (so the checks stay green). Everything runs on loopback, against the sandbox.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from aksid.sandbox.scenario import load_scenario


def scaled_scenario(nodes: int, directory: Path) -> Path:
    base = load_scenario("healthy")
    template_node = next(o for o in base.kube_objects if o["kind"] == "Node")
    nmi_pod = next(o for o in base.kube_objects if o["kind"] == "Pod" and o["metadata"]["name"].startswith("nmi-"))
    app_pod = next(o for o in base.kube_objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == "hello")
    added = []
    for index in range(nodes):
        name = f"aks-bench-{index:05d}"
        node = copy.deepcopy(template_node)
        node["metadata"].update(name=name, uid=None)
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        added.append(node)
        pod = copy.deepcopy(nmi_pod)
        pod["metadata"].update(name=f"nmi-b{index:05d}", uid=None)
        pod["spec"]["nodeName"] = name
        added.append(pod)
        for replica in range(10):
            app = copy.deepcopy(app_pod)
            app["metadata"].update(name=f"bench-{index:05d}-{replica}", uid=None)
            app["spec"]["nodeName"] = name
            added.append(app)
    for obj in added:
        obj["metadata"] = {k: v for k, v in obj["metadata"].items() if v is not None}
    path = directory / f"scaled-{nodes}.yaml"
    path.write_text(yaml.safe_dump({"name": f"scaled-{nodes}", "description": f"healthy plus {nodes} nodes",
                                    "base": "healthy", "kube": {"add": added}}), encoding="utf-8")
    return path


def run_demo(scenario: str, reports: Path) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "aksid", "demo", "--scenario", scenario,
                            "--reports-dir", str(reports)], stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"demo on {scenario} exited {code}")
    return elapsed, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for label, scenario in (("healthy", "healthy"), (f"{args.nodes} nodes", str(scaled_scenario(args.nodes, directory)))):
            times, peak = [], 0
            for _ in range(args.repeat):
                elapsed, rss = run_demo(scenario, directory / "reports")
                times.append(elapsed)
                peak = max(peak, rss)
            print(f"{label:>12}: median {statistics.median(times):.2f} s over {args.repeat} runs "
                  f"(min {min(times):.2f}, max {max(times):.2f}); peak RSS of a child process {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
