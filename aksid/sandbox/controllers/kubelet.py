"""kubelet for pods created through the API: schedule, run, finish.

A pod is bound to a Linux node that admits it (the scheduler's rules, aksid.nodes). A probe pod (its
container runs `python3 -c <script> [args]`) is really run: the shipped script, as a child process whose
"169.254.169.254" is an NMI model on loopback that knows which pod is asking (as NMI knows a pod by
its address), and whose Entra ID (login.microsoftonline.com) is the token endpoint model on loopback. The
container's `env` is passed on, and its projected ServiceAccount token volumes are written (a token the API
server would issue: the cluster's issuer, `system:serviceaccount:NS:SA`, the volume's audience) to a directory
standing for the mount path. Its output becomes the pod's log; its exit code the pod's phase. Other pods just run.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aksid.nodes import admits, is_linux
from aksid.sandbox.controllers import entra, nmi
from aksid.sandbox.controllers.identities import service_account_issuer
from aksid.sandbox.controllers.world import World

PROBE_TIMEOUT = 30.0


def reconcile(world: World, pod: dict[str, Any]) -> None:
    """One pending pod: bind it to a node and start it (probes run in a thread of their own)."""
    if (pod.get("status") or {}).get("phase") not in (None, "", "Pending") or (pod.get("spec") or {}).get("nodeName"):
        return
    node = next((n for n in world.kube.list_kind("", "Node") if is_linux(n) and admits(n, pod.get("spec") or {})), None)
    if node is None:
        _set_status(world, pod, {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/0 nodes are available: no Linux node admits the pod"}]})
        return
    pod = copy.deepcopy(pod)
    pod["spec"]["nodeName"] = node["metadata"]["name"]
    _set_status(world, pod, _running(node))
    command = ((pod["spec"].get("containers") or [{}])[0]).get("command") or []
    if command[:2] == ["python3", "-c"] and len(command) > 2:
        threading.Thread(target=_run_probe, args=(world, pod, command[2:]), daemon=True,
                         name=f"kubelet-{pod['metadata']['name']}").start()


def _running(node: dict[str, Any]) -> dict[str, Any]:
    address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or [] if a["type"] == "InternalIP"),
                   "10.224.0.4")
    now = _now()
    return {"phase": "Running", "hostIP": address, "podIP": "10.244.0.250", "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}


def _run_probe(world: World, pod: dict[str, Any], script: list[str]) -> None:
    imds = _serve_for(lambda handler: _imds(world, pod, handler))
    login = _serve_for(lambda handler: _login(world, handler))
    with tempfile.TemporaryDirectory(prefix="aksid-kubelet-") as volumes:
        try:
            env = {**_container_env(world, pod, Path(volumes)), "PATH": "/usr/bin:/bin",
                   "AKSID_IMDS_ENDPOINT": f"http://127.0.0.1:{imds.server_address[1]}",
                   "AKSID_AUTHORITY_ENDPOINT": f"http://127.0.0.1:{login.server_address[1]}/"}
            result = subprocess.run([sys.executable, "-c", *script], env=env, capture_output=True, text=True,
                                    timeout=PROBE_TIMEOUT, check=False)
            output, code = result.stdout + result.stderr, result.returncode
        except subprocess.TimeoutExpired:
            output, code = "probe timed out\n", 1
        finally:
            for server in (imds, login):
                server.shutdown()
                server.server_close()
    world.append_log(pod["metadata"]["namespace"], pod["metadata"]["name"], output)
    current = world.kube.get("", "Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
    if current is not None:  # deleted meanwhile: nothing to report
        phase = "Succeeded" if code == 0 else "Failed"
        _set_status(world, current, {**(current.get("status") or {}), "phase": phase,
                                     "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}]})


def _container_env(world: World, pod: dict[str, Any], volumes: Path) -> dict[str, str]:
    """The first container's env values, its projected token volumes written under `volumes` (paths in the env
    that point into a mount point there, as the container would find them)."""
    spec = pod.get("spec") or {}
    container = (spec.get("containers") or [{}])[0]
    mounts: dict[str, str] = {}
    for volume in spec.get("volumes") or []:
        mount = next((m for m in container.get("volumeMounts") or [] if m.get("name") == volume.get("name")), None)
        sources = (volume.get("projected") or {}).get("sources") or []
        if mount is None or not sources:
            continue
        local = volumes / str(volume["name"])
        for source in sources:
            projection = source.get("serviceAccountToken")
            if projection:
                path = local / str(projection.get("path", "token"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(_service_account_token(world, pod, projection), encoding="utf-8")
        mounts[str(mount["mountPath"]).rstrip("/")] = str(local)
    env = {}
    for entry in container.get("env") or []:
        value = str(entry.get("value") or "")
        for mount_path, local in mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                value = local + value[len(mount_path):]
        env[str(entry["name"])] = value
    return env


def _service_account_token(world: World, pod: dict[str, Any], projection: dict[str, Any]) -> str:
    """What the API server's TokenRequest issues for a projected volume (a placeholder signature)."""
    namespace, spec = pod["metadata"]["namespace"], pod.get("spec") or {}
    account = spec.get("serviceAccountName") or "default"
    now = int(time.time())
    claims = {"aud": [projection.get("audience") or service_account_issuer(world)], "iss": service_account_issuer(world),
              "sub": f"system:serviceaccount:{namespace}:{account}", "iat": now, "nbf": now,
              "exp": now + int(projection.get("expirationSeconds") or 3600),
              "kubernetes.io": {"namespace": namespace, "pod": {"name": pod["metadata"]["name"],
                                                                "uid": pod["metadata"].get("uid")},
                                "serviceaccount": {"name": account}}}
    return ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                    for part in ({"alg": "RS256", "kid": "sandbox"}, claims)) + ".c2FuZGJveA"


def _imds(world: World, pod: dict[str, Any], handler: BaseHTTPRequestHandler) -> tuple[int | None, dict[str, Any] | str]:
    """169.254.169.254 as this pod reaches it (NMI knows a pod by its address)."""
    if handler.command != "GET":
        return 405, "method not allowed"
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
    status, body, by = nmi.answer(world, pod, handler.headers.get("Metadata"), query.get("client_id"))
    if by == "imds":
        handler.server_header = nmi.IMDS_SERVER  # type: ignore[attr-defined]
    if by == "blocked":
        return None, ""  # the connection closes without an answer, as a dropped request ends for the client
    return status, body


def _login(world: World, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any] | str]:
    """login.microsoftonline.com: POST /<tenant>/oauth2/v2.0/token."""
    parts = urllib.parse.urlsplit(handler.path).path.strip("/").split("/")
    if handler.command != "POST" or len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
        return 404, {"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST "
                                                                       "requests to /<tenant>/oauth2/v2.0/token."}
    length = int(handler.headers.get("Content-Length") or 0)
    form = dict(urllib.parse.parse_qsl(handler.rfile.read(length).decode(errors="replace")))
    return entra.token(world, parts[0], form)


def _serve_for(answer: Callable[[BaseHTTPRequestHandler], tuple[int | None, dict[str, Any] | str]]) -> ThreadingHTTPServer:
    """An endpoint on loopback that stands for a well-known address as this pod reaches it."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = answer(self)
            if status is None:
                self.close_connection = True
                return
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        def version_string(self) -> str:
            """The Server header: IMDS names itself (a probe tells it from NMI by that); others as http.server does."""
            return getattr(self, "server_header", None) or super().version_string()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="endpoint-model").start()
    return server


def _set_status(world: World, pod: dict[str, Any], status: dict[str, Any]) -> None:
    world.kube.put({**pod, "status": status})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
