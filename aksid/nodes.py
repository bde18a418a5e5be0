"""Which nodes a DaemonSet may run on (and why not), and whether a pod is ready — the scheduler's rules, simplified."""

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


def why_not_admitted(node: dict[str, Any], pod_spec: dict[str, Any]) -> str | None:
    """Why a pod with this spec cannot run on the node (nodeSelector, required node affinity, a
    NoSchedule/NoExecute taint it does not tolerate), in words for a message; None when it can."""
    labels = node.get("metadata", {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            found = f"{key}={labels[key]}" if key in labels else f"no label {key}"
            return f"its nodeSelector {key}={value} leaves the node out (the node has {found})"
    terms = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    if terms and not any(
        all(_matches_expression(labels, e) for e in term.get("matchExpressions") or []) for term in terms
    ):
        failing = [_expression_text(e) for term in terms for e in term.get("matchExpressions") or []
                   if not _matches_expression(labels, e)]
        return f"its required node affinity ({'; '.join(failing)}) leaves the node out"
    tolerations = pod_spec.get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return f"it does not tolerate the node's taint {taint_text(taint)}"
    return None


def _expression_text(expression: dict[str, Any]) -> str:
    values = ",".join(expression.get("values") or [])
    return f"{expression.get('key')} {expression.get('operator')}{f' [{values}]' if values else ''}"


def taint_text(taint: dict[str, Any]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def admits(node: dict[str, Any], pod_spec: dict[str, Any]) -> bool:
    """nodeSelector, required node affinity and NoSchedule/NoExecute taints."""
    return why_not_admitted(node, pod_spec) is None


def is_virtual(node: dict[str, Any]) -> bool:
    """A virtual-kubelet node (AKS virtual nodes, ACI): its pods run outside the node pool, with no IMDS of ours."""
    labels = node.get("metadata", {}).get("labels") or {}
    taints = node.get("spec", {}).get("taints") or []
    return labels.get("type") == "virtual-kubelet" or any(
        (t.get("key") or "").startswith("virtual-kubelet.io/") for t in taints)


def is_pod_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
