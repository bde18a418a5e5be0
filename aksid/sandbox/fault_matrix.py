"""The fault matrix: each endpoint family x each transient fault, against one running sandbox.

`FaultBench` starts one `healthy` sandbox, puts fault proxies in front of one zone name server and of
the demo host's HTTPS and HTTP ports, and writes `profile-faults.yaml` pointing the suite at them.
`bench.stage(cell, times)` arms a fault for the next `times` requests (None: every request) and
`bench.run()` runs `aksid run` as a user would. Used by tests/test_resilience.py (the matrix as a test)
and bench/bench_faults.py (the table with timings).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import yaml

from aksid.sandbox.fault_control import set_faults
from aksid.sandbox.fault_proxies import DnsFaultProxy, TcpFaultProxy
from aksid.sandbox.runtime import Sandbox, down, up

# Short budgets, so an "always" cell ends in seconds: per request, per DNS answer, per TLS connection, in all.
RUN_SETTINGS = ("request_timeout=1", "dns_timeout=1", "tls_timeout=1")
DEADLINE_SECONDS = 12
KUBE_PATH = "/api/v1/pods"
ARM_MATCH = "roleAssignments"
HTTP_STATUS_FAULTS = {
    "429 + Retry-After: 1": {"status": 429, "headers": {"Retry-After": "1"}},
    "500": {"status": 500},
    "503": {"status": 503},
    "reset": {"kind": "reset"},
    "timeout": {"kind": "hang"},
    "slow body": {"kind": "stall_body"},
    "truncated JSON": {"kind": "truncate_body"},
}
DNS_FAULTS = {"timeout": {"kind": "drop"}, "SERVFAIL": {"kind": "servfail"}}
TCP_FAULTS = {"reset": {"kind": "reset"}, "timeout": {"kind": "hang"}}


@dataclass(frozen=True)
class Cell:
    family: str  # "kube LIST", "ARM read", "DNS query", "TLS (HTTPS)", "HTTP (port 80)"
    fault: str
    spec: dict[str, Any] = field(hash=False, compare=False)


CELLS: tuple[Cell, ...] = (
    *(Cell("kube LIST", name, spec) for name, spec in HTTP_STATUS_FAULTS.items()),
    *(Cell("ARM read", name, spec) for name, spec in HTTP_STATUS_FAULTS.items()),
    *(Cell("DNS query", name, spec) for name, spec in DNS_FAULTS.items()),
    *(Cell("TLS (HTTPS)", name, spec) for name, spec in TCP_FAULTS.items()),
    *(Cell("HTTP (port 80)", name, spec) for name, spec in TCP_FAULTS.items()),
)


@dataclass
class Outcome:
    code: int
    seconds: float
    results: dict[str, Any]
    snapshot: dict[str, Any]
    stdout: str
    stderr: str

    def ids_with(self, *outcomes: str) -> set[str]:
        return {c["id"] for c in self.results["checks"] if c["outcome"] in outcomes}

    def messages_of(self, check_id: str, *outcomes: str) -> list[str]:
        return [c["message"] for c in self.results["checks"]
                if c["id"] == check_id and (not outcomes or c["outcome"] in outcomes)]

    @property
    def retries(self) -> int:
        return sum(int(r["count"]) for r in (self.snapshot.get("collection") or {}).get("retries") or [])


class FaultBench:
    def __init__(self, state_dir: Path, scenario: str = "healthy") -> None:
        self.state_dir = state_dir
        self.sandbox: Sandbox = up(scenario, state_dir)
        self.proxies: list[Any] = []
        try:
            self.profile = self._faulty_profile()
        except BaseException:
            self.close()
            raise

    def _faulty_profile(self) -> Path:
        document = yaml.safe_load(self.sandbox.profile.read_text(encoding="utf-8"))
        target = document["target"]
        addresses = document["dns"]["server_addresses"]
        first = sorted(addresses)[0]
        ip, port = addresses[first].rsplit(":", 1)
        self.dns_proxy = DnsFaultProxy((ip, int(port)))
        self.proxies.append(self.dns_proxy)
        # every NS name served by that server goes through the proxy: "one server failing"
        upstream = addresses[first]
        document["dns"]["server_addresses"] = {
            name: (f"{self.dns_proxy.address[0]}:{self.dns_proxy.address[1]}" if value == upstream else value)
            for name, value in addresses.items()}
        host = f"{target.get('demo_host', 'hello')}.{target['domain']}"
        address = _a_record(host, ip, int(port))
        tls = document["tls"]
        self.https_proxy = TcpFaultProxy((address, int(tls["https_port"])), listen=address, spare_legacy_tls=True)
        self.http_proxy = TcpFaultProxy((address, int(tls["http_port"])), listen=address)
        self.proxies += [self.https_proxy, self.http_proxy]
        tls["https_port"], tls["http_port"] = self.https_proxy.address[1], self.http_proxy.address[1]
        path = self.state_dir / "profile-faults.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def stage(self, cell: Cell | None, times: int | None = 1) -> None:
        """Arm `cell`'s fault for the next `times` requests of its family (None: all); clear every other fault."""
        kube: list[dict[str, Any]] = []
        arm: list[dict[str, Any]] = []
        proxies: dict[Any, list[dict[str, Any]]] = {proxy: [] for proxy in self.proxies}
        if cell is not None:
            spec = {**cell.spec, "times": times}
            if cell.family == "kube LIST":
                kube = [{"match": KUBE_PATH, **spec}]
            elif cell.family == "ARM read":
                arm = [{"match": ARM_MATCH, **spec}]
            else:
                proxy = {"DNS query": self.dns_proxy, "TLS (HTTPS)": self.https_proxy,
                         "HTTP (port 80)": self.http_proxy}[cell.family]
                proxies[proxy] = [spec]
        set_faults(self.state_dir, kube=kube, arm=arm)
        for proxy, faults in proxies.items():
            proxy.set_faults(faults)

    def run(self, *extra: str, reports: Path | None = None, deadline: float = DEADLINE_SECONDS) -> Outcome:
        reports = reports or self.state_dir / "reports"
        settings = [arg for pair in RUN_SETTINGS for arg in ("--aksid-set", pair)]
        started = time.monotonic()
        process = subprocess.run(
            [sys.executable, "-m", "aksid", "run", "--aksid-profile", str(self.profile), "--aksid-reports-dir",
             str(reports), "--aksid-timeout", f"{deadline:g}", *settings, "-q", "-p", "no:cacheprovider", *extra],
            capture_output=True, text=True, timeout=deadline + 120,
        )
        seconds = time.monotonic() - started
        results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
        snapshot = json.loads((reports / "snapshot.json").read_text(encoding="utf-8"))
        return Outcome(process.returncode, seconds, results, snapshot, process.stdout, process.stderr)

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        down(self.state_dir)


def _a_record(host: str, server: str, port: int) -> str:
    """The demo host's address as the zone's server answers it (where the suite will connect)."""
    query = dns.message.make_query(host, "A")
    response = dns.query.udp(query, server, port=port, timeout=2)
    for rrset in response.answer:
        for rdata in rrset:
            return str(rdata.address)
    raise RuntimeError(f"{host} has no A record on {server}:{port}")
