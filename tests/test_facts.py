"""The facts layer (aksid/facts.py): one derivation of the pods of a workload and of an identity's role assignments,
which the checks, the chain picture, the allowed path and the diff all call."""

from __future__ import annotations

from typing import Any

from aksid import facts
from aksid.snapshot import SCHEMA, Snapshot


def _pod(name: str, namespace: str, labels: dict[str, str], owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner}]
    return {"metadata": meta}


def _snapshot(kube: dict[str, list[dict[str, Any]]], azure: dict[str, Any] | None = None) -> Snapshot:
    return Snapshot({"schema": SCHEMA, "target": {}, "kube": {k: {"status": "ok", "value": v} for k, v in kube.items()},
                     "azure": {k: {"status": "ok", "value": v} for k, v in (azure or {}).items()}})


def test_the_pods_of_a_workload_are_those_its_selector_takes_in_its_namespace() -> None:
    deployment = {"kind": "Deployment", "metadata": {"name": "external-dns", "namespace": "kube-addons"},
                  "spec": {"selector": {"matchLabels": {"app": "external-dns"},
                                        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["canary"]}]}}}
    pods = [_pod("external-dns-6f9c8d7b45-2jspv", "kube-addons", {"app": "external-dns", "pod-template-hash": "6f9c8d7b45"},
                 "external-dns-6f9c8d7b45"),
            _pod("external-dns-canary", "kube-addons", {"app": "external-dns", "tier": "canary"}),
            _pod("external-dns-elsewhere", "default", {"app": "external-dns"})]
    snapshot = _snapshot({"v1/Pod": pods, "apps/v1/Deployment": [deployment]})
    taken = facts.workload_pods(snapshot, deployment)
    assert [p["metadata"]["name"] for p in taken] == ["external-dns-6f9c8d7b45-2jspv"]
    assert facts.find_workload(snapshot, "Deployment", "kube-addons", "external-dns") is deployment
    assert facts.workload_pods(snapshot, {**deployment, "spec": {"selector": {}}}) == []  # an empty selector takes none
    # the pod side: its workload by name, from its owner (the diff's key), or itself when bare
    assert facts.workload_of(taken[0]) == "deployment/kube-addons/external-dns"
    assert facts.workload_of(pods[1]) == "pod/kube-addons/external-dns-canary"


def test_an_identitys_role_assignments_match_its_principal_in_any_case() -> None:
    principal = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    placeholder = "(known after apply: azurerm_user_assigned_identity.dns.principal_id)"
    assignments = [{"id": "a", "properties": {"principalId": principal.lower()}},
                   {"id": "b", "properties": {"PrincipalId": principal}},
                   {"id": "c", "properties": {"principalId": "another"}},
                   {"id": "d", "properties": {"principalId": placeholder}},
                   {"id": "e", "properties": {"principalId": placeholder.replace(".dns.", ".DNS.")}},
                   {"id": "f", "properties": {}}]
    snapshot = _snapshot({}, {"roleAssignments": assignments})
    assert [a["id"] for a in facts.role_assignments(snapshot, principal)] == ["a", "b"]
    assert [a["id"] for a in facts.role_assignments(snapshot, placeholder)] == ["d"]  # a placeholder matches itself only
    assert facts.role_assignments(snapshot, None) == [] and facts.role_assignments(snapshot, "") == []
    assert facts.principal_of(assignments[1]) == principal.lower() and facts.principal_of(assignments[5]) == ""
