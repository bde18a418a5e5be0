"""Benchmark: how fast the ACME and edge sandbox starts pebble, issues one certificate and starts nginx.

    .venv/bin/python bench/bench_acme_web.py [--runs 5]

Each run, in a fresh temporary state dir: starts the DNS sandbox for example.test (not timed), then times
start_pebble (one CA, directory answering over HTTPS), issue_certificate (account, order, DNS-01 through
both knot servers, finalize, download) for hello.example.test, and start_nginx on 127.0.0.80 (answering
HTTP); stops everything by PID. Prints the median and the range of each phase. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aksid.sandbox.acme_client import issue_certificate
from aksid.sandbox.dns import start_dns, stop_dns
from aksid.sandbox.pebble import start_pebble, stop_pebble
from aksid.sandbox.web import start_nginx, stop_nginx

ZONE = "example.test"
HOST = "hello.example.test"
ADDRESS = "127.0.0.80"
NAME_SERVERS = ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."]
RECORD_SETS: list[dict[str, Any]] = [
    {"name": "hello", "type": "Microsoft.Network/dnszones/A",
     "properties": {"TTL": 300, "ARecords": [{"ipv4Address": ADDRESS}]}},
]
T = TypeVar("T")


def timed(phase: str, times: dict[str, list[float]], action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    times.setdefault(phase, []).append(time.perf_counter() - started)
    return result


def one_run(state_dir: Path, times: dict[str, list[float]]) -> None:
    sandbox = start_dns(state_dir, ZONE, RECORD_SETS, NAME_SERVERS)
    pids: list[tuple[Callable[[int], None], int]] = []
    try:
        servers = sorted(set(sandbox.server_addresses.values()))
        ca = timed("start pebble", times, lambda: start_pebble(state_dir, "prod", servers[0]))
        pids.append((stop_pebble, ca.pid))
        cert = timed("issue certificate", times, lambda: issue_certificate(
            ca, HOST, dns_servers=servers, update_key=sandbox.update_key, zone=ZONE, email="admin@example.test"))
        web = timed("start nginx", times, lambda: start_nginx(state_dir, ADDRESS, HOST, cert.chain_pem, cert.key_pem))
        pids.append((stop_nginx, web.pid))
    finally:
        for stop, pid in reversed(pids):
            stop(pid)
        stop_dns(sandbox.pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="aksid-bench-acme-web-") as directory:
        for run in range(args.runs):
            one_run(Path(directory) / str(run), times)
    print(f"{args.runs} runs")
    for phase, values in times.items():
        print(f"  {phase:<18} median {statistics.median(values) * 1000:7.1f} ms"
              f"   (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")
    total = [sum(values) for values in zip(*times.values(), strict=True)]
    print(f"  {'total':<18} median {statistics.median(total) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
