"""BIND/RBAC building blocks, and what needs Secret contents: skipped without the opt-in, judged with it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from aksid.arm_ids import CONTRIBUTOR, DNS_ZONE_CONTRIBUTOR, READER, can_write_dns, contains, role_guid, same_id

from .harness import aksid

ZONE = "/subscriptions/s/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/example.test"


def _role(actions: list[str], not_actions: list[str] | None = None) -> dict[str, object]:
    return {"properties": {"permissions": [{"actions": actions, "notActions": not_actions or []}]}}


@pytest.mark.parametrize(
    ("guid", "definition", "writes"),
    [
        (DNS_ZONE_CONTRIBUTOR, None, True),
        (CONTRIBUTOR, None, True),
        (READER, _role(["*/read"]), False),
        ("custom", _role(["Microsoft.Network/dnsZones/*"]), True),
        ("custom", _role(["microsoft.network/*"]), True),
        ("custom", _role(["*"], ["Microsoft.Network/*"]), False),
        ("custom", _role(["Microsoft.Network/dnsZones/read", "Microsoft.Network/dnsZones/A/read"]), False),
    ],
)
def test_which_roles_can_write_the_zone(guid: str, definition: dict[str, object] | None, writes: bool) -> None:
    assert can_write_dns(guid, definition) is writes


def test_ids_compare_as_arm_means_them() -> None:
    assert same_id(ZONE, ZONE.replace("dnszones", "dnsZones").replace("resourceGroups", "resourcegroups") + "/")
    assert contains("/subscriptions/s", ZONE) and contains("/subscriptions/s/resourceGroups/rg-dns", ZONE)
    assert not contains("/subscriptions/s/resourceGroups/rg-dns2", ZONE)
    assert role_guid(f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{READER}") == READER
    assert role_guid(f"/providers/Microsoft.Authorization/roleDefinitions/{READER.upper()}".lower()) == READER


def test_secret_based_check_is_skipped_without_the_opt_in(tmp_path: Path) -> None:
    run = aksid("demo", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    # (PROBE/CANARY, provision mode's, are skipped in attach mode for that reason: tests/test_provision.py; WI, workload
    # identity's, on the pod-identity tutorial, and MIG, before the migration started: tests/test_scenarios.py)
    skipped = [c for c in run.results["checks"] if c["outcome"] == "skipped"
               and c["area"] not in ("PROBE", "CANARY", "WI", "MIG")]
    assert sorted((c["id"], c["subject"]) for c in skipped) == [
        ("ISS-004", "secret/hello/tls-secret"), ("RBAC-004", "secret/kube-addons/external-dns")]
    assert all("--aksid-read-secrets" in c["message"] for c in skipped)


def test_azure_json_client_secret_is_found_with_the_opt_in(tmp_path: Path) -> None:
    planted = "sp-secret-never-printed-41c9"
    azure_json = {"tenantId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "subscriptionId": "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13",
                  "resourceGroup": "rg-dns", "aadClientId": "7d2c9e41-3b6a-4f85-a0e7-1c9b5d3f8e24", "aadClientSecret": planted}
    scenario = tmp_path / "azure-json-secret.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "external-dns-client-secret", "description": "external-dns' azure.json carries a service principal secret",
        "base": "healthy", "expect": {"failed": ["RBAC-004"]},
        "kube": {"patch": [{"apiVersion": "v1", "kind": "Secret", "namespace": "kube-addons", "name": "external-dns",
                            "merge": {"data": {"azure.json": base64.b64encode(json.dumps(azure_json).encode()).decode()}}}]},
    }))
    reports = tmp_path / "reports"
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(reports), "--", "--aksid-read-secrets", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    failed = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert [(c["id"], c["subject"]) for c in failed] == [("RBAC-004", "secret/kube-addons/external-dns")]
    assert "aadClientSecret" in failed[0]["message"]
    # the evidence names the Secret's key as the snapshot holds it: redacted, the setting's name kept
    judged = [i for i in failed[0]["evidence"] if i.get("field") == 'data["azure.json"].redactedJson']
    assert judged and judged[0]["source"] == "kube v1/Secret kube-addons/external-dns", failed[0]["evidence"]
    assert judged[0]["value"]["aadClientSecret"] == "<redacted>"
    assert "Secret kube-addons/external-dns" in failed[0]["fix"]
    for path in reports.iterdir():
        assert planted not in path.read_text(), f"{path.name} leaks the planted secret"
