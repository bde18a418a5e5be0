"""The controllers' reconcile loop, a thread of the sandbox server process."""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

from aksid.sandbox.controllers import cert_manager, external_dns, ingress_nginx, kubelet
from aksid.sandbox.controllers.world import World

INTERVAL = 0.2


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj.get("kind", ""), obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


class ControllerLoop(threading.Thread):
    """Reconciles what was created through the API; what the scenario loaded is a cluster at rest."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True, name="sandbox-controllers")
        self.world = world
        self.stopping = threading.Event()
        self.at_rest = {key[1:] for key in world.kube.object_keys()}  # (kind, namespace, name), as _key gives
        self.published: set[tuple[str, str]] = set()  # Ingresses (namespace, name) seen with an address

    def run(self) -> None:
        while not self.stopping.wait(INTERVAL):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a model's bug must show in sandbox.log, not stop the loop
                traceback.print_exc(file=sys.stdout)
                sys.stdout.flush()

    def stop(self) -> None:
        self.stopping.set()

    def tick(self) -> None:
        world = self.world
        for _cluster, name in world.kube.names("", "Namespace"):  # the ServiceAccount controller, for new namespaces
            if ("Namespace", "", name) not in self.at_rest and world.kube.get("", "ServiceAccount", name, "default") is None \
                    and world.kube.get("", "Namespace", "", name) is not None:
                world.kube.put({"apiVersion": "v1", "kind": "ServiceAccount",
                                "metadata": {"name": "default", "namespace": name}})
        # Names first, then copies of the few pods created through the API: a copy of every pod five times a
        # second would hold the store (and every LIST) for seconds in a cluster of tens of thousands of pods.
        for namespace, name in world.kube.names("", "Pod"):
            pod = None if ("Pod", namespace, name) in self.at_rest else world.kube.get("", "Pod", namespace, name)
            if pod is not None:  # deleted meanwhile: nothing to do
                kubelet.reconcile(world, pod)
        for ingress in self._new_ingresses():
            ingress_nginx.reconcile(world, ingress)
        ingresses = self._new_ingresses()
        current = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in ingresses}
        gone = sorted(self.published - current)
        self.published = (self.published & current) | {
            (i["metadata"]["namespace"], i["metadata"]["name"]) for i in ingresses
            if ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress")}
        services = [s for s in (world.kube.get("", "Service", namespace, name) for namespace, name
                                in world.kube.names("", "Service") if ("Service", namespace, name) not in self.at_rest)
                    if s is not None and external_dns.HOSTNAME_ANNOTATION in (s["metadata"].get("annotations") or {})]
        external_dns.reconcile(world, ingresses, gone, services)
        cert_manager.reconcile(world, ingresses)

    def _new_ingresses(self) -> list[dict[str, Any]]:
        return [i for i in self.world.kube.list_kind("networking.k8s.io", "Ingress") if _key(i) not in self.at_rest]
