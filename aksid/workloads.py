"""Which pods belong to which workload: label selectors as the controllers apply them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A workload's LabelSelector: an empty one matches nothing (a controller with no selector owns no pods)."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    return label_selector_matches(selector, labels or {})


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics (matchLabels and matchExpressions, ANDed); an empty selector matches
    everything, as an aggregated ClusterRole's clusterRoleSelectors and Pod Security use it."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def selects(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether the workload's selector takes this pod (same namespace, labels match)."""
    return pod["metadata"].get("namespace") == workload["metadata"].get("namespace") and selector_matches(
        (workload.get("spec") or {}).get("selector"), pod["metadata"].get("labels"))


def pods_of(workload: Mapping[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod for pod in pods if selects(workload, pod)]


def owner_workload(pod: Mapping[str, Any], workloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((workload for workload in workloads if selects(workload, pod)), None)


def controller_of(obj: Mapping[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The object obj's controller ownerReference names, among candidates (by uid when both have one, else by name)."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        return None
    namespace = obj["metadata"].get("namespace")
    for candidate in candidates:
        meta = candidate["metadata"]
        if candidate.get("kind") != ref.get("kind") or meta.get("namespace") != namespace:
            continue
        if (meta.get("uid") == ref.get("uid")) if meta.get("uid") and ref.get("uid") else meta["name"] == ref.get("name"):
            return candidate
    return None


def owner_chain(pod: Mapping[str, Any], owners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pod's controllers, nearest first (ReplicaSet, then its Deployment; or a DaemonSet), as far as `owners` holds them.

    Read from ownerReferences, which the controllers set, never from the pod's labels, which anyone can copy.
    """
    chain: list[dict[str, Any]] = []
    current: Mapping[str, Any] = pod
    while len(chain) < 4 and (owner := controller_of(current, owners)) is not None:
        chain.append(owner)
        current = owner
    return chain
