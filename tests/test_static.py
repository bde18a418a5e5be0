"""Static mode: the repository's files judged by the same checks, findings at file and line, no socket."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from aksid.catalogue import load_catalogue
from aksid.sandbox.render import render
from aksid.sandbox.scenario import load_scenario

from .harness import REPO, Run, aksid, clean_env

STATIC_IDS = {entry.id for entry in load_catalogue() if "static" in entry.modes}
# red scenarios whose misconfiguration lives in a repository (manifests or the plan)
IN_REPO = ["rbac-identity-contributor-on-dns-rg", "rbac-kubelet-dns-zone-contributor", "rbac-zone-role-missing",
           "rbac-issuer-client-secret", "iss-solver-wrong-zone", "iss-ingress-uses-staging",
           "iss-prod-issuer-uses-staging-server", "nmi-kubenet-allowed", "nmi-pod-identity-profile-disabled",
           "bind-broad-exception", "wi-credential-default-serviceaccount", "wi-credential-other-cluster-issuer",
           "wi-workload-identity-disabled"]
CI = REPO / "examples" / "ci"


def static(repo: Path, *extra: str, plan: bool = True) -> Run:
    args = ["run", "--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"), "--aksid-manifests",
            str(repo / "manifests"), "--aksid-source-root", str(repo), "--aksid-reports-dir", str(repo / "reports"), "-q"]
    return aksid(*args, *(["--aksid-plan", str(repo / "plan.json")] if plan else []), *extra, reports=repo / "reports")


def rendered(name: str, tmp_path: Path) -> Path:
    render(load_scenario(name), tmp_path / name)
    return tmp_path / name


def test_static_on_the_rendered_tutorial_is_green(tmp_path: Path) -> None:
    run = static(rendered("healthy", tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    assert run.results["mode"] == "static"
    assert {"BIND-001", "BIND-002", "BIND-003", "BIND-004", "RBAC-001", "RBAC-002", "RBAC-003", "RBAC-004", "ISS-002",
            "ISS-003", "NMI-004", "NMI-005"} <= run.ids_with("passed")
    live = [c for c in run.results["checks"] if c["id"] not in STATIC_IDS]
    assert live and all(c["outcome"] == "skipped" and "needs a live environment" in c["message"] for c in live)


def test_static_on_the_migrated_tutorial_is_green(tmp_path: Path) -> None:
    """healthy-wi as a repository holds it: azurerm_federated_identity_credential with the cluster's
    oidc_issuer_url by reference (unknown until apply on both sides, so they compare equal)."""
    run = static(rendered("healthy-wi", tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    assert {"WI-001", "WI-003", "WI-005", "RBAC-001", "RBAC-002"} <= run.ids_with("passed")
    assert run.results["identity_models"]["cluster"] == "workload-identity"
    pod_identitys = [c for c in run.results["checks"] if c["area"] in ("BIND",)]
    assert all(c["outcome"] == "skipped" and "no pod identity in use" in c["message"] for c in pod_identitys)


@pytest.mark.parametrize("name", IN_REPO)
def test_static_gives_the_attach_verdict_for_what_a_repo_holds(name: str, tmp_path: Path) -> None:
    run = static(rendered(name, tmp_path))
    expected = set(load_scenario(name).expect_failed) & STATIC_IDS
    assert run.code == 1 and run.ids_with("failed") == expected and run.ids_with("error") == set(), run.stdout
    assert all(c.get("locations") for c in run.results["checks"] if c["outcome"] == "failed"), run.stdout


HOST_NETWORK = """\
---
# Source: batch/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: node-exporter-ish, namespace: hello}
spec:
  selector: {matchLabels: {app: ne}}
  template:
    metadata: {labels: {app: ne}}
    spec:
      hostNetwork: true
      containers: [{name: c, image: busybox}]
"""


def test_a_host_network_deployment_is_red_at_its_line_in_sarif(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    (repo / "manifests" / "batch.yaml").write_text("# a chart of the team's\n" + HOST_NETWORK)
    run = static(repo)
    assert run.ids_with("failed") == {"BIND-004"}, run.stdout
    sarif = json.loads((repo / "reports" / "results.sarif").read_text())
    [result] = sarif["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "manifests/batch.yaml" and physical["region"]["startLine"] == 4
    assert "manifests/batch.yaml:4 (batch/templates/deployment.yaml)" in run.stdout


def test_contributor_on_the_dns_group_by_reference_names_the_plan_address(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    plan = json.loads((repo / "plan.json").read_text())
    identity = next(r["address"] for r in plan["planned_values"]["root_module"]["resources"]
                    if r["type"] == "azurerm_user_assigned_identity")
    values = {"role_definition_name": "Contributor",
              "scope": "/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13/resourceGroups/rg-dns"}
    plan["planned_values"]["root_module"]["resources"].append(
        {"address": "azurerm_role_assignment.dns_rg", "mode": "managed", "type": "azurerm_role_assignment",
         "name": "dns_rg", "values": values})
    plan["configuration"]["root_module"]["resources"].append(
        {"address": "azurerm_role_assignment.dns_rg", "mode": "managed", "type": "azurerm_role_assignment",
         "name": "dns_rg", "expressions": {"principal_id": {"references": [f"{identity}.principal_id", identity]}}})
    (repo / "plan.json").write_text(json.dumps(plan, indent=2))
    run = static(repo)
    [finding] = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    assert finding["id"] == "RBAC-002" and "Contributor at" in finding["message"]
    assert finding["locations"][0]["address"] == "azurerm_role_assignment.dns_rg"
    assert "azurerm_role_assignment.dns_rg" in run.stdout


def test_count_instances_and_child_modules_resolve(tmp_path: Path) -> None:
    """An identity made with `count` in a child module, referenced by a role assignment of the root module."""
    from aksid.collect.static.plan import read_plan

    sub = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
    plan = {"format_version": "1.2", "planned_values": {"root_module": {"resources": [
        {"address": "azurerm_role_assignment.zone", "type": "azurerm_role_assignment", "mode": "managed",
         "values": {"role_definition_name": "DNS Zone Contributor", "scope": f"/subscriptions/{sub}/resourceGroups/rg-dns"
                    "/providers/Microsoft.Network/dnszones/example.test"}}],
        "child_modules": [{"address": "module.identity", "resources": [
            {"address": "module.identity.azurerm_user_assigned_identity.this[0]", "mode": "managed",
             "type": "azurerm_user_assigned_identity", "values": {"name": "example-test-identity",
                                                                 "resource_group_name": "rg-aks"}}]}]}},
        # the root module reaches the child's identity through an output, as Terraform allows
        "configuration": {"root_module": {"resources": [
            {"address": "azurerm_role_assignment.zone", "expressions": {"principal_id": {"references": [
                "module.identity.principal_id", "module.identity"]}}}],
            "module_calls": {"identity": {"source": "./identity", "module": {
                "outputs": {"principal_id": {"expression": {"references": [
                    "azurerm_user_assigned_identity.this[0].principal_id", "azurerm_user_assigned_identity.this[0]",
                    "azurerm_user_assigned_identity.this"]}}},
                "resources": [{"address": "azurerm_user_assigned_identity.this", "type": "azurerm_user_assigned_identity",
                               "expressions": {"name": {"constant_value": "example-test-identity"}},
                               "count_expression": {"constant_value": 1}}]}}}}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    found = read_plan(path, sub, None)
    identity = next(r for r in found.resources if r["type"].endswith("userAssignedIdentities"))
    assignment = next(r for r in found.resources if r["type"].endswith("roleAssignments"))
    assert found.problems == []
    assert assignment["properties"]["principalId"] == identity["properties"]["principalId"]
    assert "module.identity.azurerm_user_assigned_identity.this[0].principal_id" in identity["properties"]["principalId"]


ARM_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"identityName": {"type": "string", "defaultValue": "example-test-identity"},
                   "zoneName": {"type": "string", "defaultValue": "example.test"}},
    "variables": {"contributor": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
                                 "'b24988ac-6180-42a0-ab88-20f7382dd24c')]",
                  "zoneContributor": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
                                     "'befefa01-2a29-4197-83a8-272ff33ce314')]"},
    "resources": [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "[parameters('identityName')]", "location": "westus2"},
        {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01",
         "scope": "[format('Microsoft.Network/dnsZones/{0}', parameters('zoneName'))]",
         "name": "[guid(parameters('identityName'), 'zone')]",
         "properties": {"roleDefinitionId": "[variables('zoneContributor')]", "principalType": "ServicePrincipal",
                        "principalId": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', "
                                       "parameters('identityName')), '2023-01-31').principalId]"}},
        {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01",
         "name": "[guid(parameters('identityName'), 'group')]",
         "properties": {"roleDefinitionId": "[variables('contributor')]", "principalType": "ServicePrincipal",
                        "principalId": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', "
                                       "parameters('identityName')), '2023-01-31').principalId]"}},
    ],
}


def test_an_arm_template_with_reference_principal_is_judged_the_same(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    (repo / "identity.json").write_text(json.dumps(ARM_TEMPLATE, indent=2))
    env = repo / "env.sh"
    env.write_text(env.read_text().replace('AZ_AKS_RESOURCE_GROUP="rg-aks"', 'AZ_AKS_RESOURCE_GROUP="rg-dns"'))
    run = static(repo, "--aksid-arm-template", str(repo / "identity.json"), plan=False)
    failed = {c["id"]: c for c in run.results["checks"] if c["outcome"] == "failed"}
    assert set(failed) == {"RBAC-002"}, run.stdout  # DNS Zone Contributor on the zone is fine; Contributor on the group is not
    assert failed["RBAC-002"]["locations"][0]["file"] == "identity.json"
    assert "resources[2]" in failed["RBAC-002"]["locations"][0]["address"]


FEDERATED_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"identityName": {"type": "string", "defaultValue": "example-test-identity"}},
    "resources": [{
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        "apiVersion": "2023-01-31",
        "name": "[format('{0}/{1}', parameters('identityName'), 'debug')]",
        "properties": {"issuer": "https://westus2.oic.prod-aks.azure.com/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/"
                                 "4e2b7d91-3c5a-4f8e-b6d1-9a0c2e7f5b38/",
                       "subject": "system:serviceaccount:default:default", "audiences": ["api://AzureADTokenExchange"]},
    }],
}


def test_a_federated_credential_in_an_arm_template_is_judged_with_the_plans_identity(tmp_path: Path) -> None:
    repo = rendered("healthy-wi", tmp_path)
    (repo / "federated.json").write_text(json.dumps(FEDERATED_TEMPLATE, indent=2))
    run = static(repo, "--aksid-arm-template", str(repo / "federated.json"))
    failed = {(c["id"], c["subject"]): c for c in run.results["checks"] if c["outcome"] == "failed"}
    assert list(failed) == [("WI-003", "federatedcredential/example-test-identity/debug")], run.stdout
    assert "default/default" in failed[("WI-003", "federatedcredential/example-test-identity/debug")]["message"]


@pytest.mark.parametrize(("writes", "phrase"), [
    ({"manifests/broken.yaml": "kind: Deployment\nmetadata: [\n"}, "manifests/broken.yaml:3 is not valid YAML"),
    ({"plan.json": json.dumps({"format_version": "2.0"})}, "has format_version 2.0; aksid reads 0.2 and 1.x"),
    ({"plan.json": "{not json"}, "plan.json:1 is not valid JSON"),
], ids=["broken-yaml", "plan-format-2", "plan-not-json"])
def test_malformed_inputs_give_one_sentence_and_exit_4(tmp_path: Path, writes: dict[str, str], phrase: str) -> None:
    repo = rendered("healthy", tmp_path)
    for name, text in writes.items():
        (repo / name).write_text(text)
    run = static(repo)
    assert run.code == 4 and phrase in run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    run = static(repo, "--aksid-plan", str(repo / "nowhere.json"))
    assert run.code == 4 and "nowhere.json cannot be read" in run.stderr


def test_static_opens_no_socket(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    (tmp_path / "nosocket.py").write_text(textwrap.dedent("""
        import socket
        def _refuse(*args, **kwargs):
            raise OSError("static mode must not open a socket")
        socket.socket.connect = _refuse
        socket.create_connection = _refuse
        socket.getaddrinfo = _refuse
    """))
    env = clean_env(PYTHONPATH=str(tmp_path))
    run = aksid("run", "-p", "nosocket", "--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"),
                "--aksid-manifests", str(repo / "manifests"), "--aksid-plan", str(repo / "plan.json"),
                "--aksid-reports-dir", str(repo / "reports"), "-q", reports=repo / "reports", env=env)
    assert run.code == 0, run.stdout + run.stderr


def test_secrets_in_the_files_are_redacted(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    planted = "file-Planted-secret-93af"
    (repo / "manifests" / "leaky.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure-sp", "namespace": "kube-addons"},
        "stringData": {"client-secret": planted, "azure.json": json.dumps({"aadClientSecret": planted})}}))
    run = static(repo)
    assert run.code == 0, run.stdout
    for path in (repo / "reports").iterdir():
        assert planted not in path.read_text(), path.name


@pytest.mark.parametrize("workflow", ["github-actions.yml", "azure-pipelines.yml"])
def test_the_ci_examples_run_against_their_fixtures(workflow: str, tmp_path: Path) -> None:
    document = yaml.safe_load((CI / workflow).read_text())
    steps = document["jobs"]["aksid"]["steps"] if "jobs" in document else document["steps"]
    scripts = [step.get("run") or step.get("script") or "" for step in steps]
    [command] = [line.strip() for script in scripts for line in script.splitlines() if line.strip().startswith("aksid run")]

    args = shlex.split(command)[1:]
    shutil.copytree(CI / "fixtures", tmp_path / "repo")  # the workflow's checkout, with what its steps wrote
    process = subprocess.run([sys.executable, "-m", "aksid", *args], cwd=tmp_path / "repo", env=clean_env(),
                             capture_output=True, text=True, timeout=240)
    assert process.returncode == 0, process.stdout + process.stderr
    reports = tmp_path / "repo" / "reports"
    assert (reports / "results.sarif").exists() and (reports / "junit.xml").exists()
