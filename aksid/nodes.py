"""Which nodes a DaemonSet must run on, and whether a pod is ready — the scheduler's rules, simplified."""

from __future__ import annotations

from typing import Any

# A DaemonSet controller adds these tolerations to its pods by itself.
_DAEMONSET_TOLERATED = frozenset({
    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
})


def is_linux(node: dict[str, Any]) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    os_name = labels.get("kubernetes.io/os") or labels.get("beta.kubernetes.io/os")
    return os_name == "linux" or (os_name is None and node.get("status", {}).get("nodeInfo", {}).get(
        "operatingSystem") == "linux")


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    if taint.get("key") in _DAEMONSET_TOLERATED:
        return True
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return True
        if toleration.get("key") != taint.get("key"):
            continue
        if toleration.get("operator") == "Exists" or toleration.get("value") == taint.get("value"):
            return True
    return False


def _matches_expression(labels: dict[str, str], expression: dict[str, Any]) -> bool:
    key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return True  # Gt/Lt are not used for placement of system DaemonSets; do not exclude on them


def admits(node: dict[str, Any], pod_spec: dict[str, Any]) -> bool:
    """nodeSelector, required node affinity and NoSchedule/NoExecute taints."""
    labels = node.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    terms = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    if terms and not any(
        all(_matches_expression(labels, e) for e in term.get("matchExpressions") or []) for term in terms
    ):
        return False
    tolerations = pod_spec.get("tolerations") or []
    return all(
        _tolerates(tolerations, taint)
        for taint in node.get("spec", {}).get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def eligible_nodes(nodes: list[dict[str, Any]], pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in nodes if is_linux(node) and admits(node, pod_spec)]


def is_pod_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
