"""The access graph's indexed evaluation (aksid/access/rbac.py, aksid/access/paths.py: grants indexed by namespace,
decisions memoised per subject and scope, namespaces a subject holds no grant in skipped) gives exactly the paths of a
straightforward evaluation: every request of every subject in every namespace, each decided by scanning the subject's
grants. Compared on generated clusters (several namespaces of each Pod Security level, Roles and ClusterRoles with
wildcards, subresources and resourceNames, aggregated ClusterRoles, RoleBindings and ClusterRoleBindings to users,
groups and ServiceAccounts, pods carrying a selector or running as a federated ServiceAccount), path by path with its
grant, in order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from aksid.access.paths import (
    PI_GROUP,
    POD_IDENTITY_LABEL,
    PSA_ENFORCE,
    WORKLOADS,
    Graph,
    Path,
    Target,
    pod_security_allows_host_network,
)
from aksid.access.rbac import Grant, Rbac, Subject

RBAC = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"


# -- the straightforward evaluation ---------------------------------------------------------------

def naive_can(rbac: Rbac, subject: Subject, verb: str, group: str, resource: str, subresource: str = "",
              namespace: str = "", name: str = "") -> Grant | None:
    for grant in rbac.grants().get(subject, []):
        if (not grant.namespace or grant.namespace == namespace) and grant.rule.allows(verb, group, resource,
                                                                                        subresource, name):
            return grant
    return None


def naive_paths(rbac: Rbac, namespaces: Mapping[str, Mapping[str, Any]], pods: list[Mapping[str, Any]],
                targets: list[Target], node_identity: bool) -> list[Path]:
    """Graph.paths() as first written: every subject, every namespace, every request."""

    def make_pod(subject: Subject, ns: str, relabel: bool = False) -> tuple[str, Grant] | None:
        if grant := naive_can(rbac, subject, "create", "", "pods", namespace=ns):
            return f"create pods in {ns}", grant
        for verb in ("create", "update", "patch"):
            for group, resource in WORKLOADS:
                if grant := naive_can(rbac, subject, verb, group, resource, namespace=ns):
                    return f"{verb} {resource} in {ns}", grant
        if relabel:
            for verb in ("update", "patch"):
                if grant := naive_can(rbac, subject, verb, "", "pods", namespace=ns):
                    return f"{verb} pods (labels) in {ns}", grant
        return None

    def exec_into(subject: Subject, chosen: list[Mapping[str, Any]]) -> tuple[str, Grant, str] | None:
        for pod in chosen:
            ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
            for sub in ("exec", "attach"):
                if grant := naive_can(rbac, subject, "create", "", "pods", sub, ns, name):
                    return f"create pods/{sub} in {ns}", grant, name
        return None

    def direct(subject: Subject) -> list[Path]:
        found: list[Path] = []
        for target in targets:
            ns = target.namespace
            if target.model == "pod-identity":
                if made := make_pod(subject, ns, relabel=True):
                    found.append(Path(subject, made[0], f"a pod labelled {POD_IDENTITY_LABEL}={target.selector} "
                                      f"matches {target}", "pod-identity", made[1], ns))
                carriers = [p for p in pods if p["metadata"].get("namespace") == ns
                            and (p["metadata"].get("labels") or {}).get(POD_IDENTITY_LABEL) == target.selector]
                if execed := exec_into(subject, carriers):
                    found.append(Path(subject, execed[0], f"pod {ns}/{execed[2]} holds the token of {target}", "exec",
                                      execed[1], ns))
                done = False
                for resource in ("azureidentitybindings", "azureidentities"):
                    for verb in ("create", "update", "patch"):
                        if grant := naive_can(rbac, subject, verb, PI_GROUP, resource, namespace=ns):
                            found.append(Path(subject, f"{verb} {resource} in {ns}",
                                              f"binds any pod of {ns} to the identity of {target}", "identity-objects",
                                              grant, ns))
                            done = True
                            break
                    if done:
                        break
            else:
                if made := make_pod(subject, ns):
                    found.append(Path(subject, made[0], f"a pod run as {target}", "service-account", made[1], ns))
                if grant := naive_can(rbac, subject, "create", "", "serviceaccounts", "token", ns, target.name):
                    found.append(Path(subject, f"create serviceaccounts/token in {ns}",
                                      f"a token of {target} (TokenRequest)", "token", grant, ns))
                runners = [p for p in pods if p["metadata"].get("namespace") == ns
                           and ((p.get("spec") or {}).get("serviceAccountName") or "default") == target.name]
                if execed := exec_into(subject, runners):
                    found.append(Path(subject, execed[0], f"pod {ns}/{execed[2]} holds the token of {target}", "exec",
                                      execed[1], ns))
        if node_identity:
            for ns in sorted(namespaces):
                if pod_security_allows_host_network(namespaces[ns]) and (made := make_pod(subject, ns)):
                    level = (namespaces[ns]["metadata"].get("labels") or {}).get(PSA_ENFORCE)
                    found.append(Path(subject, made[0], f"a hostNetwork pod in {ns} (Pod Security enforce "
                                      f"{level or 'unset, so privileged'}) reaches IMDS around NMI",
                                      "host-network", made[1], ns))
        escalatable = {t.namespace for t in targets}
        if node_identity:
            escalatable |= {n for n, obj in namespaces.items() if pod_security_allows_host_network(obj)}
        for ns in sorted(escalatable):
            binds = (naive_can(rbac, subject, "bind", RBAC_GROUP, "clusterroles", namespace=ns)
                     or naive_can(rbac, subject, "bind", RBAC_GROUP, "roles", namespace=ns))
            if binds and naive_can(rbac, subject, "create", RBAC_GROUP, "rolebindings", namespace=ns):
                found.append(Path(subject, f"bind roles and create rolebindings in {ns}",
                                  f"any right in {ns}, a pod there included", "escalate", binds, ns))
                continue
            escalates = naive_can(rbac, subject, "escalate", RBAC_GROUP, "roles", namespace=ns)
            updates = (naive_can(rbac, subject, "update", RBAC_GROUP, "roles", namespace=ns)
                       or naive_can(rbac, subject, "patch", RBAC_GROUP, "roles", namespace=ns))
            if escalates and updates:
                found.append(Path(subject, f"escalate and update roles in {ns}",
                                  f"any right in {ns}, a pod there included", "escalate", escalates, ns))
        for resource in ("groups", "users"):
            grant = naive_can(rbac, subject, "impersonate", "", resource)
            if grant and not grant.rule.resource_names:
                found.append(Path(subject, f"impersonate {resource}", "acts as any user or group, system:masters "
                                  "included", "impersonate", grant))
                break
        return found

    every = {subject: direct(subject) for subject in rbac.grants()}
    found = [p for paths in every.values() for p in paths]
    for subject in rbac.grants():
        for other, other_paths in every.items():
            if other.kind != "ServiceAccount" or other == subject or not other_paths:
                continue
            grant = naive_can(rbac, subject, "impersonate", "", "serviceaccounts", namespace=other.namespace,
                              name=other.name)
            if grant:
                found.append(Path(subject, f"impersonate serviceaccounts in {other.namespace}",
                                  f"acts as {other}, which can {other_paths[0].action} → {other_paths[0].via}",
                                  "impersonate", grant, other.namespace))
    return sorted(dict((p.key, p) for p in found).values(), key=lambda p: p.key)


# -- a generated cluster --------------------------------------------------------------------------

RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create"], "resourceNames": ["web-1"]},
    {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["*"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["*"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["update"]},
    {"apiGroups": ["*"], "resources": ["replicationcontrollers"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": ["builder"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"], "resourceNames": ["sa-1"]},
    {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["bob"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "clusterroles"], "verbs": ["bind"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["rolebindings"], "verbs": ["create"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["escalate", "patch"]},
    {"apiGroups": [PI_GROUP], "resources": ["azureidentitybindings"], "verbs": ["update"]},
    {"apiGroups": [PI_GROUP], "resources": ["azureidentities", "azureidentitybindings"], "verbs": ["create"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
]
LEVELS = [None, "privileged", "baseline", "restricted"]


def generated_cluster(seed: int) -> tuple[Rbac, list[dict[str, Any]], list[dict[str, Any]], list[Target]]:
    rng = random.Random(seed)
    names = [f"ns-{i}" for i in range(rng.randint(4, 9))]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": {**({PSA_ENFORCE: level} if (level := rng.choice(LEVELS)) else {})}}} for ns in names]
    objects: list[dict[str, Any]] = []
    # aggregated ClusterRoles (one aggregating another, transitively), and plain ones
    objects.append({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "agg-top"},
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-top": "true"}}]}, "rules": None})
    objects.append({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "agg-mid", "labels": {"to-top": "true"}},
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-mid": "true"}}]}, "rules": None})
    cluster_roles = ["agg-top", "agg-mid", "missing-cluster-role"]
    for i in range(rng.randint(3, 7)):
        labels = rng.choice([{}, {"to-mid": "true"}, {"to-top": "true"}])
        objects.append({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": f"cr-{i}", "labels": labels},
                        "rules": rng.sample(RULES, rng.randint(1, 3))})
        cluster_roles.append(f"cr-{i}")
    roles = []
    for i in range(rng.randint(4, 12)):
        ns = rng.choice(names)
        objects.append({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": f"role-{i}", "namespace": ns},
                        "rules": rng.sample(RULES, rng.randint(1, 3))})
        roles.append((ns, f"role-{i}"))

    def subject() -> dict[str, Any]:
        kind = rng.choice(["User", "Group", "ServiceAccount", "ServiceAccount"])
        if kind == "ServiceAccount":
            raw = {"kind": kind, "name": f"sa-{rng.randint(0, 3)}"}
            if rng.random() < 0.6:  # else: the RoleBinding's namespace
                raw["namespace"] = rng.choice(names)
            return raw
        return {"kind": kind, "apiGroup": RBAC_GROUP, "name": f"{kind.lower()}-{rng.randint(0, 4)}"}

    for i in range(rng.randint(2, 5)):
        objects.append({"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": f"crb-{i}"},
                        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": rng.choice(cluster_roles)},
                        "subjects": [subject() for _ in range(rng.randint(1, 3))]})
    for i in range(rng.randint(10, 30)):
        if rng.random() < 0.5 and roles:
            ns, role = rng.choice(roles)
            if rng.random() < 0.1:
                role = "missing-role"
            ref = {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role}
        else:
            ns, ref = rng.choice(names), {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": rng.choice(cluster_roles)}
        objects.append({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": f"rb-{i}", "namespace": ns},
                        "roleRef": ref, "subjects": [subject() for _ in range(rng.randint(1, 2))]})
    pods = []
    for i in range(rng.randint(5, 20)):
        labels = {POD_IDENTITY_LABEL: rng.choice(["dns", "other"])} if rng.random() < 0.5 else {}
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": rng.choice(["web-1", f"pod-{i}"]), "namespace": rng.choice(names),
                                  "labels": labels},
                     "spec": {**({"serviceAccountName": f"sa-{rng.randint(0, 3)}"} if rng.random() < 0.7 else {})}})
    targets = []
    for i in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            targets.append(Target("pod-identity", rng.choice(names), f"binding-{i}", rng.choice(["dns", "other"])))
        else:
            targets.append(Target("workload-identity", rng.choice(names), rng.choice(["sa-0", "sa-1", "builder"])))
    rng.shuffle(objects)
    return Rbac(objects), namespaces, pods, targets


@pytest.mark.parametrize("seed", range(40))
def test_indexed_paths_equal_the_straightforward_evaluation(seed: int) -> None:
    rbac, namespaces, pods, targets = generated_cluster(seed)
    for node_identity in (True, False):
        expected = naive_paths(Rbac(_objects_of(rbac)), {n["metadata"]["name"]: n for n in namespaces}, pods,
                               targets, node_identity)
        found = Graph(Rbac(_objects_of(rbac)), namespaces, pods, targets, node_identity).paths()
        assert found == expected, (seed, node_identity)


def _objects_of(rbac: Rbac) -> list[Mapping[str, Any]]:
    return [*rbac.cluster_roles.values(), *rbac.roles.values(), *rbac.bindings]


def test_the_generated_clusters_exercise_every_kind_of_path() -> None:
    """The comparison above is not vacuous: across the seeds, every kind of path occurs, and host-network paths
    occur in namespaces where the subject holds no RoleBinding (reached through a ClusterRoleBinding)."""
    kinds: set[str] = set()
    via_cluster_binding = False
    for seed in range(40):
        rbac, namespaces, pods, targets = generated_cluster(seed)
        for path in Graph(rbac, namespaces, pods, targets, True).paths():
            kinds.add(path.kind)
            if path.kind == "host-network" and path.grant and not path.grant.namespace:
                via_cluster_binding |= path.namespace not in rbac.namespaces_of(path.subject)
    assert kinds == {"pod-identity", "identity-objects", "host-network", "service-account", "token", "exec",
                     "impersonate", "escalate"}
    assert via_cluster_binding


@pytest.mark.parametrize("seed", range(10))
def test_indexed_decisions_equal_a_scan_of_the_grants(seed: int) -> None:
    rbac, namespaces, _, _ = generated_cluster(seed)
    requests = [(verb, group, resource, sub, name)
                for verb in ("create", "patch", "impersonate", "bind", "escalate", "get")
                for group, resource, sub in (("", "pods", ""), ("", "pods", "exec"), ("", "pods", "attach"),
                                             ("apps", "deployments", ""), ("", "serviceaccounts", "token"),
                                             ("", "serviceaccounts", ""), (RBAC_GROUP, "roles", ""),
                                             (PI_GROUP, "azureidentities", ""))
                for name in ("", "web-1", "builder", "sa-1")]
    for subject in rbac.grants():
        for ns in ["", "elsewhere", *(n["metadata"]["name"] for n in namespaces)]:
            assert rbac.rules_of(subject, ns) == [g for g in rbac.grants()[subject] if not g.namespace
                                                  or g.namespace == ns]
            for request in requests:
                assert rbac.subject_can(subject, *request[:4], ns, request[4]) is naive_can(
                    rbac, subject, *request[:4], ns, request[4]), (subject, ns, request)
        for verb, group, resource, sub, _ in requests:
            if rbac.may_ever(subject, verb, group, resource, sub) is False:
                assert all(naive_can(rbac, subject, verb, group, resource, sub, ns, name) is None
                           for ns in ["", *(n["metadata"]["name"] for n in namespaces)]
                           for name in ("", "web-1", "builder", "sa-1"))
