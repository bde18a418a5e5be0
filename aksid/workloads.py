"""Which pods belong to which workload: label selectors as the controllers apply them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A LabelSelector (matchLabels + matchExpressions); an empty selector matches nothing, as for workloads."""
    if not selector:
        return False
    labels = labels or {}
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
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def selects(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether the workload's selector takes this pod (same namespace, labels match)."""
    return pod["metadata"].get("namespace") == workload["metadata"].get("namespace") and selector_matches(
        (workload.get("spec") or {}).get("selector"), pod["metadata"].get("labels"))


def pods_of(workload: Mapping[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod for pod in pods if selects(workload, pod)]


def owner_workload(pod: Mapping[str, Any], workloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((workload for workload in workloads if selects(workload, pod)), None)
