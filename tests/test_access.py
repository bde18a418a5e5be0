"""ACCESS: the RBAC evaluator on Kubernetes' own bootstrap roles, and ACCESS-001's paths in each scenario, whole.

Expectations from Kubernetes' RBAC documentation ("Using RBAC Authorization", user-facing roles): admin and edit can
create pods in a namespace; view reads most objects but not Secrets; edit holds no rights on Roles/RoleBindings, admin
does; cluster-admin may do anything; escalate, bind and impersonate are verbs of their own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from aksid.access.rbac import Rbac, Subject
from aksid.config import Target
from aksid.snapshot import Snapshot
from suites.test_access import access_graph, allowed_subjects, is_allowed

from .harness import aksid

CORPUS = Path(__file__).parent / "corpus" / "rbac"
SHA256 = {
    "kubernetes-bootstrap-cluster-roles.yaml": "6278827c3bc1f8cf6d858d94f5477d1aedeb71cfe471735878ceb4fd02adcd7c",
    "kubernetes-bootstrap-cluster-role-bindings.yaml": "3fd3340bb8278f691a84b051aa22cba02fdcab12037c9efc722b557d4f36d16c",
}


def _bootstrap(*extra: dict) -> Rbac:
    documents = [yaml.safe_load((CORPUS / name).read_text(encoding="utf-8")) for name in SHA256]
    return Rbac([*documents, *extra])


def _binding(role: str, subject: dict, namespace: str = "team", kind: str = "ClusterRole") -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{role}-binding", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}, "subjects": [subject]}


USER = {"kind": "User", "name": "alice"}


def test_corpus_files_unchanged() -> None:
    for name, digest in SHA256.items():
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("role", ["admin", "edit"])
def test_admin_and_edit_create_pods_and_workloads_in_their_namespace_only(role: str) -> None:
    rbac = _bootstrap(_binding(role, USER))
    for group, resource in (("", "pods"), ("apps", "deployments"), ("batch", "cronjobs"), ("apps", "daemonsets")):
        assert rbac.allows("alice", [], "create", group, resource, namespace="team"), (role, resource)
        assert not rbac.allows("alice", [], "create", group, resource, namespace="other"), (role, resource)
    assert rbac.allows("alice", [], "create", "", "pods", "exec", "team", "web-1")
    assert rbac.allows("alice", [], "create", "", "serviceaccounts", "token", "team", "builder")
    assert rbac.allows("alice", [], "impersonate", "", "serviceaccounts", namespace="team", name="builder")
    assert rbac.allows("alice", [], "get", "", "secrets", namespace="team")
    assert not rbac.allows("alice", [], "create", "", "namespaces")  # cluster-scoped: a RoleBinding never reaches it


def test_roles_and_bindings_belong_to_admin_not_edit() -> None:
    assert _bootstrap(_binding("admin", USER)).allows("alice", [], "create", "rbac.authorization.k8s.io",
                                                      "rolebindings", namespace="team")
    edit = _bootstrap(_binding("edit", USER))
    for resource in ("roles", "rolebindings"):
        assert not edit.allows("alice", [], "create", "rbac.authorization.k8s.io", resource, namespace="team")
    for verb in ("escalate", "bind"):  # admin grants neither: bindings only of rights it holds
        assert not _bootstrap(_binding("admin", USER)).allows("alice", [], verb, "rbac.authorization.k8s.io", "roles",
                                                              namespace="team")


def test_view_reads_but_not_secrets_and_makes_nothing() -> None:
    rbac = _bootstrap(_binding("view", USER))
    assert rbac.allows("alice", [], "list", "", "pods", namespace="team")
    assert rbac.allows("alice", [], "get", "apps", "deployments", namespace="team")
    assert not rbac.allows("alice", [], "get", "", "secrets", namespace="team")
    assert not rbac.allows("alice", [], "create", "", "pods", namespace="team")
    assert not rbac.allows("alice", [], "get", "", "pods", "exec", "team", "x")
    assert not rbac.allows("alice", [], "create", "", "serviceaccounts", "token", "team", "default")


def test_aggregation_is_resolved_transitively_and_by_labels() -> None:
    rbac = _bootstrap()
    view, edit, admin = (set(rbac.cluster_role_rules(n)) for n in ("view", "edit", "admin"))
    assert view and view < edit < admin
    crd_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]}
    rbac = _bootstrap(crd_role, _binding("admin", USER))
    assert rbac.allows("alice", [], "get", "example.com", "widgets", namespace="team")  # view → edit → admin


def test_cluster_admin_and_system_masters_can_do_everything() -> None:
    rbac = _bootstrap()
    for verb, group, resource, sub in (("create", "", "pods", ""), ("escalate", "rbac.authorization.k8s.io", "roles", ""),
                                       ("impersonate", "", "groups", ""), ("create", "anything.io", "things", "x")):
        assert rbac.allows("bob", ["system:masters"], verb, group, resource, sub, "ns", "name")
    assert not rbac.allows("bob", ["system:authenticated"], "create", "", "pods", namespace="ns")


def test_rule_semantics_subresources_resource_names_and_wildcards() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
                      {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["builder"],
                       "verbs": ["create"]},
                      {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["*"]},
                      {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}]}
    rbac = _bootstrap(role, _binding("r", USER, kind="Role"))
    assert rbac.allows("alice", [], "create", "", "pods", namespace="team")
    assert not rbac.allows("alice", [], "create", "", "pods", "exec", "team", "p")  # pods does not cover pods/exec
    assert rbac.allows("alice", [], "create", "", "serviceaccounts", "token", "team", "builder")
    assert not rbac.allows("alice", [], "create", "", "serviceaccounts", "token", "team", "other")
    assert not rbac.allows("alice", [], "create", "", "configmaps", namespace="team")  # a new object has no name
    assert rbac.allows("alice", [], "delete", "", "configmaps", namespace="team", name="one")
    assert rbac.allows("alice", [], "update", "apps", "deployments", "status", "team", "d")
    assert not rbac.allows("alice", [], "update", "apps", "deployments", namespace="team", name="d")


def test_service_account_subjects_and_their_groups() -> None:
    sa = {"kind": "ServiceAccount", "name": "builder"}  # namespace defaults to the RoleBinding's
    group = {"kind": "Group", "name": "system:serviceaccounts:ci"}
    rbac = _bootstrap(_binding("edit", sa, "team"), _binding("view", group, "other"))
    assert rbac.allows("system:serviceaccount:team:builder", [], "create", "", "pods", namespace="team")
    assert rbac.allows("system:serviceaccount:ci:x", [], "list", "", "pods", namespace="other")
    assert set(rbac.who_can("create", "", "pods", namespace="team")) == {
        Subject("ServiceAccount", "builder", "team"), Subject("Group", "system:masters")}


# -- ACCESS-001 in the scenarios -------------------------------------------------------------------

HOST = "a hostNetwork pod in {ns} (Pod Security enforce {level}) reaches IMDS around NMI"
EDNS = "AzureIdentityBinding kube-addons/external-dns-binding (selector external-dns)"
CM = "AzureIdentityBinding kube-addons/cert-manager-binding (selector cert-manager)"
EXPECTED = {
    "healthy": set(),
    "healthy-wi": set(),
    "benign-access-read-only": set(),
    "benign-access-unrelated-namespace": set(),
    "access-team-creates-pods-in-addons": {
        ("Group team-a", "create pods in kube-addons", HOST.format(ns="kube-addons", level="unset, so privileged")),
        ("Group team-a", "create pods in kube-addons", f"a pod labelled aadpodidbinding=cert-manager matches {CM}"),
        ("Group team-a", "create pods in kube-addons", f"a pod labelled aadpodidbinding=external-dns matches {EDNS}"),
        ("Group team-a", "create pods/exec in kube-addons",
         f"pod kube-addons/cert-manager-6d8f7c9b54-r8p2f holds the token of {CM}"),
        ("Group team-a", "create pods/exec in kube-addons",
         f"pod kube-addons/external-dns-8f5d6b7c94-hxzqx holds the token of {EDNS}"),
        ("Group team-a", "impersonate serviceaccounts in kube-addons",
         "acts as ServiceAccount kube-addons/cert-manager, which can create pods in kube-addons → a pod labelled "
         f"aadpodidbinding=cert-manager matches {CM}"),
    },
    "access-privileged-namespace-host-network": {
        ("Group ci-runners", "create pods in build", HOST.format(ns="build", level="privileged")),
    },
    "access-wi-token-for-external-dns": {
        ("ServiceAccount ci/deployer", "create serviceaccounts/token in kube-addons",
         "a token of ServiceAccount kube-addons/external-dns (TokenRequest)"),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_paths_outside_allowed_exactly(name: str, tmp_path: Path) -> None:
    run = aksid("demo", "--scenario", name, "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    document = json.loads((tmp_path / "snapshot.json").read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(Target)}
    target = Target(**{k: v for k, v in document["target"].items() if k in fields})
    snapshot = Snapshot(document)
    _, graph = access_graph(snapshot, target)
    allowed, _ = allowed_subjects(snapshot, target)
    found = {p.key for p in graph.paths() if not is_allowed(p.subject, allowed)}
    assert found == EXPECTED[name]
    if name == "healthy":  # the allowed workloads and the platform do have paths: the check is not vacuous
        everyone = {str(p.subject) for p in graph.paths()}
        assert {"ServiceAccount kube-addons/cert-manager", "Group system:masters"} <= everyone
