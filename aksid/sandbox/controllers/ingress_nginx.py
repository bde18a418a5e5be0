"""ingress-nginx with --publish-service: an Ingress of class nginx gets the controller Service's load balancer IP."""

from __future__ import annotations

from typing import Any

from aksid.sandbox.controllers.world import World

INGRESS_LABEL = ("app.kubernetes.io/name", "ingress-nginx")


def load_balancer_ip(world: World) -> str | None:
    for service in world.kube.list_kind("", "Service"):
        labels = service["metadata"].get("labels") or {}
        if labels.get(INGRESS_LABEL[0]) == INGRESS_LABEL[1] and (service.get("spec") or {}).get("type") == "LoadBalancer":
            points = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            return next((p["ip"] for p in points if p.get("ip")), None)
    return None


def is_nginx_class(ingress: dict[str, Any]) -> bool:
    annotations = ingress["metadata"].get("annotations") or {}
    return (ingress.get("spec") or {}).get("ingressClassName") == "nginx" or annotations.get(
        "kubernetes.io/ingress.class") == "nginx"


def reconcile(world: World, ingress: dict[str, Any]) -> None:
    if not is_nginx_class(ingress) or ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return
    address = load_balancer_ip(world)
    if address is not None:
        world.kube.put({**ingress, "status": {"loadBalancer": {"ingress": [{"ip": address}]}}})
