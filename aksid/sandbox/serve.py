"""The sandbox server process: fake Kubernetes API and fake ARM over HTTPS on loopback.

Started by `aksid sandbox up` (see runtime.py) as its own process so that `up` can return and
`down` can stop it by PID. Writes into the state dir: ca.crt, kubeconfig, profile.yaml,
requests.jsonl (every request, method and path), ready.json (ports, pid).

Two identities are served. The admin one (kubeconfig, arm-token, profile.yaml) may do anything. The
least-privilege one (kubeconfig-least-privilege, arm-token-least-privilege, profile-least-privilege.yaml) is
the ServiceAccount aksid/aksid and an Azure principal holding aksid's custom roles: its kube requests are
authorized by the RBAC rules bound to that ServiceAccount in the rights' manifests, its ARM requests by the
Actions of the rights' azure-role*.json (aksid.sandbox.kube.authz, aksid.sandbox.arm_authz). The rights are
`--rights`, else the scenario's `rights`, else aksid's own deploy/ directory.

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
from aksid.paths import deploy_dir
from aksid.sandbox.arm_authz import ArmPrincipal, load_roles
from aksid.sandbox.armapi import ArmStore, make_arm_handler
from aksid.sandbox.controllers import wi_webhook
from aksid.sandbox.controllers.loop import ControllerLoop
from aksid.sandbox.controllers.world import Endpoints, World
from aksid.sandbox.fault_control import FaultWatcher
from aksid.sandbox.https import start_https_server
from aksid.sandbox.kube.authz import Principal, RbacAuthorizer, service_account_user
from aksid.sandbox.kube.errors import ApiError
from aksid.sandbox.kubeapi import KubeStore, make_kube_handler
from aksid.sandbox.scenario import Scenario, load_prepared, load_scenario
from aksid.sandbox.tls import SandboxCA

LEAST_PRIVILEGE = "least-privilege"
# The ServiceAccount of deploy/rbac.yaml, and the ids ARM names in a denial for the least-privilege principal.
SUITE_NAMESPACE, SUITE_SERVICE_ACCOUNT = "aksid", "aksid"
LEAST_PRIVILEGE_CLIENT_ID = "a4c1d0e5-7b2f-4e1a-9c3d-5f6e7a8b9c0d"
LEAST_PRIVILEGE_OBJECT_ID = "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"


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


def write_kubeconfig(state_dir: Path, scenario: Scenario, port: int, token: str, variant: str = "") -> Path:
    """`kubeconfig` (the admin user), or `kubeconfig-<variant>` (e.g. the least-privilege ServiceAccount)."""
    cluster = scenario.target.get("cluster_name", "sandbox")
    user = (f"system:serviceaccount:{SUITE_NAMESPACE}:{SUITE_SERVICE_ACCOUNT}" if variant
            else f"clusterUser_{scenario.target.get('aks_resource_group', 'sandbox')}_{cluster}")
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": f"https://127.0.0.1:{port}", "certificate-authority": str(state_dir / "ca.crt")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }
    path = state_dir / (f"kubeconfig-{variant}" if variant else "kubeconfig")
    _write_secret(path, yaml.safe_dump(document, sort_keys=False))
    return path


def write_profile(state_dir: Path, scenario: Scenario, arm_port: int, dns: dict[str, Any] | None = None,
                  tls: dict[str, Any] | None = None, variant: str = "") -> Path:
    """Everything the suite needs to attach to the sandbox, exactly as it would to Azure.

    `dns`: {parent_servers: ["ip:port"], server_addresses: {NS name: "ip:port"}} of the knotd sandbox;
    `tls`: {trust_store (relative to the state dir), https_port, http_port} of the demo host.
    `variant`: `profile-<variant>.yaml`, with `kubeconfig-<variant>` and `arm-token-<variant>`.
    """
    suffix = f"-{variant}" if variant else ""
    document: dict[str, Any] = {
        "target": dict(scenario.target),
        "kube": {"kubeconfig": f"kubeconfig{suffix}"},
        "azure": {
            "endpoint": f"https://127.0.0.1:{arm_port}",
            "ca_bundle": "ca.crt",
            "credential": "token-file",
            "token_file": f"arm-token{suffix}",
        },
        "network": "loopback-only",
    }
    if dns and dns.get("parent_servers"):
        document["dns"] = {"parent_servers": list(dns["parent_servers"]),
                           "server_addresses": dict(dns.get("server_addresses") or {})}
    if tls:
        document["tls"] = dict(tls)
    path = state_dir / f"profile{suffix}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def rights_paths(scenario: Scenario, rights: list[Path] | None = None) -> list[Path]:
    """Where the least-privilege identity's rights come from: `rights`, the scenario's, else aksid's deploy/."""
    if rights:
        return list(rights)
    if scenario.rights:
        return [Path(p) for p in scenario.rights]
    found = deploy_dir()
    return [found] if found else []


def least_privilege(paths: list[Path]) -> tuple[Principal, ArmPrincipal]:
    """The ServiceAccount aksid/aksid and the Azure principal holding the roles of `paths`, with fresh tokens."""
    user, groups = service_account_user(SUITE_NAMESPACE, SUITE_SERVICE_ACCOUNT)
    kube = Principal(secrets.token_urlsafe(32), user, groups, RbacAuthorizer.from_paths(paths))
    arm = ArmPrincipal(secrets.token_urlsafe(32), LEAST_PRIVILEGE_CLIENT_ID, LEAST_PRIVILEGE_OBJECT_ID,
                       tuple(load_roles(paths)))
    return kube, arm


def _admit(world: World, obj: dict[str, Any]) -> dict[str, Any]:
    """The cluster's mutating admission: the workload identity webhook (a refusal is the API server's 400)."""
    try:
        return wi_webhook.admit(world, obj)
    except wi_webhook.AdmissionDenied as exc:
        raise ApiError(400, str(exc)) from None
    except wi_webhook.AdmissionUnavailable as exc:
        raise ApiError(500, str(exc)) from None


def serve(scenario: Scenario, state_dir: Path, dns: dict[str, Any] | None = None, tls: dict[str, Any] | None = None,
          rights: list[Path] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = SandboxCA.create(state_dir)
    kube_cert, kube_key = ca.issue_server_cert(state_dir, "kube-apiserver")
    arm_cert, arm_key = ca.issue_server_cert(state_dir, "arm")
    kube_token, arm_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    _write_secret(state_dir / "arm-token", arm_token)
    kube_restricted, arm_restricted = least_privilege(rights_paths(scenario, rights))
    _write_secret(state_dir / f"arm-token-{LEAST_PRIVILEGE}", arm_restricted.token)
    log = RequestLog(state_dir / "requests.jsonl")

    with gc_paused(freeze=True):  # the stores live as long as the process: see main
        kube_store = KubeStore(scenario.kube_objects, scenario.kube_faults)
        arm_store = ArmStore(scenario.azure_resources, scenario.azure_faults)
    world = World(kube_store, arm_store, state_dir, Endpoints.load(state_dir), knobs=dict(scenario.controllers))
    kube = start_https_server(make_kube_handler(kube_store, kube_token, log, world.log_of, (kube_restricted,),
                                                admit=lambda obj: _admit(world, obj)), kube_cert, kube_key)
    arm = start_https_server(make_arm_handler(arm_store, arm_token, log, (arm_restricted,)), arm_cert, arm_key)
    controllers = ControllerLoop(world)  # acts only on what provision mode creates through the API
    controllers.start()
    faults = FaultWatcher(state_dir, kube_store.set_faults, arm_store.set_faults)  # tests change faults at run time
    faults.start()
    kube_port, arm_port = kube.server_address[1], arm.server_address[1]
    write_kubeconfig(state_dir, scenario, kube_port, kube_token)
    write_profile(state_dir, scenario, arm_port, dns, tls)
    write_kubeconfig(state_dir, scenario, kube_port, kube_restricted.token, LEAST_PRIVILEGE)
    write_profile(state_dir, scenario, arm_port, dns, tls, LEAST_PRIVILEGE)

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
    parser.add_argument("--rights", type=Path, action="append", default=None,
                        help="RBAC manifests / Azure role definitions (files or directories) the least-privilege "
                             "identity holds; default: the scenario's `rights`, else aksid's deploy/")
    args = parser.parse_args()
    # What is loaded lives as long as the process: frozen out of the GC's generations before the collector
    # resumes, no collection walks its millions of objects, neither the first one (seconds at 20,000 pods)
    # nor any during a LIST. No gc.collect() first: loading makes no cyclic garbage.
    with gc_paused(freeze=True):
        scenario = load_prepared(args.prepared) if args.prepared else load_scenario(args.scenario)
    serve(scenario, args.state_dir.resolve(), args.dns_endpoints, args.tls_endpoints, args.rights)


if __name__ == "__main__":
    main()
