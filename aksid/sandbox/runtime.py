"""Bring the sandbox up and down: processes started here are stopped by their PIDs.

`up` starts, in this order: the real DNS servers (three knotd, see dns.py: they start in tens of
milliseconds and a failure is raised here, in the caller's process); the two ACME CAs (pebble "prod" and
"staging", in parallel), the issuance of the demo host's certificate through DNS-01 and the demo host itself
(nginx), see edge.py; then the server process for the fake kube API and ARM (serve.py), which serves the
scenario's objects as prepared here (with what was really issued). Every PID goes into `pids.json` as soon
as it exists; `down` stops every PID recorded there. A failure part-way stops whatever had started.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.memory import gc_paused
from aksid.sandbox.controllers.world import ENDPOINTS_FILE
from aksid.sandbox.dns import DnsSandbox, DnsSandboxError, start_dns, stop_dns
from aksid.sandbox.edge import Edge, EdgeError, prepare_base, start_edge, translate_acme_urls, wait_until_expired
from aksid.sandbox.processes import (
    Daemon,
    PidRecord,
    alive,
    child_pids,
    command_line,
    free_ports,
    launch_process,
    send_signal,
    start_daemons,
    started_from,
    stop_process,
    wait_then_kill,
)
from aksid.sandbox.scenario import Scenario, load_scenario

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class SandboxError(RuntimeError):
    """The sandbox could not start or stop; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    state_dir: Path

    @property
    def profile(self) -> Path:
        return self.state_dir / "profile.yaml"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def request_log(self) -> Path:
        return self.state_dir / "requests.jsonl"

    def requests(self) -> list[dict[str, object]]:
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text(encoding="utf-8").splitlines() if line]


def _pid_record(state_dir: Path) -> PidRecord:
    return PidRecord(state_dir / "pids.json")


def _knotd_role(pid: int, index: int) -> str:
    """`knotd-parent`, `knotd-a`, `knotd-b` (from the config path on its command line), for people and tests."""
    config = next((arg for arg in command_line(pid) if arg.endswith("/knot.conf")), "")
    return f"knotd-{Path(config).parent.name}" if config else f"knotd-{index}"


def _start_dns(scenario: Scenario, state_dir: Path) -> DnsSandbox | None:
    """knotd for the scenario's zone (from its Azure record sets) and its parent; None when Azure has no such zone."""
    found = scenario.dns_zone()
    if found is None:
        return None
    zone, record_sets = found
    name_servers = [str(name) for name in (zone.get("properties") or {}).get("nameServers") or []]
    if not name_servers:
        return None  # nothing would delegate to or serve the zone; the DNS checks report it from the ARM data
    try:
        return start_dns(state_dir, str(scenario.target["domain"]), record_sets, name_servers, scenario.dns or None)
    except DnsSandboxError as exc:
        raise SandboxError(f"the DNS sandbox for scenario {scenario.path} could not start: {exc}") from None


def _start_edge(scenario: Scenario, state_dir: Path, dns: DnsSandbox | None, record: Any) -> Edge | None:
    """Pebbles, the demo certificate and nginx; None when there is no DNS to validate DNS-01 against."""
    if dns is None:
        return None
    try:
        return start_edge(state_dir, scenario.target, scenario.kube_objects, scenario.tls, dns, record)
    except EdgeError as exc:
        raise SandboxError(f"the ACME/TLS sandbox for scenario {scenario.path} could not start: {exc}") from None


def _prepared(reference: str, loaded: Scenario, edge: Edge | None, documents: dict[Path, dict[str, Any]]) -> Scenario:
    """The scenario as the fake APIs serve it: what was issued goes into the base's objects before the scenario's
    patches (which keep their explicit values), Let's Encrypt's URLs become the pebbles' after them.

    `documents` holds the files as `up` already read them: a large scenario's YAML is parsed once, not twice."""
    if edge is None:
        return loaded
    fqdn = f"{loaded.target.get('demo_host', 'hello')}.{str(loaded.target['domain']).rstrip('.')}"
    prepared = load_scenario(
        reference, prepare_base=lambda base: prepare_base(base.kube_objects, fqdn, edge.held, edge.issuer_directory),
        documents=documents)
    translate_acme_urls(prepared.kube_objects, edge.directories)
    prepared.target = {**prepared.target, "acme_prod_server": edge.directories["prod"],
                       "acme_staging_server": edge.directories["staging"]}
    return prepared


def _write_prepared(state_dir: Path, scenario: Scenario) -> Path:
    """The scenario for serve.py, as JSON (it holds the demo's private key, as the fake API's Secret does: 0600).

    The fields as they are, not `dataclasses.asdict`: that deep-copies every object first, seconds at scale."""
    path = state_dir / "scenario.json"
    document = {**{f.name: getattr(scenario, f.name) for f in dataclasses.fields(scenario)}, "path": str(scenario.path)}
    path.write_text(json.dumps(document), encoding="utf-8")
    path.chmod(0o600)
    return path


def _tls_endpoints(edge: Edge | None) -> dict[str, Any]:
    """The profile's `tls:` section. Without a demo host, ports nothing listens on (never 443/80: a web server
    of the machine itself could answer there)."""
    if edge is None:
        https_port, http_port = free_ports(["127.0.0.1"], 2)
        return {"https_port": https_port, "http_port": http_port}
    if edge.https_port is None or edge.http_port is None:
        https_port, http_port = free_ports(["127.0.0.1"], 2)
    else:
        https_port, http_port = edge.https_port, edge.http_port
    return {"trust_store": edge.public_roots.name, "https_port": https_port, "http_port": http_port}


def up(scenario: str, state_dir: Path) -> Sandbox:
    """Start the sandbox for `scenario` (built-in name or path) and wait until it serves."""
    # A large scenario is millions of objects while `up` holds it: each full collection would walk them all
    # (a second apiece at 20,000 pods) to find no garbage. They are freed, by reference counting, as it returns.
    with gc_paused():
        return _up(scenario, state_dir)


def _up(scenario: str, state_dir: Path) -> Sandbox:
    state_dir = state_dir.resolve()
    documents: dict[Path, dict[str, Any]] = {}  # each file parsed once, for both loads below
    loaded = load_scenario(scenario, documents=documents)  # a malformed scenario fails here, with its message
    record = _pid_record(state_dir)
    if record.exists():
        raise SandboxError(f"a sandbox is already running in {state_dir}; run `aksid sandbox down --state-dir {state_dir}`")
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ready.json", "requests.jsonl", "scenario.json"):
        (state_dir / stale).unlink(missing_ok=True)
    reference = scenario if "/" not in scenario and not scenario.endswith((".yaml", ".yml")) else str(Path(scenario).resolve())
    try:
        dns = _start_dns(loaded, state_dir)
        endpoints: dict[str, object] = {}
        if dns is not None:
            for index, pid in enumerate(dns.pids):
                record.add(_knotd_role(pid, index), pid)
            endpoints = {"parent_servers": dns.parent_servers, "server_addresses": dns.server_addresses}
        edge = _start_edge(loaded, state_dir, dns, record.add)
        prepared = _write_prepared(state_dir, _prepared(reference, loaded, edge, documents))
        _write_controller_endpoints(state_dir, loaded, dns, edge)
        _start_server(state_dir, record, [
            sys.executable, "-m", "aksid.sandbox.serve", "--prepared", str(prepared), "--state-dir", str(state_dir),
            "--dns-endpoints", json.dumps(endpoints), "--tls-endpoints", json.dumps(_tls_endpoints(edge))])
        if edge is not None:
            wait_until_expired(edge)  # an expired leaf must be expired when the suite collects
    except BaseException:
        down(state_dir)
        raise
    return Sandbox(state_dir)


def _write_controller_endpoints(state_dir: Path, scenario: Scenario, dns: DnsSandbox | None, edge: Edge | None) -> None:
    """Where the controller models reach the real servers (0600: the DNS update key is a secret)."""
    path = state_dir / ENDPOINTS_FILE
    path.unlink(missing_ok=True)
    if dns is None or edge is None:
        return  # no zone served: the models have nothing to publish or issue through
    cas = {name: {"pid": ca.pid, "directory_url": ca.directory_url, "https_ca_bundle": str(ca.https_ca_bundle),
                  "roots_pem": ca.roots_pem, "management_url": ca.management_url} for name, ca in edge.cas.items()}
    document = {"zone": str(scenario.target["domain"]).rstrip("."),
                "dns_servers": sorted(set(dns.server_addresses.values())), "update_key": dns.update_key,
                "cas": cas, "nginx": edge.nginx}
    path.touch(mode=0o600)
    path.write_text(json.dumps(document), encoding="utf-8")


def _start_server(state_dir: Path, record: PidRecord, argv: list[str]) -> None:
    """serve.py, recorded as soon as its PID exists (`down` stops it if the wait fails); ready once it wrote
    ready.json, that is once the fake kube API and ARM listen."""

    def launch(argv: list[str], *, log: Path, cwd: Path | None = None,
               env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = launch_process(argv, log=log, cwd=cwd, env=env, append=False)
        record.add("serve", process.pid)
        return process

    ready = state_dir / "ready.json"
    start_daemons(Daemon("the sandbox server", argv, log=state_dir / "sandbox.log", ready=ready.exists,
                         ready_when=f"it writes {ready}"),
                  error=SandboxError, timeout=START_TIMEOUT, launch=launch, interval=0.05)


def down(state_dir: Path) -> list[int]:
    """Stop every process recorded in the state dir; return the PIDs that were stopped."""
    state_dir = state_dir.resolve()
    record = _pid_record(state_dir)
    recorded = record.read()
    if recorded is None:
        return []
    pids = list(recorded.values())
    # only what this sandbox started and still runs: a recorded process that exited left its number to anyone
    owned = started_from(state_dir)
    live = {pid for pid in pids if owned(pid)}
    knotds = [pid for name, pid in recorded.items() if name.startswith("knotd") and pid in live]
    edge = [pid for name, pid in recorded.items() if name.startswith(("nginx", "pebble")) and pid in live]
    others = [pid for pid in live if pid not in knotds and pid not in edge]
    workers = [child for pid in edge for child in child_pids(pid)]  # nginx's: a KILLed master would orphan them
    for pid in [*edge, *others]:
        send_signal(pid, signal.SIGTERM)  # all of them stop at once; the waits below overlap
    stop_dns(knotds, owned)  # TERM, wait, KILL; reaps them when they are our children (up ran in this process)
    for pid in edge:
        stop_process(pid, owned=owned)  # waits, KILLs what is left, reaps our children (nginx: TERM is its fast shutdown)
    for pid in workers:
        if alive(pid) and owned(pid):
            send_signal(pid, signal.SIGKILL)
    wait_then_kill(others, STOP_TIMEOUT, interval=0.05, owned=owned)
    record.remove()
    (state_dir / "ready.json").unlink(missing_ok=True)
    return pids
