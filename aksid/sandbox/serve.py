"""The sandbox server process: fake Kubernetes API and fake ARM over HTTPS on loopback.

Started by `aksid sandbox up` (see runtime.py) as its own process so that `up` can return and
`down` can stop it by PID. Writes into the state dir: ca.crt, kubeconfig, profile.yaml,
requests.jsonl (every request, method and path), ready.json (ports, pid).

The real servers (knotd, pebble, nginx) are started by runtime.up before this process, which serves the
scenario as runtime.up prepared it (`--prepared`: the objects hold what was really issued) and gets the
servers' addresses (`--dns-endpoints`, `--tls-endpoints`) so that profile.yaml points the suite at them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from aksid.memory import gc_paused
from aksid.sandbox.armapi import ArmStore, make_arm_handler
from aksid.sandbox.controllers.loop import ControllerLoop
from aksid.sandbox.controllers.world import Endpoints, World
from aksid.sandbox.fault_control import FaultWatcher
from aksid.sandbox.https import start_https_server
from aksid.sandbox.kubeapi import KubeStore, make_kube_handler
from aksid.sandbox.scenario import Scenario, load_prepared, load_scenario
from aksid.sandbox.tls import SandboxCA


class RequestLog:
    """Appends one JSON line per request; shared by both servers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.touch()

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps({"ts": round(time.time(), 3), **record}) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


def _write_secret(path: Path, value: str) -> None:
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)


def write_kubeconfig(state_dir: Path, scenario: Scenario, port: int, token: str) -> Path:
    cluster = scenario.target.get("cluster_name", "sandbox")
    user = f"clusterUser_{scenario.target.get('aks_resource_group', 'sandbox')}_{cluster}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": f"https://127.0.0.1:{port}", "certificate-authority": str(state_dir / "ca.crt")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }
    path = state_dir / "kubeconfig"
    _write_secret(path, yaml.safe_dump(document, sort_keys=False))
    return path


def write_profile(state_dir: Path, scenario: Scenario, arm_port: int, dns: dict[str, Any] | None = None,
                  tls: dict[str, Any] | None = None) -> Path:
    """Everything the suite needs to attach to the sandbox, exactly as it would to Azure.

    `dns`: {parent_servers: ["ip:port"], server_addresses: {NS name: "ip:port"}} of the knotd sandbox;
    `tls`: {trust_store (relative to the state dir), https_port, http_port} of the demo host.
    """
    document: dict[str, Any] = {
        "target": dict(scenario.target),
        "kube": {"kubeconfig": "kubeconfig"},
        "azure": {
            "endpoint": f"https://127.0.0.1:{arm_port}",
            "ca_bundle": "ca.crt",
            "credential": "token-file",
            "token_file": "arm-token",
        },
        "network": "loopback-only",
    }
    if dns and dns.get("parent_servers"):
        document["dns"] = {"parent_servers": list(dns["parent_servers"]),
                           "server_addresses": dict(dns.get("server_addresses") or {})}
    if tls:
        document["tls"] = dict(tls)
    path = state_dir / "profile.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def serve(scenario: Scenario, state_dir: Path, dns: dict[str, Any] | None = None, tls: dict[str, Any] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = SandboxCA.create(state_dir)
    kube_cert, kube_key = ca.issue_server_cert(state_dir, "kube-apiserver")
    arm_cert, arm_key = ca.issue_server_cert(state_dir, "arm")
    kube_token, arm_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    _write_secret(state_dir / "arm-token", arm_token)
    log = RequestLog(state_dir / "requests.jsonl")

    with gc_paused(freeze=True):  # the stores live as long as the process: see main
        kube_store = KubeStore(scenario.kube_objects, scenario.kube_faults)
        arm_store = ArmStore(scenario.azure_resources, scenario.azure_faults)
    world = World(kube_store, arm_store, state_dir, Endpoints.load(state_dir), knobs=dict(scenario.controllers))
    kube = start_https_server(make_kube_handler(kube_store, kube_token, log, world.log_of), kube_cert, kube_key)
    arm = start_https_server(make_arm_handler(arm_store, arm_token, log), arm_cert, arm_key)
    controllers = ControllerLoop(world)  # acts only on what provision mode creates through the API
    controllers.start()
    faults = FaultWatcher(state_dir, kube_store.set_faults, arm_store.set_faults)  # tests change faults at run time
    faults.start()
    kube_port, arm_port = kube.server_address[1], arm.server_address[1]
    write_kubeconfig(state_dir, scenario, kube_port, kube_token)
    write_profile(state_dir, scenario, arm_port, dns, tls)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ready = {"scenario": scenario.name, "kube_port": kube_port, "arm_port": arm_port}
    (state_dir / "ready.json").write_text(json.dumps(ready), encoding="utf-8")
    stop.wait()
    faults.stop()
    controllers.stop()
    for server in (kube, arm):
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aksid.sandbox.serve")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", help="a scenario (built-in name or path), served as written")
    source.add_argument("--prepared", type=Path, help="a scenario prepared by runtime.up (JSON)")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--dns-endpoints", type=json.loads, default=None,
                        help='JSON {"parent_servers": [...], "server_addresses": {...}} of the knotd sandbox')
    parser.add_argument("--tls-endpoints", type=json.loads, default=None,
                        help='JSON {"trust_store": "...", "https_port": N, "http_port": N} of the demo host')
    args = parser.parse_args()
    # What is loaded lives as long as the process: frozen out of the GC's generations before the collector
    # resumes, no collection walks its millions of objects, neither the first one (seconds at 20,000 pods)
    # nor any during a LIST. No gc.collect() first: loading makes no cyclic garbage.
    with gc_paused(freeze=True):
        scenario = load_prepared(args.prepared) if args.prepared else load_scenario(args.scenario)
    serve(scenario, args.state_dir.resolve(), args.dns_endpoints, args.tls_endpoints)


if __name__ == "__main__":
    main()
