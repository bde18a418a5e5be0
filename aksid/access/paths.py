"""The Kubernetes side of the access graph: every path from a Kubernetes subject to an identity's token.

A path is subject → a request RBAC allows (aksid/access/rbac.py) in a namespace → what it gives → the identity.
Followed (aad-pod-identity docs "Concepts", "Block pod identity on host network"; azure-workload-identity docs
"Service account", "Quick start"; Kubernetes docs "Using RBAC Authorization" (privilege escalation prevention,
escalate, bind, impersonate), "Pod Security Standards" / "Enforce Pod Security Standards with namespace labels"):

- pod identity: NMI hands the identity to any pod of the binding's namespace whose label `aadpodidbinding` equals the
  AzureIdentityBinding's selector (managed mode: binding, identity and pod in one namespace). Whoever can make a pod
  there (create a pod, or create or edit a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob or
  ReplicationController, whose pod template they choose), or relabel one (update/patch pods: labels are mutable and
  NMI reads them per request), or exec/attach into a pod that carries the selector, gets the token; whoever can write
  AzureIdentity/AzureIdentityBinding objects where they can also make pods binds any pod they like; and a pod on the
  host network is never redirected to NMI, so it reaches IMDS, where the identity is assigned to the node pool:
  whoever can make a pod in a namespace whose Pod Security `enforce` level is `privileged` (or unset: the admission
  plugin's default is privileged) can run one (baseline and restricted forbid hostNetwork);
- workload identity: a pod may run as any ServiceAccount of its namespace, so whoever can make a pod in a federated
  ServiceAccount's namespace runs as it; `create serviceaccounts/token` on it mints its token (TokenRequest); exec into
  a pod running as it reads the projected token;
- for both: `impersonate` on users/groups without resourceNames acts as anyone (system:masters); on one
  ServiceAccount, acts with its rights; `bind` on roles with create rolebindings in a namespace, or `escalate` with
  update of roles there, grants oneself any right in it (cluster-admin and other `*` rules are plain rules here).

Groups stand for their members: who is in a group is Entra ID's or the authenticator's, not in a snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aksid.access.rbac import Grant, Rbac, Subject

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_IDENTITY_LABEL = "aadpodidbinding"
PI_GROUP = "aadpodidentity.k8s.io"
# (apiGroup, resource) of what makes pods from a template the creator chooses; the core group first.
WORKLOADS: tuple[tuple[str, str], ...] = (
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("", "replicationcontrollers"))


@dataclass(frozen=True)
class Path:
    """One way a subject reaches the identity's token."""

    subject: Subject
    action: str  # the request RBAC allows, e.g. "create pods in kube-addons"
    via: str  # what it gives, e.g. "AzureIdentityBinding kube-addons/external-dns-binding (selector external-dns)"
    kind: str  # pod-identity | identity-objects | host-network | service-account | token | exec | impersonate | escalate
    grant: Grant | None = None
    namespace: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.subject), self.action, self.via)

    def text(self) -> str:
        how = f" (by {self.grant.binding} → {self.grant.role})" if self.grant else ""
        return f"{self.subject} can {self.action}{how} → {self.via}"


@dataclass(frozen=True)
class Target:
    """Where the identity is handed out: a pod-identity binding or a federated ServiceAccount."""

    model: str  # pod-identity | workload-identity
    namespace: str
    name: str  # the binding's name or the ServiceAccount's
    selector: str = ""
    obj: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        if self.model == "pod-identity":
            return f"AzureIdentityBinding {self.namespace}/{self.name} (selector {self.selector})"
        return f"ServiceAccount {self.namespace}/{self.name}"


def pod_security_allows_host_network(namespace: Mapping[str, Any] | None) -> bool:
    level = ((namespace or {}).get("metadata", {}).get("labels") or {}).get(PSA_ENFORCE, "privileged")
    return level == "privileged"


class Graph:
    """The kube side of the graph for one identity: its targets, and who reaches them how."""

    def __init__(self, rbac: Rbac, namespaces: list[Mapping[str, Any]], pods: list[Mapping[str, Any]],
                 targets: list[Target], node_identity: bool) -> None:
        self.rbac = rbac
        self.namespaces = {str(n["metadata"]["name"]): n for n in namespaces}
        self.pods = pods
        self.targets = targets
        # the identity is assigned to the node pool (pod identity): a host-network pod reaches it through IMDS
        self.node_identity = node_identity
        # Computed once, not per subject: the namespaces where a hostNetwork pod may run, in order; each target's
        # pods (those carrying its selector, or running as its ServiceAccount); and, per subject and scope
        # (Rbac.scope_of: a namespace where it holds RoleBinding grants, or "" for everywhere else), how it makes
        # pods and whether it can escalate. A subject is thus evaluated in the namespaces it is bound in, and once
        # for all the others, instead of in every namespace.
        self._host_network = [n for n in sorted(self.namespaces) if pod_security_allows_host_network(self.namespaces[n])]
        escalatable = {t.namespace for t in targets}
        if node_identity:  # any right there includes a hostNetwork pod
            escalatable.update(self._host_network)
        self._escalatable = sorted(escalatable)
        self._host_network_set, self._escalatable_set = frozenset(self._host_network), frozenset(escalatable)
        self._target_pods = [self._pods_of(target) for target in targets]
        self._makers: dict[tuple[Subject, str, bool], tuple[str, Grant] | None] = {}
        self._escalations: dict[tuple[Subject, str], tuple[str, Grant] | None] = {}

    def _pods_of(self, target: Target) -> list[Mapping[str, Any]]:
        ns = target.namespace
        if target.model == "pod-identity":
            return [p for p in self.pods if p["metadata"].get("namespace") == ns
                    and (p["metadata"].get("labels") or {}).get(POD_IDENTITY_LABEL) == target.selector]
        return [p for p in self.pods if p["metadata"].get("namespace") == ns
                and ((p.get("spec") or {}).get("serviceAccountName") or "default") == target.name]

    def _reach(self, subject: Subject, namespaces: list[str], members: frozenset[str]) -> list[str]:
        """Of these namespaces (sorted; `members` the same as a set), those where the subject holds any grant: all
        of them when it holds ClusterRoleBinding grants, else those of its RoleBindings (elsewhere RBAC allows it
        nothing), in the same order."""
        if self.rbac.holds_cluster_grants(subject):
            return namespaces
        return sorted(n for n in self.rbac.namespaces_of(subject) if n in members)

    def _reaches(self, subject: Subject, namespace: str) -> bool:
        return self.rbac.holds_cluster_grants(subject) or namespace in self.rbac.namespaces_of(subject)

    # -- requests -----------------------------------------------------------------------------

    def make_pod(self, subject: Subject, namespace: str, relabel: bool = False) -> tuple[str, Grant] | None:
        """The first request by which the subject puts a pod of its choosing into the namespace."""
        made = self._pod_maker(subject, self.rbac.scope_of(subject, namespace), relabel)
        return (f"{made[0]} in {namespace}", made[1]) if made else None

    def _pod_maker(self, subject: Subject, scope: str, relabel: bool) -> tuple[str, Grant] | None:
        """make_pod's request (without "in NAMESPACE") for every namespace of this scope, memoised."""
        key = (subject, scope, relabel)
        if key in self._makers:
            return self._makers[key]
        self._makers[key] = made = self._first_pod_maker(subject, scope, relabel)
        return made

    def _first_pod_maker(self, subject: Subject, scope: str, relabel: bool) -> tuple[str, Grant] | None:
        grant = self.rbac.subject_can(subject, "create", "", "pods", namespace=scope)
        if grant:
            return "create pods", grant
        for verb in ("create", "update", "patch"):
            for group, resource in WORKLOADS:
                grant = self.rbac.subject_can(subject, verb, group, resource, namespace=scope)
                if grant:
                    return f"{verb} {resource}", grant
        if relabel:
            for verb in ("update", "patch"):
                grant = self.rbac.subject_can(subject, verb, "", "pods", namespace=scope)
                if grant:
                    return f"{verb} pods (labels)", grant
        return None

    def exec_into(self, subject: Subject, pods: list[Mapping[str, Any]]) -> tuple[str, Grant, str] | None:
        for pod in pods:
            namespace, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
            for sub in ("exec", "attach"):
                grant = self.rbac.subject_can(subject, "create", "", "pods", sub, namespace, name)
                if grant:
                    return f"create pods/{sub} in {namespace}", grant, name
        return None

    # -- paths --------------------------------------------------------------------------------

    def direct_paths(self, subject: Subject) -> list[Path]:
        paths: list[Path] = []
        for target, carriers in zip(self.targets, self._target_pods, strict=True):
            ns = target.namespace
            if not self._reaches(subject, ns):
                continue  # every request below is in ns, where RBAC allows the subject nothing
            if target.model == "pod-identity":
                made = self.make_pod(subject, ns, relabel=True)
                if made:
                    paths.append(Path(subject, made[0], f"a pod labelled {POD_IDENTITY_LABEL}={target.selector} "
                                      f"matches {target}", "pod-identity", made[1], ns))
                execed = self.exec_into(subject, carriers)
                if execed:
                    paths.append(Path(subject, execed[0], f"pod {ns}/{execed[2]} holds the token of {target}", "exec",
                                      execed[1], ns))
                for resource in ("azureidentitybindings", "azureidentities"):
                    for verb in ("create", "update", "patch"):
                        grant = self.rbac.subject_can(subject, verb, PI_GROUP, resource, namespace=ns)
                        if grant:
                            paths.append(Path(subject, f"{verb} {resource} in {ns}",
                                              f"binds any pod of {ns} to the identity of {target}", "identity-objects",
                                              grant, ns))
                            break
                    else:
                        continue
                    break
            else:
                made = self.make_pod(subject, ns)
                if made:
                    paths.append(Path(subject, made[0], f"a pod run as {target}", "service-account", made[1], ns))
                grant = self.rbac.subject_can(subject, "create", "", "serviceaccounts", "token", ns, target.name)
                if grant:
                    paths.append(Path(subject, f"create serviceaccounts/token in {ns}",
                                      f"a token of {target} (TokenRequest)", "token", grant, ns))
                execed = self.exec_into(subject, carriers)
                if execed:
                    paths.append(Path(subject, execed[0], f"pod {ns}/{execed[2]} holds the token of {target}", "exec",
                                      execed[1], ns))
        if self.node_identity:
            for namespace in self._reach(subject, self._host_network, self._host_network_set):
                made = self.make_pod(subject, namespace)
                if made:
                    level = (self.namespaces[namespace]["metadata"].get("labels") or {}).get(PSA_ENFORCE)
                    paths.append(Path(subject, made[0], f"a hostNetwork pod in {namespace} (Pod Security enforce "
                                      f"{level or 'unset, so privileged'}) reaches IMDS around NMI",
                                      "host-network", made[1], namespace))
        paths += self.escalation_paths(subject)
        return paths

    def escalation_paths(self, subject: Subject) -> list[Path]:
        """bind/escalate in a namespace where a target is, or anywhere when the identity is on the node pool;
        impersonating any user or group."""
        paths = []
        for namespace in self._reach(subject, self._escalatable, self._escalatable_set):
            found = self._escalation(subject, self.rbac.scope_of(subject, namespace))
            if found:
                paths.append(Path(subject, f"{found[0]} in {namespace}",
                                  f"any right in {namespace}, a pod there included", "escalate", found[1], namespace))
        for resource in ("groups", "users"):
            grant = self.rbac.subject_can(subject, "impersonate", "", resource)
            if grant and not grant.rule.resource_names:
                paths.append(Path(subject, f"impersonate {resource}", "acts as any user or group, system:masters "
                                  "included", "impersonate", grant))
                break
        return paths

    def _escalation(self, subject: Subject, scope: str) -> tuple[str, Grant] | None:
        """escalation_paths' request (without "in NAMESPACE") for every namespace of this scope, memoised."""
        key = (subject, scope)
        if key in self._escalations:
            return self._escalations[key]
        found: tuple[str, Grant] | None = None
        binds = (self.rbac.subject_can(subject, "bind", "rbac.authorization.k8s.io", "clusterroles", namespace=scope)
                 or self.rbac.subject_can(subject, "bind", "rbac.authorization.k8s.io", "roles", namespace=scope))
        creates = self.rbac.subject_can(subject, "create", "rbac.authorization.k8s.io", "rolebindings", namespace=scope)
        if binds and creates:
            found = "bind roles and create rolebindings", binds
        else:
            escalates = self.rbac.subject_can(subject, "escalate", "rbac.authorization.k8s.io", "roles",
                                              namespace=scope)
            updates = (self.rbac.subject_can(subject, "update", "rbac.authorization.k8s.io", "roles", namespace=scope)
                       or self.rbac.subject_can(subject, "patch", "rbac.authorization.k8s.io", "roles",
                                                namespace=scope))
            if escalates and updates:
                found = "escalate and update roles", escalates
        self._escalations[key] = found
        return found

    def paths(self) -> list[Path]:
        """Every path of every subject bound to anything, impersonation of a ServiceAccount followed one step."""
        direct = {subject: self.direct_paths(subject) for subject in self.rbac.grants()}
        found = [p for paths in direct.values() for p in paths]
        # the ServiceAccounts worth impersonating, in order; a subject can impersonate one only if some rule of it could
        # allow that at all, and only in a namespace where it holds grants
        borrowed = [(other, other_paths) for other, other_paths in direct.items()
                    if other.kind == "ServiceAccount" and other_paths]
        by_namespace: dict[str, list[int]] = {}
        for at, (other, _) in enumerate(borrowed):
            by_namespace.setdefault(other.namespace, []).append(at)
        for subject in self.rbac.grants():
            if not self.rbac.may_ever(subject, "impersonate", "", "serviceaccounts"):
                continue
            if self.rbac.holds_cluster_grants(subject):
                candidates = borrowed
            else:
                candidates = [borrowed[at] for at in sorted(at for ns in self.rbac.namespaces_of(subject)
                                                                 for at in by_namespace.get(ns, ()))]
            for other, other_paths in candidates:
                if other == subject:
                    continue
                grant = self.rbac.subject_can(subject, "impersonate", "", "serviceaccounts", namespace=other.namespace,
                                              name=other.name)
                if grant:
                    found.append(Path(subject, f"impersonate serviceaccounts in {other.namespace}",
                                      f"acts as {other}, which can {other_paths[0].action} → {other_paths[0].via}",
                                      "impersonate", grant, other.namespace))
        return sorted(dict((p.key, p) for p in found).values(), key=lambda p: p.key)


# -- from a snapshot ------------------------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a).lower() == str(b).lower()


def identity_targets(identity: Mapping[str, Any], azure_identities: list[Mapping[str, Any]],
                     bindings: list[Mapping[str, Any]], credentials: list[Mapping[str, Any]] | None,
                     issuers: list[str]) -> list[Target]:
    """Where an identity (ARM resource) is handed out in this cluster: each AzureIdentityBinding of an AzureIdentity
    naming it (clientID or resourceID), and each ServiceAccount a federated credential of it trusts for one of the
    issuers (this cluster's)."""
    client_id = (identity.get("properties") or {}).get("clientId")
    targets = []
    named = {(i["metadata"].get("namespace"), i["metadata"]["name"]) for i in azure_identities
             if _same((i.get("spec") or {}).get("clientID"), client_id)
             or _same((i.get("spec") or {}).get("resourceID"), identity.get("id"))}
    for binding in bindings:
        spec = binding.get("spec") or {}
        namespace = binding["metadata"].get("namespace")
        if (namespace, spec.get("azureIdentity")) in named and spec.get("selector"):
            targets.append(Target("pod-identity", namespace, binding["metadata"]["name"], str(spec["selector"]), binding))
    for credential in credentials or []:
        props = credential.get("properties") or {}
        subject = str(props.get("subject") or "")
        if props.get("issuer") not in issuers or not subject.startswith("system:serviceaccount:"):
            continue
        namespace, _, name = subject.removeprefix("system:serviceaccount:").partition(":")
        if namespace and name and ":" not in name:
            targets.append(Target("workload-identity", namespace, name, obj=credential))
    return targets
