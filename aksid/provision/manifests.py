"""What the provisioner creates: every object carries the run label and its creation time."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

RUN_LABEL = "aksid.io/run"
ROLE_LABEL = "aksid.io/role"  # probe-bound, probe-unbound, probe-elsewhere, probe-wi-*, canary
CREATED_ANNOTATION = "aksid.io/created"
SELECTOR_LABEL = "aadpodidbinding"
WI_USE_LABEL = "azure.workload.identity/use"  # the webhook mutates only pods carrying it
CANARY_SECRET = "aksid-canary-tls"
CANARY_APP = "aksid-canary"


def probe_source() -> str:
    return resources.files("aksid.provision").joinpath("probe_script.py").read_text(encoding="utf-8")


def run_namespace(run_id: str) -> str:
    return f"aksid-{run_id}"


def _metadata(run_id: str, name: str, role: str, namespace: str | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {RUN_LABEL: run_id, ROLE_LABEL: role, **(labels or {})},
        "annotations": {CREATED_ANNOTATION: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace(run_id: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(run_id, run_namespace(run_id), "namespace")}


def probe_pod(run_id: str, role: str, namespace_name: str, selector: str | None, image: str,
              ask_as: str | None = None) -> dict[str, Any]:
    """A pod that runs the probe script once; `selector` is the binding's aadpodidbinding value, or None; `ask_as`
    a client id it also asks for by name (the DNS identity's, for the probes that must be refused)."""
    labels = {SELECTOR_LABEL: selector} if selector else {}
    return _probe(run_id, role, namespace_name, labels, image, *(("ask-as", ask_as) if ask_as else ()))


def wi_probe_pod(run_id: str, role: str, namespace_name: str, service_account: str, client_id: str | None,
                 image: str) -> dict[str, Any]:
    """A pod that exchanges its ServiceAccount token once, labelled for the workload identity webhook.

    `client_id` set asks for that identity whatever the ServiceAccount's annotation says (the webhook never
    overrides a variable the pod sets): what a pod of another ServiceAccount would do to reach the DNS identity.
    None takes the annotation's, as the allowed workload does."""
    pod = _probe(run_id, role, namespace_name, {WI_USE_LABEL: "true"}, image, "workload-identity")
    pod["spec"]["serviceAccountName"] = service_account
    if client_id:
        pod["spec"]["containers"][0]["env"] = [{"name": "AZURE_CLIENT_ID", "value": client_id}]
    return pod


def _probe(run_id: str, role: str, namespace_name: str, labels: dict[str, str], image: str,
           *args: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _metadata(run_id, f"aksid-{role}-{run_id}", role, namespace_name, labels),
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [{
                "name": "probe", "image": image, "command": ["python3", "-c", probe_source(), *args],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 65532,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def canary_objects(run_id: str, host: str, issuer: str, image: str) -> list[dict[str, Any]]:
    """Deployment + Service + Ingress shaped like the demo app, in the run's own namespace."""
    ns = run_namespace(run_id)
    selector = {"app": CANARY_APP}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _metadata(run_id, CANARY_APP, "canary", ns, selector),
        "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": {**selector, RUN_LABEL: run_id}},
                              "spec": {"containers": [{"name": "hello", "image": image,
                                                       "ports": [{"containerPort": 8080}]}]}}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(run_id, CANARY_APP, "canary", ns),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {**_metadata(run_id, CANARY_APP, "canary", ns),
                     "annotations": {"kubernetes.io/ingress.class": "nginx", "cert-manager.io/cluster-issuer": issuer,
                                     CREATED_ANNOTATION: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}},
        "spec": {"ingressClassName": "nginx",
                 "tls": [{"hosts": [host], "secretName": CANARY_SECRET}],
                 "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                     "service": {"name": CANARY_APP, "port": {"number": 80}}}}]}}]},
    }
    return [deployment, service, ingress]
