"""Benchmark: how fast the DNS sandbox (three knotd) starts, stops and answers.

    .venv/bin/python bench/bench_dns.py [--runs 10] [--queries 200]

Each run starts the DNS sandbox for `healthy`'s zone (example.test) in a fresh temporary state dir,
sends `--queries` non-recursive UDP A queries for hello.example.test to zone server A, one after the
other, and stops it. Prints the median start time, stop time and query round-trip latency, and the
p95 of the latter. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query

from aksid.sandbox.dns import DnsSandbox, start_dns, stop_dns
from aksid.sandbox.scenario import load_scenario

ZONE = "example.test"
HOST = "hello.example.test"


def healthy_dns() -> tuple[list[dict[str, Any]], list[str]]:
    """The record sets and name servers of the zone in `healthy`, as the fake ARM serves them."""
    resources = load_scenario("healthy").azure_resources
    zone = next(r for r in resources if r.get("type", "").lower() == "microsoft.network/dnszones" and r["name"] == ZONE)
    record_sets = [r for r in resources if r.get("type", "").lower().startswith("microsoft.network/dnszones/")]
    return record_sets, zone["properties"]["nameServers"]


def query_latencies(sandbox: DnsSandbox, count: int) -> list[float]:
    ip, port = next(iter(sandbox.server_addresses.values())).split(":")
    query = dns.message.make_query(HOST, "A")
    query.flags &= ~dns.flags.RD
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = dns.query.udp(query, ip, port=int(port), timeout=2)
        latencies.append(time.perf_counter() - started)
        assert response.answer, "the sandbox did not answer the A record"
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    record_sets, name_servers = healthy_dns()
    starts, stops, latencies = [], [], []
    with tempfile.TemporaryDirectory(prefix="aksid-bench-dns-") as directory:
        for run in range(args.runs):
            started = time.perf_counter()
            sandbox = start_dns(Path(directory) / f"run-{run}", ZONE, record_sets, name_servers)
            starts.append(time.perf_counter() - started)
            try:
                latencies += query_latencies(sandbox, args.queries)
            finally:
                started = time.perf_counter()
                stop_dns(sandbox.pids)
                stops.append(time.perf_counter() - started)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"runs: {args.runs}, queries per run: {args.queries} (3 knotd per run)")
    print(f"start: median {statistics.median(starts) * 1000:.1f} ms (min {min(starts) * 1000:.1f}, max {max(starts) * 1000:.1f})")
    print(f"stop:  median {statistics.median(stops) * 1000:.1f} ms")
    print(f"query: median {statistics.median(latencies) * 1e6:.0f} us, p95 {p95 * 1e6:.0f} us (UDP A, zone server A)")


if __name__ == "__main__":
    main()
