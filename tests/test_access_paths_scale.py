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
    ANY_RULE,
    GAINED,
    HOP_KINDS,
    PI_GROUP,
    POD_IDENTITY_LABEL,
    PSA_ENFORCE,
    RBAC_GROUP,
    SUPERUSER_GROUP,
    WORKLOADS,
    Graph,
    Hop,
    Path,
    Target,
    chain_kind,
    chain_via,
    pod_security_allows_host_network,
)
from aksid.access.rbac import Grant, Rbac, Rule, Subject

RBAC = "rbac.authorization.k8s.io/v1"


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
    """Graph.paths() as a straightforward reading of its docstring: every subject, every namespace, every request,
    each decided by scanning the subject's grants (and the hypothetical ones of gained principals)."""
    assumed: dict[Subject, list[Grant]] = {}

    def held(subject: Subject) -> list[Grant]:
        return rbac.grants().get(subject) or assumed.get(subject, [])

    def can(subject: Subject, verb: str, group: str, resource: str, subresource: str = "", ns: str = "",
            name: str = "") -> Grant | None:
        for grant in held(subject):
            if (not grant.namespace or grant.namespace == ns) and grant.rule.allows(verb, group, resource,
                                                                                    subresource, name):
                return grant
        return None

    def some_name(subject: Subject, verb: str, resource: str, ns: str | None = None) -> Grant | None:
        """A grant allowing the request for some name (in `ns`, or in any namespace)."""
        for grant in held(subject):
            rule = grant.rule
            if (ns is None or not grant.namespace or grant.namespace == ns) and rule.allows(
                    verb, RBAC_GROUP if resource.endswith("roles") else "", resource, "",
                    rule.resource_names[0] if rule.resource_names else "x"):
                return grant
        return None

    def covers(subject: Subject, ns: str, rules: tuple[Rule, ...]) -> bool:
        mine = [g.rule for g in held(subject) if not g.namespace or g.namespace == ns]
        return all(any(rule.covers(other) for rule in mine) for other in rules)

    def make_pod(subject: Subject, ns: str, relabel: bool = False) -> tuple[str, Grant] | None:
        if grant := can(subject, "create", "", "pods", ns=ns):
            return f"create pods in {ns}", grant
        for verb in ("create", "update", "patch"):
            for group, resource in WORKLOADS:
                if grant := can(subject, verb, group, resource, ns=ns):
                    return f"{verb} {resource} in {ns}", grant
        if relabel:
            for verb in ("update", "patch"):
                if grant := can(subject, verb, "", "pods", ns=ns):
                    return f"{verb} pods (labels) in {ns}", grant
        return None

    def exec_into(subject: Subject, chosen: list[Mapping[str, Any]]) -> tuple[str, Grant, str] | None:
        for pod in chosen:
            ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
            for sub in ("exec", "attach"):
                if grant := can(subject, "create", "", "pods", sub, ns, name):
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
                        if grant := can(subject, verb, PI_GROUP, resource, ns=ns):
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
                if grant := can(subject, "create", "", "serviceaccounts", "token", ns, target.name):
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
        return found

    # the principals, as the docstring of aksid/access/paths.py says
    meaningful = {s for s, grants in rbac.grants().items() if any(g.rule.resources for g in grants)}
    superuser = Subject("Group", SUPERUSER_GROUP)
    if superuser not in rbac.grants():
        assumed[superuser] = [Grant("kube-apiserver (system:masters is authorized before RBAC)", "any rule", "",
                                    ANY_RULE, {"apiVersion": "v1", "kind": "Group",
                                               "metadata": {"name": SUPERUSER_GROUP}})]
        meaningful.add(superuser)
    sa_group_namespaces = {s.name.split(":", 2)[2] for s in meaningful
                           if s.kind == "Group" and s.name.startswith("system:serviceaccounts:")}
    if Subject("Group", "system:serviceaccounts") in meaningful:
        sa_group_namespaces |= set(namespaces)
    principals = {s for s in meaningful if s.kind == "ServiceAccount" and s.namespace}
    stand_ins = {Subject("ServiceAccount", "default", ns) for ns in sa_group_namespaces} - principals
    accounts = sorted(principals | stand_ins, key=lambda s: (s.namespace, s.name))
    account_namespaces = sorted({a.namespace for a in accounts})
    users = sorted((s for s in meaningful if s.kind == "User" and not s.name.startswith("system:serviceaccount:")),
                   key=lambda s: s.name)
    groups = sorted((s for s in meaningful if s.kind == "Group" and s.name != "system:authenticated"),
                    key=lambda s: s.name)
    interesting = {t.namespace for t in targets} | set(account_namespaces)
    if node_identity:
        interesting |= {n for n, obj in namespaces.items() if pod_security_allows_host_network(obj)}
    gained: dict[tuple[str, str], Subject] = {}

    def gain(role: str, rules: tuple[Rule, ...], ns: str, evidence: Mapping[str, Any], binding: str) -> Subject:
        if (role, ns) not in gained:
            subject = Subject(GAINED, f"{role} {f'in namespace {ns}' if ns else 'in every namespace'}")
            gained[(role, ns)] = subject
            assumed[subject] = [Grant(binding, role, ns, rule, evidence) for rule in rules]
        return gained[(role, ns)]

    def hops(subject: Subject, impersonated: bool) -> list[Hop]:
        found: list[Hop] = []
        in_ns = [(a.namespace, a) for a in accounts]
        if not impersonated:
            for ns, account in in_ns:
                if account == subject:
                    continue
                if account in stand_ins:  # any name it may impersonate there: `default` if it may
                    grant = None
                    for held_grant in held(subject):
                        names = held_grant.rule.resource_names
                        name = "default" if not names or "default" in names else names[0]
                        if (not held_grant.namespace or held_grant.namespace == ns) and held_grant.rule.allows(
                                "impersonate", "", "serviceaccounts", "", name):
                            grant, account = held_grant, Subject("ServiceAccount", name, ns)
                            break
                else:
                    grant = can(subject, "impersonate", "", "serviceaccounts", "", ns, account.name)
                if grant and account != subject:
                    found.append(Hop(subject, account, "impersonate", f"impersonate serviceaccounts in {ns}", grant,
                                     ns, True))
            for user in users:
                if user != subject and (grant := can(subject, "impersonate", "", "users", name=user.name)):
                    found.append(Hop(subject, user, "impersonate", "impersonate users", grant, "", True))
            if some_name(subject, "impersonate", "users") or some_name(subject, "impersonate", "serviceaccounts"):
                own = ({Subject("Group", "system:serviceaccounts"),
                        Subject("Group", f"system:serviceaccounts:{subject.namespace}")}
                       if subject.kind == "ServiceAccount" else set())
                for group in groups:
                    if group != subject and group not in own and (
                            grant := can(subject, "impersonate", "", "groups", name=group.name)):
                        found.append(Hop(subject, group, "impersonate", "impersonate groups (and any user)", grant, "",
                                         True))
        others = [(ns, a) for ns, a in in_ns if impersonated or a != subject]
        for ns, account in others:
            if grant := can(subject, "create", "", "serviceaccounts", "token", ns, account.name):
                found.append(Hop(subject, account, "token", f"create serviceaccounts/token in {ns}", grant, ns))
        for ns, account in others:
            if made := make_pod(subject, ns):
                found.append(Hop(subject, account, "pod", made[0], made[1], ns))
        for ns, account in others:
            runners = [p for p in pods if p["metadata"].get("namespace") == ns
                       and ((p.get("spec") or {}).get("serviceAccountName") or "default") == account.name]
            if execed := exec_into(subject, runners):
                found.append(Hop(subject, account, "exec", execed[0], execed[1], ns))
        for ns in [*sorted(interesting), ""]:
            resource = "rolebindings" if ns else "clusterrolebindings"
            creates = can(subject, "create", RBAC_GROUP, resource, ns=ns)
            if not creates:
                continue
            where = f"in {ns}" if ns else "(a ClusterRoleBinding)"
            label = f"RoleBinding {ns}/(one it creates)" if ns else "ClusterRoleBinding (one it creates)"
            bindable = [(name, grant) for name in sorted(rbac.cluster_roles)
                        if (grant := can(subject, "bind", RBAC_GROUP, "clusterroles", "", ns, name))]
            bindable = [(n, g) for n, g in bindable if n == "cluster-admin"] or bindable
            candidates = [(f"ClusterRole {n}", rbac.cluster_role_rules(n), rbac.cluster_roles[n], g) for n, g in bindable]
            for (role_ns, name), role in sorted(rbac.roles.items()):
                if ns and role_ns == ns and (grant := can(subject, "bind", RBAC_GROUP, "roles", "", ns, name)):
                    candidates.append((f"Role {ns}/{name}", rbac.role_rules(ns, name), role, grant))
            for role_text, rules, evidence, grant in candidates:
                if not covers(subject, ns, rules):
                    found.append(Hop(subject, gain(role_text, rules, ns, evidence, label), "bind",
                                     f"bind {role_text} and create {resource} {where}", grant, ns))
            for kind_resource in (("roles", "clusterroles") if ns else ("clusterroles",)):
                role_ns = ns if kind_resource == "roles" else ""
                escalates = can(subject, "escalate", RBAC_GROUP, kind_resource, ns=role_ns)
                if (escalates and can(subject, "create", RBAC_GROUP, kind_resource, ns=role_ns)
                        and some_name(subject, "bind", kind_resource, ns) and not covers(subject, ns, (ANY_RULE,))):
                    kind = "Role" if kind_resource == "roles" else "ClusterRole"
                    found.append(Hop(subject, gain(f"any rule (a {kind} it creates with escalate)", (ANY_RULE,), ns,
                                                   creates.binding_obj, label), "escalate",
                                     f"create {kind_resource} with escalate, bind them and create {resource} {where}",
                                     escalates, ns))
        for binding in rbac.bindings:
            if subject not in rbac.binding_subjects(binding):
                continue
            ref, meta = binding.get("roleRef") or {}, binding.get("metadata") or {}
            name = str(ref.get("name"))
            ns = str(meta.get("namespace") or "") if binding.get("kind") == "RoleBinding" else ""
            if ref.get("kind") == "Role":
                kind_resource, role_ns, role = "roles", ns, rbac.roles.get((ns, name))
            else:
                kind_resource, role_ns, role = "clusterroles", "", rbac.cluster_roles.get(name)
            if role is None or covers(subject, ns, (ANY_RULE,)):
                continue
            escalates = can(subject, "escalate", RBAC_GROUP, kind_resource, "", role_ns, name)
            edits = (can(subject, "update", RBAC_GROUP, kind_resource, "", role_ns, name)
                     or can(subject, "patch", RBAC_GROUP, kind_resource, "", role_ns, name))
            if escalates and edits:
                kind = "Role" if kind_resource == "roles" else "ClusterRole"
                text = f"{kind} {ns + '/' if kind_resource == 'roles' else ''}{name} raised to any rule"
                binding_text = (f"RoleBinding {ns}/{meta.get('name')}" if ns else f"ClusterRoleBinding {meta.get('name')}")
                found.append(Hop(subject, gain(text, (ANY_RULE,), ns, role, binding_text), "escalate",
                                 f"escalate and update {kind_resource} {name}{f' in {ns}' if ns else ''}", escalates,
                                 ns, impersonated))
        return found

    def members(subject: Subject, impersonated: bool) -> list[Hop]:
        if subject.kind != "ServiceAccount":
            return []
        return [Hop(subject, m, "member", f"is in {m}", None, subject.namespace, impersonated)
                for m in (Subject("User", f"system:serviceaccount:{subject.namespace}:{subject.name}"),
                          Subject("Group", "system:serviceaccounts"),
                          Subject("Group", f"system:serviceaccounts:{subject.namespace}"))
                if m in meaningful]

    memo: dict[tuple[Subject, bool], list[Hop]] = {}
    directs: dict[Subject, list[Path]] = {}

    def own(subject: Subject) -> list[Path]:
        if subject not in directs:
            directs[subject] = direct(subject)
        return directs[subject]

    found = []
    for start in list(rbac.grants()):
        found += own(start)
        if covers(start, "", (ANY_RULE,)):
            continue
        seen, reported = {(start, False)}, {start}
        its_groups = {Subject("Group", "system:authenticated")}
        if start.kind == "ServiceAccount":
            its_groups |= {Subject("Group", "system:serviceaccounts"),
                    Subject("Group", f"system:serviceaccounts:{start.namespace}"),
                    Subject("User", f"system:serviceaccount:{start.namespace}:{start.name}")}
        queue: list[tuple[Subject, bool, tuple[Hop, ...]]] = [(start, False, ())]
        while queue:
            subject, impersonated, chain = queue.pop(0)
            if (subject, impersonated) not in memo:
                memo[(subject, impersonated)] = hops(subject, impersonated)
            following = memo[(subject, impersonated)] + (members(subject, impersonated) if chain else [])
            for hop in following:
                if (hop.to, hop.impersonated) in seen or hop.to in its_groups:
                    continue
                seen.add((hop.to, hop.impersonated))
                longer = (*chain, hop)
                if not (paths := own(hop.to)):
                    queue.append((hop.to, hop.impersonated, longer))
                elif hop.to not in reported:
                    reported.add(hop.to)
                    found.append(Path(start, longer[0].action, chain_via(longer, paths[0]), chain_kind(longer),
                                      longer[0].grant, longer[0].namespace, longer, paths[0]))
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
    {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["user-1"]},
    {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["group-2", "system:masters"]},
    {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes", "uids"], "verbs": ["impersonate"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "clusterroles"], "verbs": ["bind"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["rolebindings"], "verbs": ["create"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["escalate", "patch"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "clusterroles"], "verbs": ["create", "escalate"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["escalate", "update"], "resourceNames": ["cr-1"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cr-0", "agg-mid"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["clusterrolebindings"], "verbs": ["create"]},
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
        if kind == "Group" and rng.random() < 0.3:  # the groups ServiceAccounts are in, or the superuser group
            name = rng.choice(["system:serviceaccounts", f"system:serviceaccounts:{rng.choice(names)}",
                               "system:masters"])
            return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}
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
    """The comparison above is not vacuous: across the seeds, every kind of path and of hop occurs, chains of two
    impersonations and longer ones, principals gained by bind and by escalate, the superuser group; and host-network
    paths occur in namespaces where the subject holds no RoleBinding (reached through a ClusterRoleBinding)."""
    kinds: set[str] = set()
    hops: set[str] = set()
    via_cluster_binding = two_impersonations = superuser = False
    longest = 0
    for seed in range(40):
        rbac, namespaces, pods, targets = generated_cluster(seed)
        for path in Graph(rbac, namespaces, pods, targets, True).paths():
            kinds.add(path.kind)
            hops |= {hop.kind for hop in path.chain}
            longest = max(longest, len(path.chain))
            two_impersonations |= sum(hop.kind == "impersonate" for hop in path.chain) >= 2
            superuser |= any(hop.to == Subject("Group", SUPERUSER_GROUP) for hop in path.chain)
            if path.kind == "host-network" and path.grant and not path.grant.namespace:
                via_cluster_binding |= path.namespace not in rbac.namespaces_of(path.subject)
    assert kinds == {"pod-identity", "identity-objects", "host-network", "service-account", "token", "exec",
                     "impersonate", "escalate", "borrow"}
    assert hops == set(HOP_KINDS)
    assert two_impersonations and superuser and longest >= 3
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
