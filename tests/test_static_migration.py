"""Static mode on the migration (issue #25 step 4): MIG-001 where the files hold the cutover (a plan or template that
turns the pod-identity add-on off while a manifest still binds a workload by pod identity), MIG-002 where they put an
identity on a node pool's VMs (a scale set's identities, the cluster's kubelet identity).

Each red case has its benign twin. The Terraform cases change the rendered tutorial (tests/test_static.py's
`rendered`); the ARM cases are real files of tests/corpus/ (SOURCES.md), run as tests/corpus/runner.py runs them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from .corpus.runner import load_cases, run_case
from .harness import Run
from .test_static import rendered, static

IDENTITY = "azurerm_user_assigned_identity.example_test_identity"
DNS_CLIENT = "3f9c2a71-6b4e-4d8a-9e1f-7c5b2d8a4e60"  # the healthy-wi ServiceAccounts' client-id annotation


def _checks(run: Run, check_id: str) -> list[dict[str, Any]]:
    return [c for c in run.results["checks"] if c["id"] == check_id]


def _one(run: Run, check_id: str) -> dict[str, Any]:
    [found] = _checks(run, check_id)
    return found


def _plan(repo: Path) -> dict[str, Any]:
    return json.loads((repo / "plan.json").read_text())


def _write_plan(repo: Path, plan: dict[str, Any]) -> None:
    (repo / "plan.json").write_text(json.dumps(plan, indent=2))


def _add(plan: dict[str, Any], address: str, kind: str, values: dict[str, Any], expressions: dict[str, Any]) -> None:
    name = address.split(".")[-1]
    plan["planned_values"]["root_module"]["resources"].append(
        {"address": address, "mode": "managed", "type": kind, "name": name, "values": values})
    plan["configuration"]["root_module"]["resources"].append(
        {"address": address, "mode": "managed", "type": kind, "name": name, "expressions": expressions})


def _resource(plan: dict[str, Any], address: str, section: str = "planned_values") -> dict[str, Any]:
    root = plan[section]["root_module"]["resources"]
    return next(r for r in root if r["address"] == address)


def _set_pod_identity(plan: dict[str, Any], enabled: bool) -> None:
    body = _resource(plan, "azapi_update_resource.pod_identity")["values"]["body"]
    body["properties"]["podIdentityProfile"]["enabled"] = enabled


def _without_azapi(plan: dict[str, Any]) -> None:
    for section in ("planned_values", "configuration"):
        resources = plan[section]["root_module"]["resources"]
        resources[:] = [r for r in resources if r["address"] != "azapi_update_resource.pod_identity"]


def _reference(address: str, attribute: str) -> dict[str, Any]:
    return {"references": [f"{address}.{attribute}", address]}


def _scale_set(plan: dict[str, Any], identity: str) -> None:
    """A node pool's scale set declared in the plan, carrying `identity` (an azurerm_user_assigned_identity address)."""
    _add(plan, "azurerm_linux_virtual_machine_scale_set.pool", "azurerm_linux_virtual_machine_scale_set",
         {"name": "aks-pool-vmss", "resource_group_name": "MC_rg-aks_hello-aks_westus2", "location": "westus2",
          "identity": [{"type": "UserAssigned"}]},
         {"name": {"constant_value": "aks-pool-vmss"},
          "resource_group_name": {"constant_value": "MC_rg-aks_hello-aks_westus2"},
          "identity": [{"type": {"constant_value": "UserAssigned"}, "identity_ids": _reference(identity, "id")}]})


def _other_identity(plan: dict[str, Any], name: str) -> str:
    address = f"azurerm_user_assigned_identity.{name.replace('-', '_')}"
    _add(plan, address, "azurerm_user_assigned_identity",
         {"name": name, "location": "westus2", "resource_group_name": "rg-aks"},
         {"name": {"constant_value": name}, "resource_group_name": {"constant_value": "rg-aks"}})
    return address


def _kubelet(plan: dict[str, Any], identity: str) -> None:
    """`kubelet_identity { user_assigned_identity_id = <identity>.id ... }` on the cluster."""
    cluster = _resource(plan, "azurerm_kubernetes_cluster.aks", "configuration")
    cluster["expressions"]["kubelet_identity"] = [{
        "client_id": _reference(identity, "client_id"), "object_id": _reference(identity, "principal_id"),
        "user_assigned_identity_id": _reference(identity, "id")}]


def _binding(repo: Path, namespace: str, selector: str, client_id: str = DNS_CLIENT) -> None:
    """An AzureIdentity and AzureIdentityBinding the repository holds itself (not the add-on's)."""
    identity_id = ("/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13/resourceGroups/rg-aks/providers/"
                   "Microsoft.ManagedIdentity/userAssignedIdentities/example-test-identity")
    (repo / "manifests" / "pod-identity.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
         "metadata": {"name": f"{selector}-identity", "namespace": namespace},
         "spec": {"type": 0, "resourceID": identity_id, "clientID": client_id}},
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
         "metadata": {"name": f"{selector}-held", "namespace": namespace},
         "spec": {"azureIdentity": f"{selector}-identity", "selector": selector}}]))


def _label(repo: Path, manifest: str, deployment: str, selector: str) -> None:
    """Put `aadpodidbinding: <selector>` on a Deployment's pod template (the workload binds by pod identity)."""
    path = repo / "manifests" / manifest
    documents = list(yaml.safe_load_all(path.read_text()))
    for document in documents:
        if (document or {}).get("kind") == "Deployment" and document["metadata"]["name"] == deployment:
            document["spec"]["template"]["metadata"].setdefault("labels", {})["aadpodidbinding"] = selector
    path.write_text(yaml.safe_dump_all(documents))


LEGACY_APP = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "legacy-app", "namespace": "kube-addons"},
    "spec": {"selector": {"matchLabels": {"app": "legacy-app"}},
             "template": {"metadata": {"labels": {"app": "legacy-app", "aadpodidbinding": "external-dns"}},
                          "spec": {"containers": [{"name": "app", "image": "example.test/legacy-app:1"}]}}}}


# -- the tutorial's own files ------------------------------------------------------------------------------------

def test_the_tutorials_files_hold_no_cutover_and_nothing_on_a_node_pool(tmp_path: Path) -> None:
    """The add-on stays on (the azapi body) and the plan declares no scale set and no kubelet identity: both checks
    are skipped, saying why, and the run stays green."""
    run = static(rendered("healthy", tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    mig1, mig2 = _one(run, "MIG-001"), _one(run, "MIG-002")
    assert mig1["outcome"] == "skipped" and "has not started" in mig1["message"]
    assert mig2["outcome"] == "skipped" and "put no identity on a node pool's VMs" in mig2["message"]
    assert "is the one AKS makes at deployment" in mig2["message"]
    assert run.results["migration"]["pod_identity_served"] is True


# -- MIG-001: the cutover in a plan ------------------------------------------------------------------------------

def test_a_plan_turning_the_add_on_off_while_a_manifest_binds_is_red(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    plan = _plan(repo)
    _set_pod_identity(plan, False)
    _write_plan(repo, plan)
    _binding(repo, "kube-addons", "external-dns")
    run = static(repo)
    [finding] = [c for c in _checks(run, "MIG-001") if c["outcome"] == "failed"]
    assert finding["subject"] == "deployment/kube-addons/external-dns", run.stdout
    message = finding["message"]
    assert "has podIdentityProfile.enabled false (plan.json:" in message and "no NMI runs in the manifests" in message
    assert "azapi_update_resource.pod_identity" in message  # where the plan turns it off, not the azurerm cluster
    assert "AzureIdentityBinding kube-addons/external-dns-held (manifests/pod-identity.yaml:" in message
    for missing in ("the cluster's OIDC issuer is not enabled", "ServiceAccount kube-addons/external-dns has no "
                    "azure.workload.identity/client-id annotation", 'does not carry azure.workload.identity/use: "true"'):
        assert missing in message
    files = {location["file"] for location in finding["locations"]}
    assert {"manifests/external-dns.yaml", "manifests/pod-identity.yaml"} <= files, finding["locations"]
    # cert-manager selects only the add-on's binding, which goes with the add-on: not MIG-001's subject
    assert [c["subject"] for c in _checks(run, "MIG-001")] == ["deployment/kube-addons/external-dns"]


def test_the_same_plan_with_the_add_on_kept_on_is_not_a_cutover(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    _binding(repo, "kube-addons", "external-dns")
    run = static(repo)
    mig1 = _one(run, "MIG-001")
    assert mig1["outcome"] == "skipped" and "has not started" in mig1["message"], run.stdout


def test_an_azurerm_cluster_without_an_azapi_body_does_not_say_whether_pod_identity_stays(tmp_path: Path) -> None:
    """azurerm has no pod identity setting: without the azapi body the plan leaves the add-on as it is, so nothing
    is a cutover and the migration section says it cannot tell."""
    repo = rendered("healthy", tmp_path)
    plan = _plan(repo)
    _without_azapi(plan)
    _write_plan(repo, plan)
    _binding(repo, "kube-addons", "external-dns")
    run = static(repo)
    assert _one(run, "MIG-001")["outcome"] == "skipped", run.stdout
    migration = run.results["migration"]
    assert migration["pod_identity_served"] is None
    assert "azurerm_kubernetes_cluster.aks is an azurerm_kubernetes_cluster" in migration["because"]
    # nor is it a finding that the add-on is off (`az aks pod-identity` set it, as the tutorial does): NMI-004 skips
    nmi = [c for c in _checks(run, "NMI-004") if c["subject"].startswith("managedcluster/")]
    assert [c["outcome"] for c in nmi] == ["skipped"], nmi
    assert "azurerm_kubernetes_cluster.aks is an azurerm_kubernetes_cluster" in nmi[0]["message"]


def _side_by_side(tmp_path: Path) -> Path:
    """healthy-wi (the add-on off, workload identity complete) where external-dns still binds by pod identity too."""
    repo = rendered("healthy-wi", tmp_path)
    _binding(repo, "kube-addons", "external-dns")
    _label(repo, "external-dns.yaml", "external-dns", "external-dns")
    return repo


def test_a_workload_with_its_workload_identity_path_passes_the_cutover(tmp_path: Path) -> None:
    run = static(_side_by_side(tmp_path))
    mig1 = _one(run, "MIG-001")
    assert (mig1["subject"], mig1["outcome"]) == ("deployment/kube-addons/external-dns", "passed"), run.stdout
    [entry] = [w for w in run.results["migration"]["workloads"] if w["workload"].endswith("/external-dns")]
    assert entry["state"] == "side by side"


def test_beside_it_a_workload_without_one_is_red(tmp_path: Path) -> None:
    repo = _side_by_side(tmp_path)
    (repo / "manifests" / "legacy-app.yaml").write_text(yaml.safe_dump(LEGACY_APP))
    run = static(repo)
    outcomes = {c["subject"]: c for c in _checks(run, "MIG-001")}
    assert outcomes["deployment/kube-addons/external-dns"]["outcome"] == "passed", run.stdout
    red = outcomes["deployment/kube-addons/legacy-app"]
    assert red["outcome"] == "failed"
    assert "ServiceAccount kube-addons/default (Kubernetes makes it) has no" in red["message"]
    assert any(location["file"] == "manifests/legacy-app.yaml" for location in red["locations"])


# -- MIG-002: a plan's kubelet identity and scale sets -----------------------------------------------------------

def test_the_dns_identity_as_the_plans_kubelet_identity_is_red(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    plan = _plan(repo)
    _kubelet(plan, IDENTITY)
    _write_plan(repo, plan)
    run = static(repo)
    finding = _one(run, "MIG-002")
    assert (finding["subject"], finding["outcome"]) == ("kubelet/hello-aks", "failed"), run.stdout
    assert "the kubelet identity of cluster hello-aks (plan.json:" in finding["message"]
    assert "identity example-test-identity (the DNS identity; it holds DNS Zone Contributor on" in finding["message"]
    assert finding["locations"][0]["address"] == "azurerm_kubernetes_cluster.aks"
    assert "kubelet_identity" in (finding["fix"] or "")


def test_a_kubelet_identity_of_its_own_passes(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    plan = _plan(repo)
    _kubelet(plan, _other_identity(plan, "hello-aks-kubelet"))
    _write_plan(repo, plan)
    run = static(repo)
    finding = _one(run, "MIG-002")
    assert (finding["subject"], finding["outcome"]) == ("kubelet/hello-aks", "passed"), run.stdout
    assert any("hello-aks-kubelet: kubelet" in (e.get("note") or "") for e in finding["evidence"])


def test_the_dns_identity_on_a_plans_scale_set_after_the_cutover_is_red(tmp_path: Path) -> None:
    repo = rendered("healthy-wi", tmp_path)  # the azapi body turns the add-on off
    plan = _plan(repo)
    _scale_set(plan, IDENTITY)
    _write_plan(repo, plan)
    run = static(repo)
    finding = _one(run, "MIG-002")
    assert (finding["subject"], finding["outcome"]) == ("scaleset/aks-pool-vmss", "failed"), run.stdout
    message = finding["message"]
    assert "identity example-test-identity (the DNS identity;" in message
    assert "azurerm_linux_virtual_machine_scale_set.pool" in message and "podIdentityProfile.enabled false" in message
    assert finding["locations"][0]["address"] == "azurerm_linux_virtual_machine_scale_set.pool"


def test_while_the_plan_keeps_pod_identity_on_nmi_coverage_is_a_live_question(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    plan = _plan(repo)
    _scale_set(plan, IDENTITY)
    _write_plan(repo, plan)
    run = static(repo)
    finding = _one(run, "MIG-002")
    assert (finding["subject"], finding["outcome"]) == ("scaleset/aks-pool-vmss", "skipped"), run.stdout
    assert "the files keep pod identity on" in finding["message"]
    assert "needs a live environment" in finding["message"]


def test_a_scale_set_carrying_only_other_identities_passes(tmp_path: Path) -> None:
    repo = rendered("healthy-wi", tmp_path)
    plan = _plan(repo)
    _scale_set(plan, _other_identity(plan, "batch-identity"))
    _write_plan(repo, plan)
    run = static(repo)
    finding = _one(run, "MIG-002")
    assert (finding["subject"], finding["outcome"]) == ("scaleset/aks-pool-vmss", "passed"), run.stdout


# -- real files (tests/corpus/cases.yaml) ------------------------------------------------------------------------

CASES = {case.name: case for case in load_cases()}


@pytest.mark.parametrize(("name", "check_id", "outcome", "phrases"), [
    ("mig-wi-sample-cutover-demo-still-bound", "MIG-001", "failed",
     ["deployment/default/demo",
      "cluster aks1 has podIdentityProfile.enabled false (arm/azure-ad-workload-identity-mi-azuredeploy.json:",
      "AzureIdentityBinding default/demo-azure-id-binding (manifests/aad-pod-identity-demo-aadpodidentitybinding.yaml:1)",
      "ServiceAccount default/default (Kubernetes makes it) has no azure.workload.identity/client-id annotation"]),
    ("mig-wi-sample-add-on-on-demo-bound", "MIG-001", "skipped", ["has not started", "deployment/default/demo"]),
    ("mig-avm-kubelet-is-the-dns-identity", "MIG-002", "failed",
     ["the kubelet identity of cluster aks1 (arm/avm-res-managed-cluster-main-2025-10.json:",
      "identity id-dns (the DNS identity"]),
    ("mig-avm-kubelet-of-its-own", "MIG-002", "passed", []),
    ("mig-avm-scale-set-carries-the-workload-identity", "MIG-002", "failed",
     ["scale set aks-nodepool1-31718369-vmss (arm/avm-res-virtual-machine-scale-set-main.json:",
      "identity aks1WorkloadIdentity (the DNS identity;", "turns pod identity off"]),
    ("mig-avm-scale-set-add-on-on", "MIG-002", "skipped", ["the files keep pod identity on", "needs a live environment"]),
])
def test_real_files_give_the_migration_verdicts(name: str, check_id: str, outcome: str, phrases: list[str],
                                                tmp_path: Path) -> None:
    verdicts = run_case(CASES[name], tmp_path)
    assert verdicts.checks.get(check_id) == outcome, verdicts.output[-3000:]
    said = " ".join(verdicts.messages[check_id])
    for phrase in phrases:
        assert phrase in said, said
