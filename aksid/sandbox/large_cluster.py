"""A large cluster for the scale bench (bench/bench_scale.py) and its self-test, and a minimal server of
pre-encoded LIST pages for it.

The cluster is `healthy` plus N nodes (each with an NMI pod) and M namespaces of app pods, shaped like what
a real API server returns (managedFields included, as `kubectl get -o json --show-managed-fields` shows).
The server answers the collector's paginated LISTs from pages encoded once, so it is never the bottleneck;
it counts the requests it serves. Plain HTTP on 127.0.0.1 only."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aksid.collect.kube import KINDS
from aksid.sandbox.https import KeepAliveHandler
from aksid.sandbox.scenario import load_scenario

MANAGED_FIELDS = [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                   "time": "2026-11-10T09:10:34Z", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {},
                                                                              "f:pod-template-hash": {}},
                                               "f:ownerReferences": {".": {}, 'k:{"uid":"x"}': {}}},
                                "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {},
                                                                                   "f:ports": {}, "f:resources": {}}},
                                           "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}}}},
                  {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-11-10T09:10:37Z",
                   "fieldsType": "FieldsV1", "subresource": "status",
                   "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {},
                                             "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}}]


def generate_pods(pods: int, base: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The benches' cluster of about `pods` app pods: namespaces of ten pods, a node (with its NMI pod) per four."""
    namespaces = max(1, pods // 10)
    return generate(nodes=max(1, namespaces // 4), namespaces=namespaces, pods_per_namespace=10, base=base)


def generate(nodes: int, namespaces: int, pods_per_namespace: int,
             base: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """`base` (healthy's objects, or a running sandbox's as it prepared them) plus the generated ones; the checks
    stay green: every node has a ready NMI pod, app pods carry no binding selector."""
    base = base if base is not None else load_scenario("healthy").kube_objects
    node0 = next(o for o in base if o["kind"] == "Node")
    nmi0 = next(o for o in base if o["kind"] == "Pod" and o["metadata"]["name"].startswith("nmi-"))
    app0 = next(o for o in base if o["kind"] == "Pod" and o["metadata"]["namespace"] == "hello")
    ns0 = next(o for o in base if o["kind"] == "Namespace")
    objects = copy.deepcopy(base)
    node_names = []
    for index in range(nodes):
        name = f"aks-scale-{index:05d}-vmss"
        node = copy.deepcopy(node0)
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        objects.append(node)
        node_names.append(name)
        nmi = copy.deepcopy(nmi0)
        nmi["metadata"].update(name=f"nmi-s{index:05d}", uid=f"00000000-0000-4000-8000-{index:012d}")
        nmi["spec"]["nodeName"] = name
        objects.append(nmi)
    for index in range(namespaces):
        ns_name = f"team-{index:05d}"
        namespace = copy.deepcopy(ns0)
        namespace["metadata"] = {"name": ns_name, "labels": {"kubernetes.io/metadata.name": ns_name}}
        objects.append(namespace)
        for number in range(pods_per_namespace):
            pod = copy.deepcopy(app0)
            pod["metadata"].update(name=f"app-{number:03d}-7d9c8", namespace=ns_name,
                                   uid=f"10000000-0000-4000-8000-{index * 1000 + number:012d}",
                                   managedFields=copy.deepcopy(MANAGED_FIELDS))
            pod["spec"]["nodeName"] = node_names[(index * pods_per_namespace + number) % len(node_names)] if node_names \
                else pod["spec"]["nodeName"]
            objects.append(pod)
    return objects


class PageServer:
    """LIST pages of each kind the collector reads, encoded once per page size; everything else is 404."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.by_path: dict[str, list[dict[str, Any]]] = {}
        for spec in KINDS:
            items = [o for o in objects if o.get("kind") == spec.kind and not spec.custom or
                     o.get("kind") == spec.kind and str(o.get("apiVersion", "")).startswith(spec.api_version.split("/")[0])]
            items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
            self.by_path[spec.path] = [({k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                                        if not spec.custom else o) for o in items]
        self.pages: dict[tuple[str, int], list[bytes]] = {}
        self.requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    def encode(self, path: str, limit: int) -> list[bytes]:
        items = self.by_path[path]
        chunks = [items[i:i + limit] for i in range(0, len(items), limit)] or [[]]
        pages = []
        for number, chunk in enumerate(chunks):
            meta: dict[str, Any] = {"resourceVersion": "1"}
            if number + 1 < len(chunks):
                meta["continue"] = str(number + 1)
                meta["remainingItemCount"] = len(items) - (number + 1) * limit
            pages.append(json.dumps({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": chunk},
                                    separators=(",", ":")).encode())
        return pages

    def page(self, path: str, limit: int, token: str | None) -> bytes | None:
        if path not in self.by_path:
            return None
        with self.lock:
            if (path, limit) not in self.pages:
                self.pages[(path, limit)] = self.encode(path, limit)
            pages = self.pages[(path, limit)]
        return pages[int(token) if token else 0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(KeepAliveHandler):  # a page leaves at once: the client, not the server, sets the pace
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with outer.lock:
                    outer.requests += 1
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                body = outer.page(parts.path, int(query.get("limit", ["500"])[0]), query.get("continue", [None])[0])
                status = 200 if body is not None else 404
                body = body if body is not None else b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def start(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
