"""Static mode on what plans and templates leave open until apply: ids built as Azure builds them, unknowns judged
on what is known, errors only where a verdict hangs on them, objects located by identity, live settings unread.

The plans here are shaped as `terraform show -json` writes them (references list the attribute and then the
resource; a module output is reached as `module.NAME.OUTPUT`); the real-file corpus is tests/test_corpus.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aksid.collect.static.arm_expressions import Scope, Unknown, evaluate
from aksid.collect.static.plan import read_plan

from .harness import aksid
from .test_static import rendered, static

SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"


def _resource(address: str, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": kind, "name": address.split(".")[-1], "values": values}


def _config(address: str, kind: str, expressions: dict[str, Any]) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": kind, "name": address.split(".")[-1],
            "expressions": expressions}


def _ref(*references: str) -> dict[str, Any]:
    return {"references": list(references)}


def _add_assignment(repo: Path, name: str, role: str, scope_refs: list[str] | None, principal_refs: list[str],
                    extra_resources: list[tuple[dict[str, Any], dict[str, Any]]] = ()) -> None:
    """One more azurerm_role_assignment in the rendered plan, its scope and principal known only by reference."""
    plan = json.loads((repo / "plan.json").read_text())
    planned = plan["planned_values"]["root_module"]["resources"]
    configured = plan["configuration"]["root_module"]["resources"]
    for resource, config in extra_resources:
        planned.append(resource)
        configured.append(config)
    planned.append(_resource(f"azurerm_role_assignment.{name}", "azurerm_role_assignment",
                             {"role_definition_name": role}))
    expressions = {"principal_id": _ref(*principal_refs), "role_definition_name": {"constant_value": role}}
    if scope_refs is not None:
        expressions["scope"] = _ref(*scope_refs)
    configured.append(_config(f"azurerm_role_assignment.{name}", "azurerm_role_assignment", expressions))
    (repo / "plan.json").write_text(json.dumps(plan, indent=2))


def _dns_identity(repo: Path) -> str:
    plan = json.loads((repo / "plan.json").read_text())
    return next(r["address"] for r in plan["planned_values"]["root_module"]["resources"]
                if r["type"] == "azurerm_user_assigned_identity")


RG = (_resource("azurerm_resource_group.dns", "azurerm_resource_group", {"name": "rg-dns", "location": "westus2"}),
      _config("azurerm_resource_group.dns", "azurerm_resource_group", {"name": {"constant_value": "rg-dns"}}))


def test_a_resource_group_id_is_built_from_its_name_and_a_broad_role_there_is_a_finding(tmp_path: Path) -> None:
    """Contributor on `azurerm_resource_group.dns.id`: the id Terraform computes at apply is the group's, and the
    finding names the address (it was a false `error` "cannot be resolved")."""
    repo = rendered("healthy", tmp_path)
    identity = _dns_identity(repo)
    _add_assignment(repo, "dns_rg", "Contributor", ["azurerm_resource_group.dns.id", "azurerm_resource_group.dns"],
                    [f"{identity}.principal_id", identity], [RG])
    run = static(repo)
    outcomes = {c["id"]: c for c in run.results["checks"] if c["outcome"] in ("failed", "error")}
    assert set(outcomes) == {"RBAC-002"} and outcomes["RBAC-002"]["outcome"] == "failed", run.stdout
    assert f"/subscriptions/{SUB}/resourceGroups/rg-dns" in outcomes["RBAC-002"]["message"]
    assert outcomes["RBAC-002"]["locations"][0]["address"] == "azurerm_role_assignment.dns_rg"


def test_a_role_no_allowance_names_is_a_finding_at_an_unknown_scope(tmp_path: Path) -> None:
    """Owner at a scope the plan cannot resolve (a `local`): a finding whatever the scope, never an error."""
    repo = rendered("healthy", tmp_path)
    identity = _dns_identity(repo)
    _add_assignment(repo, "owner", "Owner", ["local.scope"], [f"{identity}.principal_id", identity])
    run = static(repo)
    [finding] = [c for c in run.results["checks"] if c["outcome"] in ("failed", "error")]
    assert (finding["id"], finding["outcome"]) == ("RBAC-002", "failed"), run.stdout
    assert "Owner" in finding["message"] and "not resolvable from the plan" in finding["message"]


def test_an_allowed_role_at_an_unknown_scope_is_an_error_naming_the_address(tmp_path: Path) -> None:
    """Reader (allowed on the DNS group only) at a scope the plan cannot resolve: the verdict hangs on it."""
    repo = rendered("healthy", tmp_path)
    identity = _dns_identity(repo)
    _add_assignment(repo, "reader", "Reader", ["local.scope"], [f"{identity}.principal_id", identity])
    run = static(repo)
    [result] = [c for c in run.results["checks"] if c["outcome"] in ("failed", "error")]
    assert (result["id"], result["outcome"]) == ("RBAC-002", "error"), run.stdout
    assert "azurerm_role_assignment.reader" in result["message"] and "Azure" not in result["message"]
    assert "the plan" in result["message"] or "the files" in result["message"]


def test_an_unresolvable_assignment_of_someone_else_changes_nothing(tmp_path: Path) -> None:
    """AcrPull for a principal the plan cannot resolve (a `local`), at an unresolvable scope: no check judges it
    (AcrPull cannot write DNS), so the run stays green."""
    repo = rendered("healthy", tmp_path)
    _add_assignment(repo, "acr", "AcrPull", ["local.acr_id"], ["local.pull_principal"])
    run = static(repo)
    assert run.code == 0 and not run.ids_with("error") and not run.ids_with("failed"), run.stdout


def test_an_unresolvable_dns_writer_makes_only_the_kubelet_check_an_error(tmp_path: Path) -> None:
    """Network Contributor (writes Microsoft.Network/*) for an unresolvable principal at an unresolvable scope: it
    may be the kubelet's on the zone (RBAC-003 error, naming it); RBAC-001 still passes on the known assignment."""
    repo = rendered("healthy", tmp_path)
    _add_assignment(repo, "net", "Network Contributor", ["local.scope"], ["local.principal"])
    run = static(repo)
    errors = {c["id"]: c["message"] for c in run.results["checks"] if c["outcome"] == "error"}
    assert set(errors) <= {"RBAC-002", "RBAC-003"} and "RBAC-003" in errors, run.stdout
    assert "azurerm_role_assignment.net" in errors["RBAC-003"]
    assert "RBAC-001" in run.ids_with("passed")


def test_module_outputs_and_variables_resolve_through_the_module_call(tmp_path: Path) -> None:
    """The zone made in a child module, its id passed out by an output and the group name in by a variable."""
    plan = {
        "format_version": "1.2",
        "planned_values": {"root_module": {"resources": [
            _resource("azurerm_role_assignment.zone", "azurerm_role_assignment",
                      {"role_definition_name": "DNS Zone Contributor", "principal_id": "11111111-2222-3333-4444-555555555555"})],
            "child_modules": [{"address": "module.dns", "resources": [
                _resource("module.dns.azurerm_dns_zone.this", "azurerm_dns_zone", {"name": "example.test"})]}]}},
        "configuration": {"root_module": {
            "resources": [_config("azurerm_role_assignment.zone", "azurerm_role_assignment",
                                  {"scope": _ref("module.dns.zone_id", "module.dns")})],
            "module_calls": {"dns": {"source": "./dns", "expressions": {"group": {"constant_value": "rg-dns"}},
                                     "module": {
                "outputs": {"zone_id": {"expression": _ref("azurerm_dns_zone.this.id", "azurerm_dns_zone.this")}},
                "resources": [_config("azurerm_dns_zone.this", "azurerm_dns_zone",
                                      {"name": {"constant_value": "example.test"},
                                       "resource_group_name": _ref("var.group")})],
                "variables": {"group": {}}}}}}},
        "prior_state": {"values": {"root_module": {"resources": [
            {"address": "data.azurerm_client_config.current", "mode": "data", "type": "azurerm_client_config",
             "values": {"subscription_id": SUB}}]}}},
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    found = read_plan(path, "00000000-0000-0000-0000-000000000000", None)
    assignment = next(r for r in found.resources if r["type"].endswith("roleAssignments"))
    zone = next(r for r in found.resources if r["type"].endswith("dnszones"))
    expected = f"/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/example.test"
    assert assignment["properties"]["scope"] == zone["id"] == expected


def test_static_mode_reads_no_kubeconfig_or_credential_setting(tmp_path: Path) -> None:
    """A CI runner's KUBECONFIG naming a missing file, a token-file credential without a file: none of it is read."""
    repo = rendered("healthy", tmp_path)
    with (repo / "env.sh").open("a") as env:
        env.write('export KUBECONFIG="/nowhere/kubeconfig"\nexport AKSID_AZURE_CREDENTIAL="token-file"\n'
                  'export AKSID_TRUST_STORE="/nowhere/roots.pem"\n')
    run = static(repo)
    assert run.code == 0, run.stdout + run.stderr


def test_a_finding_is_located_at_its_object_not_at_namesakes(tmp_path: Path) -> None:
    """A ServiceAccount and a Service named like the faulty Deployment, in other files: only the Deployment's file."""
    repo = rendered("rbac-issuer-client-secret", tmp_path)
    run = static(repo)
    [finding] = [c for c in run.results["checks"] if c["outcome"] == "failed"]
    kinds = {place.get("kind") for place in finding["locations"]}
    assert kinds and kinds <= {"ClusterIssuer", "Issuer"}, finding["locations"]


def test_unrendered_charts_are_one_sentence_saying_how_to_render(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    (repo / "manifests" / "nmi.yaml").write_text("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n"
                                                 "  name: {{ template \"aad-pod-identity.nmi.fullname\" . }}\n")
    run = static(repo)
    assert run.code == 4 and "nmi.yaml:4 is an unrendered template" in run.stderr and "helm template" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_arm_expressions_as_bicep_writes_them() -> None:
    scope = Scope(SUB, "rg-aks", None, {"defender": False, "oms": True, "zone": "example.test"})
    value = evaluate("[if(and(parameters('defender'), parameters('oms')), union(createObject('a', 1), "
                     "createObject('b', 2)), createObject('kubernetesVersion', '1.29', 'b', parameters('zone')))]", scope)
    assert value == {"kubernetesVersion": "1.29", "b": "example.test"}
    principal = evaluate("[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id'), "
                         "'2023-01-31').principalId]", scope)
    assert isinstance(principal, Unknown) and principal.comparable
    assert evaluate("[subscription().Id]", scope) == f"/subscriptions/{SUB}"  # members are case-insensitive
    assert isinstance(evaluate("[utcNow()]", scope), Unknown)


def test_a_template_with_comments_and_a_nested_grant_is_read(tmp_path: Path) -> None:
    """`//` comments, a nested deployment (inner scope, its own resource group) granting DNS Zone Contributor on the
    zone to the cluster's kubelet identity: RBAC-003 fails, located at the nested resource."""
    kubelet = ("[reference(resourceId('Microsoft.ContainerService/managedClusters', 'hello-aks'), '2024-02-01')"
               ".identityProfile.kubeletidentity.objectId]")
    zone_contributor = ("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
                        "'befefa01-2a29-4197-83a8-272ff33ce314')]")
    schema = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    grant = {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01",
             "scope": "Microsoft.Network/dnsZones/example.test", "name": "[guid('kubelet-dns')]",
             "properties": {"roleDefinitionId": zone_contributor, "principalId": "[parameters('principal')]"}}
    document = {"$schema": schema, "contentVersion": "1.0.0.0", "resources": [
        {"type": "Microsoft.ContainerService/managedClusters", "apiVersion": "2024-02-01", "name": "hello-aks",
         "location": "westus2", "identity": {"type": "SystemAssigned"}, "properties": {"dnsPrefix": "hello"}},
        {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "dns-grant",
         "resourceGroup": "rg-dns",
         "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                        "parameters": {"principal": {"value": kubelet}},
                        "template": {"$schema": schema, "contentVersion": "1.0.0.0",
                                     "parameters": {"principal": {"type": "string"}}, "resources": [grant]}}}]}
    lines = json.dumps(document, indent=2).splitlines()
    template = "\n".join([lines[0], "  // the cluster, and a grant in a nested deployment /* as Bicep writes */",
                          *lines[1:]]) + "\n"
    line = next(i for i, text in enumerate(template.splitlines(), 1) if "roleAssignments" in text)
    (tmp_path / "main.json").write_text(template)
    (tmp_path / "env.sh").write_text(f'export AZ_DNS_DOMAIN=example.test\nexport AZ_DNS_RESOURCE_GROUP=rg-dns\n'
                                     f'export AZ_AKS_RESOURCE_GROUP=rg-aks\nexport AZ_AKS_CLUSTER_NAME=hello-aks\n'
                                     f'export AZ_SUBSCRIPTION_ID={SUB}\n')
    run = aksid("run", "--aksid-mode", "static", "--aksid-env-file", str(tmp_path / "env.sh"),
                "--aksid-arm-template", str(tmp_path / "main.json"), "--aksid-source-root", str(tmp_path),
                "--aksid-reports-dir", str(tmp_path / "reports"), "-q", reports=tmp_path / "reports")
    [finding] = [c for c in run.results["checks"] if c["outcome"] in ("failed", "error")]
    assert (finding["id"], finding["outcome"]) == ("RBAC-003", "failed"), run.stdout
    assert finding["locations"][0]["file"] == "main.json" and finding["locations"][0]["line"] == line


def test_the_tutorial_as_a_repository_holds_it_without_secrets_is_green(tmp_path: Path) -> None:
    """Repositories hold no Secrets (external-dns' azure.json is made with `kubectl create secret`): the healthy
    environment's files with every Secret document removed stay green, RBAC-004 skipping what is not there."""
    import yaml

    repo = rendered("healthy", tmp_path)
    removed = 0
    for path in (repo / "manifests").rglob("*.yaml"):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        kept = [d for d in documents if d.get("kind") != "Secret"]
        removed += len(documents) - len(kept)
        path.write_text(yaml.safe_dump_all(kept)) if kept else path.unlink()
    run = static(repo)
    assert removed and run.code == 0, run.stdout
    assert not run.ids_with("failed") and not run.ids_with("error")


def test_static_and_replay_runs_import_neither_cloud_client(tmp_path: Path) -> None:
    """Files only: the Kubernetes and Azure clients are imported by the live collectors alone (a static run
    spent 0.4 s importing them)."""
    import subprocess
    import sys

    from .harness import REPO, clean_env

    repo = rendered("healthy", tmp_path)
    common = ["-q", "-p", "no:cacheprovider", "--aksid-reports-dir", str(repo / "reports")]
    for args in (["--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"), "--aksid-manifests",
                  str(repo / "manifests"), "--aksid-plan", str(repo / "plan.json")],
                 ["--aksid-replay", str(repo / "reports" / "snapshot.json")]):
        process = subprocess.run([sys.executable, "-X", "importtime", "-m", "aksid", "run", *args, *common], cwd=REPO,
                                 env=clean_env(), capture_output=True, text=True, timeout=240)
        assert process.returncode in (0, 1) and "INTERNALERROR" not in process.stdout, process.stdout[-2000:]
        imported = [line.rsplit("|", 1)[-1].strip() for line in process.stderr.splitlines() if "|" in line]
        assert not [m for m in imported if m.split(".")[0] == "kubernetes" or m.startswith(("azure.identity",
                                                                                            "azure.mgmt"))], args
