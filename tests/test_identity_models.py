"""Which identity model binds each workload: detection from the evidence alone (no sandbox)."""

from __future__ import annotations

from typing import Any

import pytest

from aksid.config import ConfigError, resolve_target
from aksid.identity_models import (
    POD_IDENTITY,
    WORKLOAD_IDENTITY,
    describe,
    identity_models,
    skip_reason,
    workload_models,
)
from aksid.snapshot import Snapshot, error, new_document, ok

CLIENT = "3f9c2a71-6b4e-4d8a-9e1f-7c5b2d8a4e60"
IDENTITY_ID = "/subscriptions/s/resourcegroups/rg-aks/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dns-id"
PI = "aadpodidentity.k8s.io/v1"


def _deployment(name: str, labels: dict[str, str], account: str = "", env: list[dict[str, str]] | None = None,
                namespace: str = "kube-addons") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name, **labels}},
                "spec": {"serviceAccountName": account or name,
                         "containers": [{"name": name, "image": "x", "env": env or []}]}}}}


def _account(name: str, client_id: str | None = None, namespace: str = "kube-addons") -> dict[str, Any]:
    annotations = {"azure.workload.identity/client-id": client_id} if client_id else {}
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations}}


def _binding(name: str) -> list[dict[str, Any]]:
    meta = {"namespace": "kube-addons"}
    return [{"apiVersion": PI, "kind": "AzureIdentity", "metadata": {**meta, "name": name},
             "spec": {"type": 0, "clientID": CLIENT, "resourceID": IDENTITY_ID}},
            {"apiVersion": PI, "kind": "AzureIdentityBinding", "metadata": {**meta, "name": f"{name}-binding"},
             "spec": {"azureIdentity": name, "selector": name}}]


def snapshot(*, addon: bool = False, wi_enabled: bool = False, objects: tuple[dict[str, Any], ...] = (),
             cluster: dict[str, Any] | None = None, kube_error: bool = False) -> Snapshot:
    document = new_document({}, "attach", "2026-12-01T00:00:00+00:00")
    properties = {"podIdentityProfile": {"enabled": addon},
                  "securityProfile": {"workloadIdentity": {"enabled": wi_enabled}}}
    document["azure"] = {
        "managedCluster": cluster if cluster is not None else ok({"properties": properties}),
        "identities": ok([{"id": IDENTITY_ID, "name": "dns-id", "properties": {"clientId": CLIENT}}]),
    }
    kinds = {"v1/ServiceAccount": "ServiceAccount", "apps/v1/Deployment": "Deployment",
             "apps/v1/DaemonSet": "DaemonSet", f"{PI}/AzureIdentity": "AzureIdentity",
             f"{PI}/AzureIdentityBinding": "AzureIdentityBinding"}
    for key, kind in kinds.items():
        document["kube"][key] = error("the API answered 403") if kube_error else ok(
            [o for o in objects if o["kind"] == kind])
    return Snapshot(document)


def test_pod_identity_only_the_tutorial() -> None:
    snap = snapshot(addon=True, objects=(*_binding("external-dns"), _deployment("external-dns", {
        "aadpodidbinding": "external-dns"}), _account("external-dns")))
    models = identity_models(snap)
    assert models["cluster"] == POD_IDENTITY
    [entry] = models["workloads"]
    assert entry["workload"] == "deployment/kube-addons/external-dns" and entry["model"] == POD_IDENTITY
    assert entry["bindings"][0]["identity"] == "dns-id" and "external-dns-binding" in entry["bindings"][0]["via"]
    assert skip_reason(snap, POD_IDENTITY) is None
    assert "no workload identity in use" in (skip_reason(snap, WORKLOAD_IDENTITY) or "")


def test_workload_identity_from_an_annotation_even_with_the_feature_flag_off() -> None:
    """A self-installed webhook needs no AKS flag: the ServiceAccount annotation alone says workload identity is used."""
    snap = snapshot(objects=(_deployment("external-dns", {"azure.workload.identity/use": "true"}),
                             _account("external-dns", CLIENT)))
    models = identity_models(snap)
    assert models["cluster"] == WORKLOAD_IDENTITY
    assert models["workload_identity"]["present"] is True and "ServiceAccount" in models["workload_identity"]["because"]
    [entry] = models["workloads"]
    assert entry["model"] == WORKLOAD_IDENTITY and entry["bindings"][0]["client_id"] == CLIENT
    assert "no pod identity in use" in (skip_reason(snap, POD_IDENTITY) or "")


def test_half_migrated_cluster_is_both_and_each_workload_has_its_own_model() -> None:
    snap = snapshot(addon=True, wi_enabled=True, objects=(
        *_binding("cert-manager"), _deployment("cert-manager", {"aadpodidbinding": "cert-manager"}),
        _account("cert-manager"),
        _deployment("external-dns", {"azure.workload.identity/use": "true"}), _account("external-dns", CLIENT)))
    models = identity_models(snap)
    assert models["cluster"] == "both"
    assert {e["workload"]: e["model"] for e in models["workloads"]} == {
        "deployment/kube-addons/cert-manager": POD_IDENTITY, "deployment/kube-addons/external-dns": WORKLOAD_IDENTITY}
    assert skip_reason(snap, POD_IDENTITY) is None and skip_reason(snap, WORKLOAD_IDENTITY) is None


def test_a_workload_on_both_models_mid_migration() -> None:
    snap = snapshot(addon=True, wi_enabled=True, objects=(
        *_binding("external-dns"), _account("external-dns", CLIENT),
        _deployment("external-dns", {"aadpodidbinding": "external-dns", "azure.workload.identity/use": "true"})))
    [entry] = workload_models(snap)
    assert entry.model == "both" and entry.models == {POD_IDENTITY, WORKLOAD_IDENTITY}


def test_leftover_bindings_keep_pod_identity_present_with_the_addon_off() -> None:
    snap = snapshot(objects=tuple(_binding("cert-manager")))
    assert skip_reason(snap, POD_IDENTITY) is None
    assert identity_models(snap)["pod_identity"]["because"] == "1 AzureIdentityBinding object(s) exist"


def test_label_without_a_client_id_binds_nothing_but_an_explicit_azure_client_id_does() -> None:
    labelled = {"azure.workload.identity/use": "true"}
    snap = snapshot(wi_enabled=True, objects=(
        _deployment("unannotated", labelled), _account("unannotated"),
        _deployment("by-env", labelled, env=[{"name": "AZURE_CLIENT_ID", "value": CLIENT}]), _account("by-env")))
    [entry] = workload_models(snap)
    assert entry.name == "by-env" and "AZURE_CLIENT_ID" in entry.bindings[0].via


def test_neither_model() -> None:
    snap = snapshot(objects=(_deployment("hello", {}), _account("hello")))
    models = identity_models(snap)
    assert models["cluster"] == "none" and models["workloads"] == []
    assert skip_reason(snap, POD_IDENTITY) and skip_reason(snap, WORKLOAD_IDENTITY)


def test_unreadable_evidence_never_skips_a_check() -> None:
    """When neither the cluster nor the cluster's objects can be read, the checks run (and report `error`)."""
    snap = snapshot(cluster=error("ARM answered 403"), kube_error=True)
    assert skip_reason(snap, POD_IDENTITY) is None and skip_reason(snap, WORKLOAD_IDENTITY) is None
    assert identity_models(snap)["cluster"] == "unknown"


def test_describe() -> None:
    assert describe(set()) == "none"
    assert describe({POD_IDENTITY}) == POD_IDENTITY
    assert describe({POD_IDENTITY, WORKLOAD_IDENTITY}) == "both"


_REQUIRED = {"AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "aks",
             "AZ_SUBSCRIPTION_ID": "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"}


def test_wi_allowed_defaults_to_the_tutorials_service_accounts() -> None:
    target = resolve_target(environ=dict(_REQUIRED))
    assert target.allowed_service_accounts() == {("kube-addons", "external-dns"), ("kube-addons", "cert-manager")}
    target = resolve_target(environ=dict(_REQUIRED), overrides=["wi_allowed=dns/external-dns"])
    assert target.allowed_service_accounts() == {("dns", "external-dns")}


def test_wi_allowed_entries_must_name_a_namespace_and_a_service_account() -> None:
    with pytest.raises(ConfigError, match="wi_allowed.*NAMESPACE/SERVICEACCOUNT"):
        resolve_target(environ=dict(_REQUIRED), overrides=["wi_allowed=external-dns"])
