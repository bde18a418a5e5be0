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

from aksid.access.paths import Graph
from aksid.access.paths import Target as PathTarget
from aksid.access.rbac import Rbac, Rule, Subject
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


def test_covers_holding_every_rule_of_a_role_as_binding_it_needs_no_bind() -> None:
    """Privilege escalation prevention: a subject may bind a role whose every permission it holds. cluster-admin holds
    admin's; edit does not hold admin's (roles, rolebindings); a rule with resourceNames holds only those names; `*`
    holds subresources, `*/exec` only exec."""
    rbac = _bootstrap(_binding("edit", USER), _binding("cluster-admin", {"kind": "User", "name": "root"}))
    admin = rbac.cluster_role_rules("admin")
    assert rbac.covers(Subject("User", "root"), "team", admin)
    assert not rbac.covers(Subject("User", "alice"), "team", admin)
    assert rbac.covers(Subject("User", "alice"), "team", rbac.cluster_role_rules("view"))
    assert not rbac.covers(Subject("User", "alice"), "other", rbac.cluster_role_rules("view"))  # bound in team only
    named = Rule(("get",), ("",), ("configmaps",), ("a", "b"))
    assert named.covers(Rule(("get",), ("",), ("configmaps",), ("a",)))
    assert not named.covers(Rule(("get",), ("",), ("configmaps",)))
    assert Rule(("*",), ("*",), ("*",)).covers(Rule(("create",), ("",), ("pods/exec",)))
    assert Rule(("create",), ("",), ("*/exec",)).covers(Rule(("create",), ("",), ("pods/exec",)))
    assert not Rule(("create",), ("",), ("*/exec",)).covers(Rule(("create",), ("",), ("pods/attach",)))


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
    "access-impersonation-chain": {
        ("Group release-bots", "impersonate serviceaccounts in ci",
         "acts as ServiceAccount ci/builder, which can create serviceaccounts/token in ops, acts as ServiceAccount "
         "ops/deployer, which can impersonate groups (and any user), acts as Group platform-admins, which can create "
         f"pods in kube-addons → a pod labelled aadpodidbinding=cert-manager matches {CM}"),
        ("ServiceAccount ci/builder", "create serviceaccounts/token in ops",
         "acts as ServiceAccount ops/deployer, which can impersonate groups (and any user), acts as Group "
         f"platform-admins, which can create pods in kube-addons → a pod labelled aadpodidbinding=cert-manager matches {CM}"),
        ("ServiceAccount ops/deployer", "impersonate groups (and any user)",
         "acts as Group platform-admins, which can create pods in kube-addons → a pod labelled "
         f"aadpodidbinding=cert-manager matches {CM}"),
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
        # AKS's own: the local accounts (cluster-admin) and the nodes have paths, allowed; Microsoft support's
        # aks-support (read-only) and the TLS bootstrap group have none
        platform = {"User clusterAdmin", "User clusterUser", "Group system:nodes"}
        assert {"ServiceAccount kube-addons/cert-manager", "Group system:masters", *platform} <= everyone
        assert not {"User aks-support", "Group system:bootstrappers"} & everyone
        assert all(is_allowed(p.subject, allowed) for p in graph.paths() if str(p.subject) in platform)


# -- chains: impersonation, borrowed credentials, bind and escalate, against whole path sets ------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"
POD = ("a pod labelled aadpodidbinding=external-dns matches AzureIdentityBinding kube-addons/external-dns-binding "
       "(selector external-dns)")
HOST_ADDONS = HOST.format(ns="kube-addons", level="unset, so privileged")


def _rule(verbs: str, resources: str, group: str = "", names: str = "") -> dict:
    return {"apiGroups": [group], "resources": resources.split(","), "verbs": verbs.split(","),
            **({"resourceNames": names.split(",")} if names else {})}


def _role(name: str, *rules: dict, namespace: str = "") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role" if namespace else "ClusterRole", "metadata": meta,
            "rules": list(rules)}


def _bind(name: str, role: str, *subjects: str, namespace: str = "", kind: str = "ClusterRole") -> dict:
    """A RoleBinding (namespace given) or ClusterRoleBinding; subjects as "User:x", "Group:x", "ServiceAccount:ns/x"."""
    found = []
    for text in subjects:
        subject_kind, _, who = text.partition(":")
        if subject_kind == "ServiceAccount":
            ns, _, sa = who.partition("/")
            found.append({"kind": subject_kind, "name": sa, "namespace": ns})
        else:
            found.append({"kind": subject_kind, "name": who, "apiGroup": RBAC_GROUP})
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": meta, "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role}, "subjects": found}


def _graph(*objects: dict) -> Graph:
    """kube-addons (Pod Security unset) holds the DNS identity's pod-identity binding and external-dns's pod; ci and
    ops enforce baseline. The identity is on the node pool (pod identity)."""
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "baseline"} if name != "kube-addons" else {}}}
        for name in ("kube-addons", "ci", "ops")]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "external-dns-7d9f", "namespace": "kube-addons",
                                                           "labels": {"aadpodidbinding": "external-dns"}},
           "spec": {"serviceAccountName": "external-dns"}}
    target = PathTarget("pod-identity", "kube-addons", "external-dns-binding", "external-dns")
    return Graph(Rbac([*objects]), namespaces, [pod], [target], node_identity=True)


def _keys(graph: Graph) -> set[tuple[str, str, str]]:
    return {p.key for p in graph.paths()}


def _chain(*steps: str, final: str = f"create pods in kube-addons → {POD}") -> str:
    """A chain's `via`: whom each hop leads to and what the next can do ("acts as X, which can Y, ...")."""
    return ", ".join(steps) + f", which can {final}"


POD_MAKER = _role("pod-maker", _rule("create", "pods"))


def test_a_chain_of_two_impersonations_goes_through_a_minted_token_and_one_without_credentials_stops() -> None:
    """alice impersonates ci/builder, which mints ops/deployer's token (TokenRequest), which impersonates the group
    platform-admins (with the user deploy-bot: a group needs one), which makes pods in kube-addons. bob impersonates
    ci/relay, which may impersonate ops/deployer: but the impersonation filter checks the authenticated requester and
    drops the headers, so a principal held by impersonation cannot impersonate in turn: neither bob nor relay (whose
    deployer, impersonated, cannot impersonate platform-admins) reaches anything."""
    graph = _graph(
        _role("impersonate-builder", _rule("impersonate", "serviceaccounts", names="builder"), namespace="ci"),
        _bind("alice", "impersonate-builder", "User:alice", namespace="ci", kind="Role"),
        _role("mint-deployer", _rule("create", "serviceaccounts/token", names="deployer"), namespace="ops"),
        _bind("builder-mints", "mint-deployer", "ServiceAccount:ci/builder", namespace="ops", kind="Role"),
        _role("impersonate-admins", _rule("impersonate", "groups", names="platform-admins"),
              _rule("impersonate", "users", names="deploy-bot")),
        _bind("deployer-impersonates", "impersonate-admins", "ServiceAccount:ops/deployer"),
        POD_MAKER, _bind("platform-admins", "pod-maker", "Group:platform-admins", namespace="kube-addons"),
        _role("impersonate-relay", _rule("impersonate", "serviceaccounts", names="relay"), namespace="ci"),
        _bind("bob", "impersonate-relay", "User:bob", namespace="ci", kind="Role"),
        _role("impersonate-deployer", _rule("impersonate", "serviceaccounts", names="deployer"), namespace="ops"),
        _bind("relay", "impersonate-deployer", "ServiceAccount:ci/relay", namespace="ops", kind="Role"))
    admins = "acts as Group platform-admins"
    deployer = "acts as ServiceAccount ops/deployer, which can impersonate groups (and any user)"
    assert _keys(graph) == {
        ("Group platform-admins", "create pods in kube-addons", POD),
        ("Group platform-admins", "create pods in kube-addons", HOST_ADDONS),
        ("ServiceAccount ops/deployer", "impersonate groups (and any user)", _chain(admins)),
        ("ServiceAccount ci/builder", "create serviceaccounts/token in ops", _chain(deployer, admins)),
        ("User alice", "impersonate serviceaccounts in ci",
         _chain("acts as ServiceAccount ci/builder, which can create serviceaccounts/token in ops", deployer, admins)),
    }
    alice = next(p for p in graph.paths() if str(p.subject) == "User alice")
    assert [(h.kind, h.impersonated, h.grant.binding if h.grant else None) for h in alice.chain] == [
        ("impersonate", True, "RoleBinding ci/alice"), ("token", False, "RoleBinding ops/builder-mints"),
        ("impersonate", True, "ClusterRoleBinding deployer-impersonates")]
    assert alice.kind == "impersonate" and alice.grant is alice.chain[0].grant
    assert alice.final is not None and alice.final.subject == Subject("Group", "platform-admins")
    assert alice.text().startswith(
        'User alice can impersonate serviceaccounts in ci (by RoleBinding ci/alice → Role ci/impersonate-builder: '
        'impersonate serviceaccounts (apiGroups "") names builder), so acts as ServiceAccount ci/builder, which can '
        'create serviceaccounts/token in ops (by RoleBinding ops/builder-mints → ')


def test_a_cycle_of_impersonation_and_tokens_ends_and_each_principal_is_reported_once() -> None:
    """ci/a and ci/b may impersonate and mint tokens of each other (a cycle in both modes); b makes pods in
    kube-addons. a reaches b's paths in one hop; b's chains come back to itself and add nothing."""
    graph = _graph(
        _role("peers", _rule("impersonate", "serviceaccounts", names="a,b"),
              _rule("create", "serviceaccounts/token", names="a,b"), namespace="ci"),
        _bind("peers", "peers", "ServiceAccount:ci/a", "ServiceAccount:ci/b", namespace="ci", kind="Role"),
        POD_MAKER, _bind("b-pods", "pod-maker", "ServiceAccount:ci/b", namespace="kube-addons"))
    assert _keys(graph) == {
        ("ServiceAccount ci/b", "create pods in kube-addons", POD),
        ("ServiceAccount ci/b", "create pods in kube-addons", HOST_ADDONS),
        ("ServiceAccount ci/a", "impersonate serviceaccounts in ci", _chain("acts as ServiceAccount ci/b")),
    }


def test_bind_and_escalate_as_privilege_escalation_prevention_allows_them() -> None:
    """carol may bind pod-maker (resourceNames) and create rolebindings in kube-addons: she binds it to herself.
    dave may bind only pod-reader: nothing. erin may escalate and update the Role bound to her: any rule there. frank
    may escalate and update a Role bound to nobody: nothing. gina holds pod-maker's rules already: binding it adds no
    chain. ivan may bind pod-maker with a ClusterRoleBinding: everywhere."""
    graph = _graph(
        POD_MAKER, _role("pod-reader", _rule("get,list", "pods")),
        _role("binder", _rule("create", "rolebindings", RBAC_GROUP), _rule("bind", "clusterroles", RBAC_GROUP,
                                                                           "pod-maker"), namespace="kube-addons"),
        _bind("carol", "binder", "User:carol", "User:gina", namespace="kube-addons", kind="Role"),
        _role("reader-binder", _rule("create", "rolebindings", RBAC_GROUP),
              _rule("bind", "clusterroles", RBAC_GROUP, "pod-reader"), namespace="kube-addons"),
        _bind("dave", "reader-binder", "User:dave", namespace="kube-addons", kind="Role"),
        _role("erin-role", _rule("escalate,update", "roles", RBAC_GROUP, "erin-role"), namespace="kube-addons"),
        _bind("erin", "erin-role", "User:erin", namespace="kube-addons", kind="Role"),
        _role("unbound", _rule("get", "configmaps"), namespace="kube-addons"),
        _role("frank-role", _rule("escalate,update", "roles", RBAC_GROUP, "unbound"), namespace="kube-addons"),
        _bind("frank", "frank-role", "User:frank", namespace="kube-addons", kind="Role"),
        _bind("gina", "pod-maker", "User:gina", namespace="kube-addons"),
        _role("crb-binder", _rule("create", "clusterrolebindings", RBAC_GROUP),
              _rule("bind", "clusterroles", RBAC_GROUP, "pod-maker")),
        _bind("ivan", "crb-binder", "User:ivan"))
    assert _keys(graph) == {
        ("User gina", "create pods in kube-addons", POD), ("User gina", "create pods in kube-addons", HOST_ADDONS),
        ("User carol", "bind ClusterRole pod-maker and create rolebindings in kube-addons",
         _chain("acts as holder of ClusterRole pod-maker in namespace kube-addons")),
        ("User erin", "escalate and update roles erin-role in kube-addons",
         _chain("acts as holder of Role kube-addons/erin-role raised to any rule in namespace kube-addons")),
        ("User ivan", "bind ClusterRole pod-maker and create clusterrolebindings (a ClusterRoleBinding)",
         _chain("acts as holder of ClusterRole pod-maker in every namespace")),
    }
    erin = next(p for p in graph.paths() if str(p.subject) == "User erin")
    assert erin.kind == "escalate" and erin.final is not None and erin.final.grant is not None
    assert erin.final.grant.binding == "RoleBinding kube-addons/erin" and erin.final.grant.rule.verbs == ("*",)


def test_a_role_created_with_escalate_and_bound_gives_any_rule() -> None:
    """hank may create Roles with escalate, bind some Role name and create rolebindings in kube-addons."""
    graph = _graph(
        _role("role-author", _rule("create,escalate", "roles", RBAC_GROUP), _rule("bind", "roles", RBAC_GROUP),
              _rule("create", "rolebindings", RBAC_GROUP), namespace="kube-addons"),
        _bind("hank", "role-author", "User:hank", namespace="kube-addons", kind="Role"))
    assert _keys(graph) == {
        ("User hank", "create roles with escalate, bind them and create rolebindings in kube-addons",
         _chain("acts as holder of any rule (a Role it creates with escalate) in namespace kube-addons")),
    }


def test_impersonation_narrowed_by_resource_names_needs_a_user_for_groups_and_brings_service_account_groups() -> None:
    """jack impersonates any ServiceAccount of ci (a stand-in, `default`) and kate one named `other` (it need not
    exist): both bring the group system:serviceaccounts:ci, which makes pods. leo may impersonate platform-admins but no
    user: nothing; mia may also impersonate the user nobody: enough. ned may only impersonate userextras and uids.
    olga may impersonate any user and group: every user and group principal, system:masters included (the API server
    authorizes it before RBAC; no binding names it here). paul may impersonate quinn, rita someone with no rights."""
    graph = _graph(
        POD_MAKER,
        _bind("ci-accounts", "pod-maker", "Group:system:serviceaccounts:ci", namespace="kube-addons"),
        _bind("platform-admins", "pod-maker", "Group:platform-admins", namespace="kube-addons"),
        _bind("quinn", "pod-maker", "User:quinn", namespace="kube-addons"),
        _role("any-sa", _rule("impersonate", "serviceaccounts"), namespace="ci"),
        _bind("jack", "any-sa", "User:jack", namespace="ci", kind="Role"),
        _role("other-sa", _rule("impersonate", "serviceaccounts", names="other"), namespace="ci"),
        _bind("kate", "other-sa", "User:kate", namespace="ci", kind="Role"),
        _role("group-only", _rule("impersonate", "groups", names="platform-admins")),
        _bind("leo", "group-only", "User:leo", "User:mia"),
        _role("a-user", _rule("impersonate", "users", names="nobody")),
        _bind("mia", "a-user", "User:mia"),
        _role("extras", _rule("impersonate", "userextras/scopes,uids", "authentication.k8s.io")),
        _bind("ned", "extras", "User:ned"),
        _role("anyone", _rule("impersonate", "users,groups")),
        _bind("olga", "anyone", "User:olga"),
        _role("quinn-only", _rule("impersonate", "users", names="quinn")),
        _bind("paul", "quinn-only", "User:paul"),
        _role("someone", _rule("impersonate", "users", names="someone")),
        _bind("rita", "someone", "User:rita"))
    direct = {(who, "create pods in kube-addons", via) for who in
              ("Group system:serviceaccounts:ci", "Group platform-admins", "User quinn") for via in (POD, HOST_ADDONS)}
    ci_group = "a member of Group system:serviceaccounts:ci"
    groups = "impersonate groups (and any user)"
    assert _keys(graph) == direct | {
        ("User jack", "impersonate serviceaccounts in ci", _chain("acts as ServiceAccount ci/default", ci_group)),
        ("User kate", "impersonate serviceaccounts in ci", _chain("acts as ServiceAccount ci/other", ci_group)),
        ("User mia", groups, _chain("acts as Group platform-admins")),
        ("User olga", "impersonate users", _chain("acts as User quinn")),
        ("User olga", groups, _chain("acts as Group platform-admins")),
        ("User olga", groups, _chain("acts as Group system:masters")),
        ("User olga", groups, _chain("acts as Group system:serviceaccounts:ci")),
        ("User paul", "impersonate users", _chain("acts as User quinn")),
    }
