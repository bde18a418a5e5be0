"""MIG-002 and the IMDS model it rests on: an identity assigned to a node pool's scale set answers IMDS for every pod
of those nodes unless NMI intercepts there (Azure IMDS knows VMs, not pods); the check names what stays reachable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid.sandbox.scenario import load_scenario

from .harness import aksid

DNS_CLIENT = "3f9c2a71-6b4e-4d8a-9e1f-7c5b2d8a4e60"
KUBELET_CLIENT = "6e1b9d47-2c8f-4a35-8b7e-d93f0a1c5b82"
SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
VMSS = (f"/subscriptions/{SUB}/resourceGroups/MC_rg-aks_hello-aks_westus2/providers/Microsoft.Compute/"
        "virtualMachineScaleSets/aks-nodepool1-31718369-vmss")
CLUSTER = f"/subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/hello-aks"
NODE = "aks-nodepool1-31718369-vmss00000"


def _world(name: str, tmp_path: Path):
    from aksid.sandbox.armapi import ArmStore
    from aksid.sandbox.controllers.world import World
    from aksid.sandbox.kubeapi import KubeStore

    scenario = load_scenario(name)
    return World(KubeStore(scenario.kube_objects), ArmStore(scenario.azure_resources), tmp_path, None)


def _pod(node: str, namespace: str = "default") -> dict[str, Any]:
    """A pod bound to nothing (no aadpodidbinding label), on `node`."""
    return {"metadata": {"name": "curious", "namespace": namespace, "labels": {"app": "curious"}},
            "spec": {"nodeName": node}}


def _asks(world, pod: dict[str, Any], client_id: str | None) -> tuple[int, Any, str]:
    from aksid.sandbox.controllers import nmi

    return nmi.answer(world, pod, "true", client_id)


# -- the IMDS model ------------------------------------------------------------------------------------------


def test_a_scale_set_identity_answers_every_pod_when_nmi_is_gone(tmp_path: Path) -> None:
    world = _world("mig-dns-identity-left-on-scale-set", tmp_path)
    status, body, who = _asks(world, _pod(NODE + "0"), DNS_CLIENT)
    assert (status, who) == (200, "imds") and body["client_id"] == DNS_CLIENT
    status, body, who = _asks(world, _pod(NODE + "0"), None)  # two identities there: IMDS wants a client id
    assert (status, who) == (400, "imds") and "Multiple user assigned identities" in body["error_description"]


def test_an_identity_removed_from_the_scale_set_is_not_found_and_the_kubelets_stays(tmp_path: Path) -> None:
    world = _world("healthy-wi", tmp_path)
    assert _asks(world, _pod(NODE + "1"), DNS_CLIENT)[:1] == (400,)
    status, body, _who = _asks(world, _pod(NODE + "1"), None)  # only the kubelet identity is left: IMDS hands it out
    assert status == 200 and body["client_id"] == KUBELET_CLIENT


def test_nmi_intercepting_keeps_the_scale_sets_identity_from_an_unbound_pod(tmp_path: Path) -> None:
    world = _world("healthy", tmp_path)
    status, _body, who = _asks(world, _pod(NODE + "0"), DNS_CLIENT)
    assert (status, who) == (404, "nmi")


def test_imds_answers_on_the_node_nmi_misses_and_only_there(tmp_path: Path) -> None:
    world = _world("nmi-missing-on-a-node", tmp_path)
    assert _asks(world, _pod(NODE + "1"), DNS_CLIENT)[::2] == (200, "imds")
    assert _asks(world, _pod(NODE + "0"), DNS_CLIENT)[::2] == (404, "nmi")


def test_imds_hands_out_the_nodes_own_scale_sets_identities(tmp_path: Path) -> None:
    """Two pools, the DNS identity on one scale set only: a pod on the other pool's node cannot get it."""
    from aksid.sandbox.controllers.identities import node_pool_identities

    world = _world("nmi-spot-pool-not-tolerated", tmp_path)
    spot = next(r for r in world.arm.resources() if r.get("name") == "aks-spotpool-27493015-vmss")
    spot["identity"]["userAssignedIdentities"] = {k: v for k, v in spot["identity"]["userAssignedIdentities"].items()
                                                  if k.endswith("hello-aks-agentpool")}
    world.arm.put(spot)
    on_spot = [i["properties"]["clientId"] for i in node_pool_identities(world, "aks-spotpool-27493015-vmss000000")]
    on_pool1 = [i["properties"]["clientId"] for i in node_pool_identities(world, NODE + "0")]
    assert on_pool1 == [DNS_CLIENT, KUBELET_CLIENT]  # the kubelet identity last, as a leaky NMI's answer expects
    assert on_spot == [KUBELET_CLIENT]
    assert _asks(world, _pod("aks-spotpool-27493015-vmss000000"), DNS_CLIENT)[0] == 400


# -- MIG-002 -------------------------------------------------------------------------------------------------


def _mig(run) -> list[dict[str, Any]]:
    return [c for c in run.results["checks"] if c["id"] == "MIG-002"]


def _variant(tmp_path: Path, base: str, azure_patches: list[dict[str, Any]]) -> Path:
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump({"name": f"{base}-variant", "description": "MIG-002 variant", "base": base,
                                    "expect": {"failed": []}, "azure": {"patch": azure_patches}}))
    return path


def test_red_names_identity_scale_set_rights_nodes_and_the_command(tmp_path: Path) -> None:
    run = aksid("demo", "--scenario", "mig-dns-identity-left-on-scale-set", "--reports-dir", str(tmp_path),
                reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    (finding,) = _mig(run)
    assert finding["outcome"] == "failed"
    for words in ("example-test-identity", DNS_CLIENT, "aks-nodepool1-31718369-vmss", "DNS Zone Contributor on",
                  "dnszones/example.test", "3 of its 3 node(s)"):
        assert words in finding["message"], (words, finding["message"])
    assert finding["fix"] == (
        "az vmss identity remove --resource-group MC_rg-aks_hello-aks_westus2 --name aks-nodepool1-31718369-vmss "
        f"--identities /subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/example-test-identity")
    notes = [e.get("note", "") for e in finding["evidence"]]
    assert "hello-aks-agentpool: kubelet (information): no role assignment aksid read" in notes


def test_kubelet_and_addon_identities_are_information_not_findings(tmp_path: Path) -> None:
    """healthy-wi (no NMI) with an enabled add-on whose identity AKS put on the scale set: listed, with its rights."""
    addon = (f"/subscriptions/{SUB}/resourcegroups/MC_rg-aks_hello-aks_westus2/providers/"
             "Microsoft.ManagedIdentity/userAssignedIdentities/azurekeyvaultsecretsprovider-hello-aks")
    ids = {"principalId": "5c1e7a3b-9d2f-4b68-8e4a-0f7d3c9b1a26", "clientId": "a94d2e6f-3b7c-4f15-9a8e-6d2c0b5f7e31"}
    scenario = _variant(tmp_path, "healthy-wi", [
        {"id": CLUSTER, "merge": {"properties": {"addonProfiles": {"azureKeyvaultSecretsProvider": {
            "enabled": True, "config": {"enableSecretRotation": "false"},
            "identity": {"resourceId": addon, "objectId": ids["principalId"], "clientId": ids["clientId"]}}}}}},
        {"id": VMSS, "merge": {"identity": {"userAssignedIdentities": {addon: ids}}}},
    ])
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(tmp_path / "r"), reports=tmp_path / "r")
    assert run.code == 0, run.stdout + run.stderr
    (result,) = _mig(run)
    assert result["outcome"] == "passed", result
    notes = [e.get("note", "") for e in result["evidence"]]
    assert any(n.startswith("azurekeyvaultsecretsprovider-hello-aks: add-on azureKeyvaultSecretsProvider "
                            "(information)") for n in notes), notes
    assert any(n.startswith("hello-aks-agentpool: kubelet (information)") for n in notes), notes


@pytest.mark.parametrize("where", ["cluster", "pool"])
def test_aks_imds_restriction_keeps_the_left_identity_unreachable(tmp_path: Path, where: str) -> None:
    """AKS docs, "Block pod access to the IMDS endpoint" (preview): podLinkLocalAccess None on the network profile
    (or the agent pool) keeps pods without hostNetwork from IMDS, so the identity left behind is not reachable."""
    if where == "cluster":
        merge = {"properties": {"networkProfile": {"podLinkLocalAccess": "None"}}}
    else:
        profile = next(r for r in load_scenario("healthy-wi").azure_resources if r["id"] == CLUSTER)
        pools = [dict(p, podLinkLocalAccess="None") for p in profile["properties"]["agentPoolProfiles"]]
        merge = {"properties": {"agentPoolProfiles": pools}}
    scenario = _variant(tmp_path, "mig-dns-identity-left-on-scale-set", [{"id": CLUSTER, "merge": merge}])
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(tmp_path / "r"), reports=tmp_path / "r")
    assert run.code == 0, run.stdout + run.stderr
    (result,) = _mig(run)
    assert result["outcome"] == "passed", result
    assert any("IMDS restriction" in e.get("note", "") for e in result["evidence"])
    if where == "pool":
        return
    # live: the sandbox's nodes drop a pod's requests to IMDS, so the probe asking for the DNS identity gets no answer
    run = aksid("demo", "--mode", "provision", "--scenario", str(scenario), "--reports-dir", str(tmp_path / "p"), "--",
                "--aksid-set", "provision_timeout=20", reports=tmp_path / "p")
    assert run.code == 0, run.stdout + run.stderr
    assert {c["outcome"] for c in run.results["checks"] if c["id"] == "PROBE-005"} == {"passed"}
    probe = json.loads((tmp_path / "p" / "snapshot.json").read_text())["provision"]["probes"]["probe-imds"]["value"]
    assert probe["status"] is None and probe["asked_as"]["status"] is None, probe
    assert "RemoteDisconnected" in probe["asked_as"]["error"], probe


# -- the collector -------------------------------------------------------------------------------------------


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code, self._body = status, body

    def json(self) -> dict[str, Any]:
        return self._body


def test_the_collector_follows_next_links_through_the_arm_pipeline() -> None:
    """VirtualMachineScaleSets_List pages with nextLink, as ARM does; every page goes through the client's pipeline."""
    from types import SimpleNamespace

    from aksid.collect.arm import COMPUTE_API_VERSION, ArmCollector

    asked: list[str] = []
    pages = {f"/subscriptions/{SUB}/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets"
             f"?api-version={COMPUTE_API_VERSION}": {"value": [{"name": "a"}], "nextLink": "https://arm/next?page=2"},
             "https://arm/next?page=2": {"value": [{"name": "b"}]}}

    def send(request: Any) -> _Response:
        asked.append(request.url)
        return _Response(200, pages[request.url])

    fake = SimpleNamespace(dns=SimpleNamespace(_send_request=send), target=SimpleNamespace(subscription_id=SUB))
    fake._get = lambda url: ArmCollector._get(fake, url)  # type: ignore[attr-defined]
    assert [s["name"] for s in ArmCollector._list_scale_sets(fake, "MC_rg")] == ["a", "b"]  # type: ignore[arg-type]
    assert len(asked) == 2


def test_the_collector_reports_a_missing_node_resource_group_as_absent() -> None:
    from types import SimpleNamespace

    from azure.core.exceptions import ResourceNotFoundError

    from aksid.collect.arm import ArmCollector

    class _NotFound(_Response):
        headers: dict[str, str] = {}
        reason = "Not Found"

        def text(self) -> str:
            return '{"error": {"code": "ResourceGroupNotFound", "message": "Resource group \'MC_rg\' could not be found."}}'

    fake = SimpleNamespace(dns=SimpleNamespace(_send_request=lambda request: _NotFound(404, {})),
                           target=SimpleNamespace(subscription_id=SUB))
    fake._get = lambda url: ArmCollector._get(fake, url)  # type: ignore[attr-defined]
    with pytest.raises(ResourceNotFoundError):
        ArmCollector._list_scale_sets(fake, "MC_rg")  # type: ignore[arg-type]
