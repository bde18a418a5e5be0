"""kubelet for pods created through the API: schedule, run, finish.

A pod is bound to a Linux node that admits it (the scheduler's rules, aksid.nodes). A probe pod (its
container runs `python3 -c <script>`) is really run: the shipped script, as a child process whose
"169.254.169.254" is an NMI model on loopback that knows which pod is asking (as NMI knows a pod by
its address). Its output becomes the pod's log; its exit code the pod's phase. Other pods just run.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aksid.nodes import admits, is_linux
from aksid.sandbox.controllers import nmi
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
    if command[:2] == ["python3", "-c"]:
        threading.Thread(target=_run_probe, args=(world, pod, command[2]), daemon=True,
                         name=f"kubelet-{pod['metadata']['name']}").start()


def _running(node: dict[str, Any]) -> dict[str, Any]:
    address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or [] if a["type"] == "InternalIP"),
                   "10.224.0.4")
    now = _now()
    return {"phase": "Running", "hostIP": address, "podIP": "10.244.0.250", "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}


def _run_probe(world: World, pod: dict[str, Any], source: str) -> None:
    server = _nmi_for(world, pod)
    try:
        env = {"AKSID_IMDS_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT, check=False)
        output, code = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired:
        output, code = "probe timed out\n", 1
    finally:
        server.shutdown()
        server.server_close()
    world.append_log(pod["metadata"]["namespace"], pod["metadata"]["name"], output)
    current = world.kube.get("", "Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
    if current is not None:  # deleted meanwhile: nothing to report
        phase = "Succeeded" if code == 0 else "Failed"
        _set_status(world, current, {**(current.get("status") or {}), "phase": phase,
                                     "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}]})


def _nmi_for(world: World, pod: dict[str, Any]) -> ThreadingHTTPServer:
    """An endpoint on loopback that stands for 169.254.169.254 as this pod reaches it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status, body = nmi.answer(world, pod, self.headers.get("Metadata"))
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="nmi-model").start()
    return server


def _set_status(world: World, pod: dict[str, Any], status: dict[str, Any]) -> None:
    world.kube.put({**pod, "status": status})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
