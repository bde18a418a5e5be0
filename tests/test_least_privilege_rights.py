"""The suite's own least privilege, proven as a cluster would: the sandbox authorizes a second identity (the
ServiceAccount aksid/aksid, and an Azure principal) by the shipped deploy/ files only, and aksid runs with it.

Static mode needs no rights at all (it reads files, never a cluster or ARM): tests/test_static.py.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid.paths import deploy_dir
from aksid.sandbox.arm_authz import load_roles, operation
from aksid.sandbox.armapi import ArmRequest
from aksid.sandbox.kube.authz import RbacAuthorizer, load_manifests, request_attributes, service_account_user
from aksid.sandbox.kube.errors import ApiError
from aksid.sandbox.serve import LEAST_PRIVILEGE_CLIENT_ID

from .harness import REPO, run_suites

SA_USER, SA_GROUPS = service_account_user("aksid", "aksid")
DEPLOY = deploy_dir()
SHIPPED_ROLES = {"aksid-reader", "aksid-secrets-reader", "aksid-provisioner"}
PROVISION_IDS = {"PROBE-001", "PROBE-002", "PROBE-005", "CANARY-001", "CANARY-002", "CANARY-003"}


def least_privilege(sandbox) -> Path:
    return sandbox.state_dir / "profile-least-privilege.yaml"


def restricted_requests(sandbox, since: int = 0) -> list[dict[str, Any]]:
    """The requests the least-privilege identity made (the log names its user; the admin's carry none)."""
    return [r for r in sandbox.requests()[since:] if r.get("user")]


def kube_verbs(requests: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(verb, resource[/subresource], path) of each kube request, as RBAC reads it."""
    found = []
    for r in requests:
        if r["server"] == "kube":
            a = request_attributes(SA_USER, SA_GROUPS, r["method"], r["path"])
            found.append((a.verb, f"{a.resource}/{a.subresource}" if a.subresource else a.resource, r["path"]))
    return found


def assert_within_shipped_rights(requests: list[dict[str, Any]]) -> None:
    """Every request is one the shipped files allow (so none was refused), and the kube verbs are only the shipped ones."""
    rbac = RbacAuthorizer.from_paths([DEPLOY])
    roles = load_roles([DEPLOY])
    shipped_verbs = {verb for doc in load_manifests([DEPLOY]) if doc.get("kind") == "ClusterRole"
                     for rule in doc.get("rules") or [] for verb in rule["verbs"]}
    assert requests, "the least-privilege identity made no request"
    assert [r for r in requests if r["status"] in (401, 403)] == []
    for r in requests:
        if r["server"] == "kube":
            attributes = request_attributes(SA_USER, SA_GROUPS, r["method"], r["path"])
            assert attributes.verb in shipped_verbs, r
            assert rbac.allows(attributes), r
        else:
            assert r["user"] == LEAST_PRIVILEGE_CLIENT_ID
            action, _scope = operation(ArmRequest.parse(r["method"], r["path"], "https://127.0.0.1"))
            assert r["method"] == "GET" and action.endswith("/read"), r
            assert any(role.permits(action) for role in roles), (action, r)


# -- attach and provision with the least-privilege identity -------------------------------------------------


@pytest.mark.parametrize("secrets", [False, True], ids=["attach", "attach-read-secrets"])
def test_attach_with_least_privilege_gives_the_admins_outcomes(healthy, tmp_path: Path, secrets: bool) -> None:
    extra = ["--aksid-read-secrets"] if secrets else []
    admin = run_suites("--aksid-profile", str(healthy.profile), *extra, reports=tmp_path / "admin")
    assert admin.code == 0, admin.stdout + admin.stderr
    before = len(healthy.requests())
    restricted = run_suites("--aksid-profile", str(least_privilege(healthy)), *extra, reports=tmp_path / "restricted")
    assert restricted.code == 0, restricted.stdout + restricted.stderr
    assert restricted.outcomes() == admin.outcomes()
    made = restricted_requests(healthy, before)
    assert {r["server"] for r in made} == {"kube", "arm"}
    assert_within_shipped_rights(made)
    # attach mode: one LIST per kind, nothing else (Secrets only with the opt-in)
    verbs = kube_verbs(made)
    assert {verb for verb, _resource, _path in verbs} == {"list"}
    assert ("secrets" in {resource for _verb, resource, _path in verbs}) is secrets


def test_provision_with_least_privilege_is_green_within_the_provisioner_role(healthy, tmp_path: Path) -> None:
    before = len(healthy.requests())
    run = run_suites("--aksid-profile", str(least_privilege(healthy)), "--aksid-mode", "provision", reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.ids_with("passed") >= PROVISION_IDS, run.stdout
    made = restricted_requests(healthy, before)
    assert_within_shipped_rights(made)
    verbs = {(verb, resource) for verb, resource, _path in kube_verbs(made)}
    assert {verb for verb, _resource in verbs} == {"list", "get", "create", "delete"}
    assert {resource for verb, resource in verbs if verb in ("create", "delete")} == {
        "namespaces", "pods", "services", "deployments", "ingresses"}
    assert ("get", "pods/log") in verbs


def test_the_reader_role_lists_exactly_what_the_collector_reads() -> None:
    from aksid.collect.kube import KINDS

    roles = {doc["metadata"]["name"]: doc for doc in load_manifests([DEPLOY]) if doc.get("kind") == "ClusterRole"}
    assert set(roles) == SHIPPED_ROLES

    def granted(role: str) -> dict[tuple[str, str], set[str]]:
        return {(group, resource): set(rule["verbs"]) for rule in roles[role]["rules"]
                for group in rule["apiGroups"] for resource in rule["resources"]}

    read = {(spec.api_version.rpartition("/")[0], spec.plural) for spec in KINDS if not spec.sensitive}
    assert granted("aksid-reader") == {key: {"get", "list"} for key in read}
    assert granted("aksid-secrets-reader") == {("", "secrets"): {"list"}}
    assert not any(rule.get("resourceNames") or "*" in json.dumps(rule) for role in roles.values()
                   for rule in role["rules"]), "no wildcard, no resourceNames"


# -- one right removed: the run turns red, with 403 named ---------------------------------------------------


def _without_kube_resource(rights: Path, resource: str) -> None:
    path = rights / "rbac.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    for doc in documents:
        if doc.get("kind") == "ClusterRole":
            for rule in doc["rules"]:
                rule["resources"] = [r for r in rule["resources"] if r != resource]
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def _without_arm_action(rights: Path, action: str) -> None:
    path = rights / "azure-role.json"
    role = json.loads(path.read_text())
    assert action in role["Actions"]
    role["Actions"] = [a for a in role["Actions"] if a != action]
    path.write_text(json.dumps(role, indent=2))


REMOVED = {
    # (how, what the errors must name, the checks that need that evidence)
    "replicasets": (lambda rights: _without_kube_resource(rights, "replicasets"),
                    'User "system:serviceaccount:aksid:aksid" cannot list resource "replicasets" in API group "apps" '
                    "at the cluster scope", {"BIND-004"}),
    "ingresses": (lambda rights: _without_kube_resource(rights, "ingresses"),
                  'cannot list resource "ingresses" in API group "networking.k8s.io" at the cluster scope',
                  {"DNS-002", "ISS-004"}),
    "role-definitions": (lambda rights: _without_arm_action(rights, "Microsoft.Authorization/roleDefinitions/read"),
                         "AuthorizationFailed", {"RBAC-003"}),
    "scale-sets": (lambda rights: _without_arm_action(rights, "Microsoft.Compute/virtualMachineScaleSets/read"),
                   "does not have authorization to perform action 'Microsoft.Compute/virtualMachineScaleSets/read'",
                   {"MIG-002"}),
}


@pytest.mark.parametrize("removed", sorted(REMOVED))
def test_a_missing_right_is_an_error_naming_403(sandbox_for, tmp_path: Path, removed: str) -> None:
    rights = tmp_path / "deploy"
    shutil.copytree(DEPLOY, rights)
    remove, named, needing = REMOVED[removed]
    remove(rights)
    scenario = tmp_path / "healthy-with-fewer-rights.yaml"
    scenario.write_text(yaml.safe_dump({"name": f"without-{removed}", "base": "healthy", "rights": str(rights)}))
    sandbox = sandbox_for(str(scenario))
    run = run_suites("--aksid-profile", str(least_privilege(sandbox)), reports=tmp_path / "reports")
    assert run.code == 1, run.stdout + run.stderr
    assert run.ids_with("failed") == set(), "missing evidence is an error, never a finding"
    errors = [c for c in run.results["checks"] if c["outcome"] == "error"]
    assert needing <= {c["id"] for c in errors}, run.stdout
    for check in errors:
        assert "403" in check["message"] and named in check["message"], check
    if removed == "role-definitions":
        assert ("does not have authorization to perform action 'Microsoft.Authorization/roleDefinitions/read' "
                "over scope '/subscriptions/") in errors[0]["message"]
    refused = [r for r in sandbox.requests() if r["status"] == 403]
    assert refused and all(r.get("user") for r in refused), "only the restricted identity is ever refused"


# -- in-cluster nightly: the manifests apply, the CronJob's account holds exactly the shipped roles ---------


def _apply(api, path: Path) -> None:
    from kubernetes import utils

    utils.create_from_yaml(api, yaml_file=str(path))


def test_deploy_files_apply_and_bind_the_cronjob_account_to_exactly_the_shipped_roles(sandbox_for) -> None:
    from kubernetes import client, config

    sandbox = sandbox_for("healthy")
    api = client.ApiClient(config.new_client_from_config(str(sandbox.kubeconfig)).configuration)
    for name in ("rbac.yaml", "rbac-read-secrets.yaml", "rbac-provision.yaml", "cronjob.yaml"):
        _apply(api, DEPLOY / name)
    rbac_api, batch = client.RbacAuthorizationV1Api(api), client.BatchV1Api(api)
    cronjob = batch.read_namespaced_cron_job("aksid", "aksid")
    pod = cronjob.spec.job_template.spec.template
    account = pod.spec.service_account_name
    assert (cronjob.metadata.namespace, account) == ("aksid", "aksid")
    assert pod.metadata.labels["azure.workload.identity/use"] == "true"
    sa = client.CoreV1Api(api).read_namespaced_service_account(account, "aksid")
    assert "azure.workload.identity/client-id" in sa.metadata.annotations
    bound = {b.role_ref.name for b in rbac_api.list_cluster_role_binding().items
             if any(s.kind == "ServiceAccount" and (s.namespace, s.name) == ("aksid", account) for s in b.subjects or [])}
    assert bound == SHIPPED_ROLES
    served = {r.metadata.name: r for r in rbac_api.list_cluster_role().items if r.metadata.name in SHIPPED_ROLES}
    shipped = {d["metadata"]["name"]: d for d in load_manifests([DEPLOY]) if d.get("kind") == "ClusterRole"}
    for name, role in served.items():
        assert [api.sanitize_for_serialization(rule) for rule in role.rules] == shipped[name]["rules"]


def test_the_suites_own_pod_is_not_flagged(sandbox_for, tmp_path: Path) -> None:
    """In-cluster, aksid's pod (namespace aksid, Workload Identity label, its own Azure identity) must not turn any
    BIND or WI check red: it carries no aadpodidbinding selector and no hostNetwork, and its ServiceAccount's client
    id is its own reader identity's, not the DNS identity's. Its Workload Identity needs the cluster's (an AKS cluster
    without it gives the pod no token), so the cluster is the half-migrated one, where both models' checks run."""
    from kubernetes import client, config

    sandbox = sandbox_for("benign-wi-half-migrated")
    api = client.ApiClient(config.new_client_from_config(str(sandbox.kubeconfig)).configuration)
    for name in ("rbac.yaml", "cronjob.yaml"):
        _apply(api, DEPLOY / name)
    cronjob = next(d for d in load_manifests([DEPLOY / "cronjob.yaml"]) if d["kind"] == "CronJob")
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"]["template"])
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "name": "aksid-29000000-abcde", "namespace": "aksid"}}
    client.CoreV1Api(api).create_namespaced_pod("aksid", pod)
    run = run_suites("--aksid-profile", str(least_privilege(sandbox)), reports=tmp_path)
    # the scenario's own finding (MIG-001: half-migrated, cert-manager would lose access at cutover), nothing else
    failed = {(c["id"], c["subject"]) for c in run.results["checks"] if c["outcome"] == "failed"}
    assert failed == {("MIG-001", "deployment/kube-addons/cert-manager")}, run.stdout + run.stderr
    assert run.ids_with("error") == set(), run.stdout + run.stderr
    assert not [c for c in run.results["checks"] if "aksid" in c["subject"].split("/")], "aksid's pod judged"
    snapshot = json.loads((tmp_path / "snapshot.json").read_text())
    pods = snapshot["kube"]["v1/Pod"]["value"]
    assert any(p["metadata"]["namespace"] == "aksid" for p in pods), "the suite's own pod was in the evidence"


# -- the image -----------------------------------------------------------------------------------------------


def test_dockerfile_installs_this_package_and_runs_aksid_run(tmp_path: Path) -> None:
    """No container runtime here: the build context the Dockerfile copies builds the package (suites, scenarios and
    deploy/ inside it), and the image's entry point is the console script's `aksid run`."""
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    assert ["ENTRYPOINT", '["aksid", "run"]'] in instructions
    assert any(kind == "RUN" and "pip install --no-cache-dir ." in rest for kind, rest in instructions)
    copies = [rest.split() for kind, rest in instructions if kind == "COPY"]
    sources = {name for *names, _dest in copies for name in names}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["aksid"] == "aksid.cli:main"
    assert set(project["tool"]["setuptools"]["package-dir"].values()) | {"pyproject.toml", "README.md"} <= sources
    context = tmp_path / "context"  # exactly what the COPY lines put in /src
    context.mkdir()
    for name in sources:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, context / name)
    built = tmp_path / "lib"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(built)],
                   cwd=context, check=True, capture_output=True, timeout=120)
    for inside in ("aksid/cli.py", "aksid/suites/test_bind.py", "aksid/fixtures/scenarios/healthy.yaml",
                   "aksid/deploy/rbac.yaml", "aksid/deploy/azure-role.json"):
        assert (built / inside).is_file(), inside
    probe = subprocess.run(
        [sys.executable, "-c", "from aksid.paths import deploy_dir, suites_dir; print(deploy_dir(), suites_dir())"],
        cwd=tmp_path, env={"PYTHONPATH": str(built), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60, check=True)
    assert probe.stdout.split() == [str(built / "aksid" / "deploy"), str(built / "aksid" / "suites")]


def test_azure_roles_are_custom_role_definitions_with_read_actions_only() -> None:
    shape = {"Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions", "NotDataActions",
             "AssignableScopes"}
    for path in sorted(DEPLOY.glob("azure-role*.json")):
        role = json.loads(path.read_text())
        assert set(role) == shape and role["IsCustom"] is True, path.name
        assert role["DataActions"] == role["NotDataActions"] == role["NotActions"] == []
        assert all(re.fullmatch(r"Microsoft\.\w+(/[\w]+)+/read", a) for a in role["Actions"]), role["Actions"]
    reader = json.loads((DEPLOY / "azure-role.json").read_text())
    assert reader["Actions"] == [
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.Network/dnszones/read",
        "Microsoft.Network/dnszones/all/read",  # RecordSets_ListAllByDnsZone (record_sets.list_all_by_dns_zone)
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",  # WI-003
        "Microsoft.Authorization/roleAssignments/read",
        "Microsoft.Authorization/roleDefinitions/read",
        "Microsoft.Compute/virtualMachineScaleSets/read",  # VirtualMachineScaleSets_List of the node RG (MIG-002)
    ]


# -- the authorizers themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/pods?limit=250", ("list", "", "pods", "", "", "")),
    ("GET", "/api/v1/namespaces/kube-addons/pods/p1/log", ("get", "", "pods", "log", "kube-addons", "p1")),
    ("DELETE", "/api/v1/namespaces/aksid-1", ("delete", "", "namespaces", "", "aksid-1", "aksid-1")),
    ("POST", "/apis/apps/v1/namespaces/x/deployments", ("create", "apps", "deployments", "", "x", "")),
    ("GET", "/apis/apps/v1/deployments?watch=true", ("watch", "apps", "deployments", "", "", "")),
    ("DELETE", "/api/v1/namespaces/x/pods", ("deletecollection", "", "pods", "", "x", "")),
])
def test_request_attributes_as_kube_apiserver_reads_them(method: str, path: str, expected: tuple[str, ...]) -> None:
    a = request_attributes(SA_USER, SA_GROUPS, method, path)
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == expected


def test_rbac_denials_read_as_kube_apiserver_writes_them() -> None:
    rbac = RbacAuthorizer.from_paths([DEPLOY / "rbac.yaml"])  # the reader only
    assert rbac.allows(request_attributes(SA_USER, SA_GROUPS, "GET", "/apis/apps/v1/replicasets"))
    assert rbac.allows(request_attributes(SA_USER, SA_GROUPS, "GET", "/apis"))  # discovery: every authenticated user
    other = request_attributes("system:serviceaccount:default:default", ("system:authenticated",), "GET", "/api/v1/pods")
    assert not rbac.allows(other)
    denied = request_attributes(SA_USER, SA_GROUPS, "GET", "/api/v1/namespaces/kube-addons/pods/p1/log")
    document = pytest.raises(ApiError, rbac.check, denied).value.document()
    assert document["message"] == ('pods "p1" is forbidden: User "system:serviceaccount:aksid:aksid" cannot get resource '
                                   '"pods/log" in API group "" in the namespace "kube-addons"')
    assert (document["reason"], document["code"], document["details"]) == ("Forbidden", 403, {"name": "p1", "kind": "pods"})
    write = request_attributes(SA_USER, SA_GROUPS, "DELETE", "/apis/apps/v1/namespaces/hello/deployments/hello")
    assert not rbac.allows(write), "the reader writes nothing"


@pytest.mark.parametrize(("path", "action"), [
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnsZones/z.test/all",
     "Microsoft.Network/dnsZones/all/read"),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnsZones/z.test/A/www",
     "Microsoft.Network/dnsZones/A/read"),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
     "Microsoft.ManagedIdentity/userAssignedIdentities/read"),
    ("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/g", "Microsoft.Authorization/roleDefinitions/read"),
    ("/subscriptions/s/resourceGroups/rg", "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ("/subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets",
     "Microsoft.Compute/virtualMachineScaleSets/read"),
])
def test_arm_routes_map_to_their_operations(path: str, action: str) -> None:
    assert operation(ArmRequest.parse("GET", f"{path}?api-version=1", "https://127.0.0.1"))[0] == action


def test_arm_actions_match_with_azures_wildcards() -> None:
    from aksid.sandbox.arm_authz import RoleDefinition

    reader = RoleDefinition("Reader", ("*/read",))
    assert reader.permits("Microsoft.Network/dnsZones/all/read") and not reader.permits("Microsoft.Network/dnsZones/A/write")
    dns = RoleDefinition("DNS", ("microsoft.network/DNSZONES/*",), ("Microsoft.Network/dnszones/delete",))
    assert dns.permits("Microsoft.Network/dnsZones/A/write") and not dns.permits("Microsoft.Network/dnsZones/delete")
    shipped = load_roles([DEPLOY / "azure-role.json"])
    assert [r.permits("Microsoft.Network/dnsZones/all/read") for r in shipped] == [True]  # case-insensitive
    assert not any(r.permits("Microsoft.Network/dnsZones/A/read") for r in shipped)  # provision's, not attach's
