"""Scale of the sandbox itself: a 20,000-pod scenario comes up, and its fake API answers 500-pod LIST pages.

    .venv/bin/python bench/bench_sandbox_scale.py [--pods 20000] [--page 500] [--out bench/results/sandbox_scale.json]

The scenario is `healthy` plus the objects bench/bench_scale.py generates (aksid/sandbox/large_cluster.py: nodes with
their NMI pods, namespaces of app pods with managedFields), written as one scenario file (JSON, which the scenario
reader takes as YAML). Measured: `runtime.up` of that file (wall, until the sandbox serves), then every page of
`GET /api/v1/pods?limit=N` through the official `kubernetes` client over the sandbox's HTTPS (request to the last byte
of the body; parsing the page afterwards, not timed). Prints the figures and writes them as JSON. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

from aksid.interrupts import terminate_as_interrupt
from aksid.sandbox.large_cluster import generate_pods
from aksid.sandbox.runtime import down, up
from aksid.sandbox.scenario import load_scenario


def write_scenario(pods: int, directory: Path) -> Path:
    base = load_scenario("healthy").kube_objects
    objects = generate_pods(pods, base)
    added = objects[len(base):]
    path = directory / f"scale-{pods}.yaml"
    path.write_text(json.dumps({"name": f"scale-{pods}", "description": f"healthy plus {len(added)} generated objects",
                                "base": "healthy", "kube": {"add": added}}), encoding="utf-8")
    return path


def read_pages(kubeconfig: Path, limit: int) -> tuple[list[float], int]:
    """Seconds each page took (request sent to body read), and the pods listed."""
    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    times, token, listed = [], None, 0
    while True:
        began = time.perf_counter()
        response = api.list_pod_for_all_namespaces(limit=limit, _continue=token, _preload_content=False)
        body = response.data
        times.append(time.perf_counter() - began)
        page = json.loads(body)
        listed += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return times, listed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sandbox_scale.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aksid-sandbox-scale-") as tmp_name:
        tmp = Path(tmp_name)
        scenario = write_scenario(args.pods, tmp)
        scenario_mb = scenario.stat().st_size / 1e6
        began = time.perf_counter()
        sandbox = up(str(scenario), tmp / "sandbox")
        up_seconds = time.perf_counter() - began
        try:
            times, listed = read_pages(sandbox.state_dir / "kubeconfig", args.page)
        finally:
            down(sandbox.state_dir)
    result = {"pods": listed, "up_s": round(up_seconds, 2), "page_size": args.page, "pages": len(times),
              "page_median_ms": round(statistics.median(times) * 1000, 1), "page_max_ms": round(max(times) * 1000, 1),
              "scenario_mb": round(scenario_mb, 1)}
    print(f"{listed:,} pods: sandbox up in {up_seconds:.1f} s; {len(times)} LIST pages of {args.page}: median "
          f"{result['page_median_ms']} ms, slowest {result['page_max_ms']} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    with terminate_as_interrupt():  # SIGTERM takes Ctrl-C's path, so `finally` stops the sandbox on both
        sys.exit(main())
