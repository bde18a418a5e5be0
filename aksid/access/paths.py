"""The Kubernetes side of the access graph: every path from a Kubernetes subject to an identity's token.

A path is subject → a request RBAC allows (aksid/access/rbac.py) in a namespace → what it gives → the identity, or
subject → a chain of principals it comes to act as → such a request of the last one.
Followed (aad-pod-identity docs "Concepts", "Block pod identity on host network"; azure-workload-identity docs
"Service account", "Quick start"; Kubernetes docs "Using RBAC Authorization" (privilege escalation prevention and
bootstrapping: escalate, bind), "Authenticating" (user impersonation), "Pod Security Standards" / "Enforce Pod
Security Standards with namespace labels", and k8s.io/apiserver's impersonation filter
(pkg/endpoints/filters/impersonation.go)):

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
  a pod running as it reads the projected token.

Chains (Graph.paths(): a breadth-first search from each subject to a fixed point, every principal met once, so a
cycle ends; each principal whose own rights make a path above is reported once per subject, through the shortest
chain, every hop with the binding and rule that allow it, and ends the chain; a subject holding every rule in every
namespace, cluster-admin's, has no chains: they add nothing). A subject comes to act as another principal by:

- impersonation (`impersonate` on `users`, `groups` or `serviceaccounts` of the core group; resourceNames narrow it;
  `userextras` and `uids` add no rights and are not followed). A ServiceAccount is impersonated as user
  `system:serviceaccount:<ns>:<name>` (the API server checks `impersonate serviceaccounts` in <ns>, name <name>, and
  adds the groups `system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`); a user by name
  (with `system:authenticated`); a group only together with a user, which may be any name the subject may
  impersonate (a user or a ServiceAccount: neither has to exist), so a group is followed only for a subject that may
  impersonate some user. Impersonating `system:masters` is everything: kube-apiserver authorizes that group before
  RBAC. Impersonation is one hop per request: the filter checks the *authenticated* requester and then drops the
  headers, so a principal held by impersonation cannot itself impersonate; the chain continues only through its other
  rights, and through credentials it can get:
- credentials of a ServiceAccount: `create serviceaccounts/token` on it (TokenRequest), a pod made in its namespace
  (pods run as any ServiceAccount of their namespace, and the maker chooses the command), exec/attach into a pod
  running as it. Such a principal is held by credentials, so its impersonation rights count again (a chain of two
  impersonations: A impersonates B, B mints C's token, C impersonates D);
- membership: a ServiceAccount held through a chain brings the rights of its groups `system:serviceaccounts` and
  `system:serviceaccounts:<ns>` (a subject's own groups are principals of their own, reported as themselves);
- bind and escalate (privilege escalation prevention): creating a RoleBinding in a namespace (or a
  ClusterRoleBinding) of a role the subject does not hold needs `bind` on that role (`roles`/`clusterroles`, the
  role's name among resourceNames if any; a RoleBinding's check is in its namespace): with both, the subject binds
  the role to itself and holds its rules there (a gained principal, "holder of ClusterRole admin in namespace x"). A
  role's rules can be raised beyond the editor's own with `escalate` on it: with `escalate` and `update`/`patch` on a
  role bound to the subject, it holds any rule wherever that binding applies; with `escalate` and `create` on roles,
  `bind` on some role name and `create` on rolebindings, it creates a role with any rule and binds it. Binding a role
  whose every rule the subject holds already gains nothing and is not followed.

Simplified, knowingly: the rights of an identity made of several principals (a ServiceAccount and its groups) are
judged principal by principal (a path that needs one right of each is not found); a principal held by impersonation
has what its own bindings give, not what the impersonated user's other (unlisted) groups would; ServiceAccounts are
known from the bindings, and one a binding names is taken to exist (one no binding names is followed only in the
namespaces whose `system:serviceaccounts:<ns>` group holds rights, or in every namespace when `system:serviceaccounts`
does: as `default` to borrow, as any name a rule allows to impersonate); a wildcard `bind` is followed to
cluster-admin only (it holds every rule); not followed: bind through update/patch of an existing binding (adding
oneself as a subject), aggregation labels on a ClusterRole one creates, editing the rules of a role with an
aggregationRule (its controller rewrites them), CertificateSigningRequests for another user's client certificate,
mutating admission webhooks one may edit, and the Node authorizer.

Groups stand for their members: who is in a group is Entra ID's or the authenticator's, not in a snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aksid.access.rbac import SA_PREFIX, Grant, Rbac, Rule, Subject

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_IDENTITY_LABEL = "aadpodidbinding"
PI_GROUP = "aadpodidentity.k8s.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
# (apiGroup, resource) of what makes pods from a template the creator chooses; the core group first.
WORKLOADS: tuple[tuple[str, str], ...] = (
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("", "replicationcontrollers"))
GAINED = "Gained"  # a hypothetical principal: the rights a subject gives itself with bind or escalate
SUPERUSER_GROUP = "system:masters"  # kube-apiserver authorizes it before RBAC (--authorization-mode's privileged group)
AUTHENTICATED = "system:authenticated"
SA_GROUP = "system:serviceaccounts"
ANY_RULE = Rule(("*",), ("*",), ("*",))
# The order hops are tried in (the first of several equally short chains is the one shown).
HOP_KINDS = ("impersonate", "token", "pod", "exec", "bind", "escalate", "member")


def holder_text(subject: Subject) -> str:
    """How a chain names whom a hop leads to."""
    return f"holder of {subject.name}" if subject.kind == GAINED else str(subject)


@dataclass(frozen=True)
class Hop:
    """One step of a chain: `subject` comes to act as `to` by a request its rights allow (`grant`)."""

    subject: Subject
    to: Subject
    kind: str  # one of HOP_KINDS
    action: str  # the request, e.g. "impersonate serviceaccounts in kube-addons"
    grant: Grant | None = None
    namespace: str = ""
    impersonated: bool = False  # `to` is held by impersonation (one request at a time), not by its credentials

    def text(self) -> str:
        if self.kind == "member":
            return f"{self.subject} is in {self.to}"
        return f"{self.subject} can {self.action}{_by(self.grant, True)}, so acts as {holder_text(self.to)}"


@dataclass(frozen=True)
class Path:
    """One way a subject reaches the identity's token: directly, or through a chain of principals it comes to act as
    (`chain`, then the last one's own path `final`; `action` and `grant` are then the chain's first request)."""

    subject: Subject
    action: str  # the request RBAC allows, e.g. "create pods in kube-addons"
    via: str  # what it gives, e.g. "AzureIdentityBinding kube-addons/external-dns-binding (selector external-dns)"
    # pod-identity | identity-objects | host-network | service-account | token | exec (direct); impersonate | escalate
    # | borrow (a chain with an impersonation, else with a bind/escalate, else through credentials only)
    kind: str
    grant: Grant | None = None
    namespace: str = ""
    chain: tuple[Hop, ...] = ()
    final: Path | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.subject), self.action, self.via)

    def text(self) -> str:
        if not self.chain or self.final is None:
            how = f" (by {self.grant.binding} → {self.grant.role})" if self.grant else ""
            return f"{self.subject} can {self.action}{how} → {self.via}"
        first, final = self.chain[0], self.final
        out = f"{self.subject} can {first.action}{_by(first.grant, True)}, so acts as {holder_text(first.to)}"
        for hop in self.chain[1:]:
            out += (f", a member of {hop.to}" if hop.kind == "member" else
                    f", which can {hop.action}{_by(hop.grant, True)}, so acts as {holder_text(hop.to)}")
        return out + f", which can {final.action}{_by(final.grant, False)} → {final.via}"


def _by(grant: Grant | None, rule: bool) -> str:
    if grant is None:
        return ""
    return f" (by {grant.binding} → {grant.role}{f': {grant.rule.text()}' if rule else ''})"


def chain_via(chain: tuple[Hop, ...], final: Path) -> str:
    """A chain path's `via`: whom each hop leads to and what the next one can do, ending with the last one's path."""
    parts: list[str] = []
    for at, hop in enumerate(chain):
        following = chain[at + 1] if at + 1 < len(chain) else None
        if hop.kind == "member":
            parts.append(f"a member of {hop.to}")
        else:
            parts.append(f"acts as {holder_text(hop.to)}")
        if following is None or following.kind != "member":
            parts.append(f"which can {following.action if following else final.action}")
    return ", ".join(parts) + f" → {final.via}"


def chain_kind(chain: tuple[Hop, ...]) -> str:
    kinds = {hop.kind for hop in chain}
    if "impersonate" in kinds:
        return "impersonate"
    return "escalate" if kinds & {"bind", "escalate"} else "borrow"


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


def own_groups(subject: Subject) -> set[Subject]:
    """The groups a subject is in by what it is (a ServiceAccount's; every subject is in system:authenticated)."""
    groups = {Subject("Group", AUTHENTICATED)}
    if subject.kind == "ServiceAccount":
        groups |= {Subject("Group", SA_GROUP), Subject("Group", f"{SA_GROUP}:{subject.namespace}"),
                   Subject("User", subject.user)}
    return groups


def has_resource_rules(grants: list[Grant]) -> bool:
    """Whether some grant can allow a resource request (a principal with only nonResourceURLs rules leads nowhere)."""
    return any(g.rule.resources for g in grants)


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
        # pods. A subject is thus evaluated in the namespaces it is bound in, and once for all the others, instead of
        # in every namespace.
        self._host_network = [n for n in sorted(self.namespaces) if pod_security_allows_host_network(self.namespaces[n])]
        self._host_network_set = frozenset(self._host_network)
        self._target_pods = [self._pods_of(target) for target in targets]
        self._makers: dict[tuple[Subject, str, bool], tuple[str, Grant] | None] = {}
        self._direct: dict[Subject, list[Path]] = {}
        self._hops: dict[tuple[Subject, bool], list[Hop]] = {}
        self._gained: dict[tuple[str, str], Subject] = {}
        self._bindable: dict[tuple[Subject, str], list[tuple[str, Grant]]] = {}
        self._principals_indexed = False
        self._all_paths: list[Path] | None = None

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

    # -- direct paths: a principal's own rights ------------------------------------------------

    def direct_paths(self, subject: Subject) -> list[Path]:
        """The paths a principal's own rights make (memoised)."""
        found = self._direct.get(subject)
        if found is None:
            found = self._direct[subject] = self._direct_paths(subject)
        return found

    def _direct_paths(self, subject: Subject) -> list[Path]:
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
        return paths

    # -- the principals a chain can come to act as -----------------------------------------------

    def _index_principals(self) -> None:
        """Once: the principals worth acting as (those holding resource rules), the ServiceAccounts a chain can
        borrow or impersonate by namespace, the users and groups it can impersonate, ServiceAccounts' pods, and the
        namespaces where a bind is worth following."""
        if self._principals_indexed:
            return
        self._principals_indexed = True
        rbac = self.rbac
        meaningful = {s for s, grants in rbac.grants().items() if has_resource_rules(grants)}
        superuser = Subject("Group", SUPERUSER_GROUP)
        if superuser not in rbac.grants() and not rbac.assumed(superuser):
            rbac.assume(superuser, "kube-apiserver (system:masters is authorized before RBAC)", "any rule",
                        [ANY_RULE], "", {"apiVersion": "v1", "kind": "Group", "metadata": {"name": SUPERUSER_GROUP}})
        self._meaningful = meaningful | ({superuser} if rbac.assumed(superuser) else set())
        sa_groups = {s.name[len(SA_GROUP) + 1:] for s in meaningful
                     if s.kind == "Group" and s.name.startswith(f"{SA_GROUP}:")}
        if Subject("Group", SA_GROUP) in meaningful:
            sa_groups |= set(self.namespaces)
        accounts = {s for s in meaningful if s.kind == "ServiceAccount" and s.namespace}  # (none: not a valid subject)
        # stand-ins for the ServiceAccounts no binding names, where their groups hold rights: `default` (every
        # namespace has it) to borrow; to impersonate, any name a rule allows (it need not exist)
        self._stand_ins = {Subject("ServiceAccount", "default", ns) for ns in sa_groups} - accounts
        accounts |= self._stand_ins
        self._accounts: dict[str, list[Subject]] = {}
        for account in sorted(accounts, key=lambda s: (s.namespace, s.name)):
            self._accounts.setdefault(account.namespace, []).append(account)
        self._account_namespaces = sorted(self._accounts)
        self._account_namespace_set = frozenset(self._account_namespaces)
        self._users = sorted((s for s in meaningful if s.kind == "User" and not s.name.startswith(SA_PREFIX)),
                             key=lambda s: s.name)
        self._groups = sorted((s for s in self._meaningful if s.kind == "Group" and s.name != AUTHENTICATED),
                              key=lambda s: s.name)
        self._pods_by_account: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for pod in self.pods:
            key = (str(pod["metadata"].get("namespace", "")),
                   str((pod.get("spec") or {}).get("serviceAccountName") or "default"))
            self._pods_by_account.setdefault(key, []).append(pod)
        self._roles: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for (role_ns, name), role in sorted(rbac.roles.items()):
            self._roles.setdefault(role_ns, []).append((name, role))
        interesting = {t.namespace for t in self.targets} | set(self._account_namespaces)
        if self.node_identity:
            interesting.update(self._host_network)
        self._interesting = sorted(interesting)
        self._interesting_set = frozenset(interesting)

    def hops(self, subject: Subject, impersonated: bool = False) -> list[Hop]:
        """How a principal, held by its credentials or by impersonation, comes to act as others (memoised); its
        groups (member hops) apart: members()."""
        self._index_principals()
        key = (subject, impersonated)
        found = self._hops.get(key)
        if found is None:
            found = [] if impersonated else self._impersonations(subject)
            found += self._credentials(subject, impersonated)
            found += self._binds(subject)
            found += self._escalations(subject, impersonated)
            self._hops[key] = found
        return found

    def members(self, subject: Subject, impersonated: bool) -> list[Hop]:
        """A ServiceAccount's groups (and the user naming it) that hold rights: acting as it is acting as them."""
        if subject.kind != "ServiceAccount":
            return []
        hops = []
        for member in (Subject("User", subject.user), Subject("Group", SA_GROUP),
                       Subject("Group", f"{SA_GROUP}:{subject.namespace}")):
            if member in self._meaningful:
                hops.append(Hop(subject, member, "member", f"is in {member}", None, subject.namespace, impersonated))
        return hops

    def _impersonations(self, subject: Subject) -> list[Hop]:
        rbac, hops = self.rbac, []
        if rbac.may_ever(subject, "impersonate", "", "serviceaccounts"):
            for ns in self._reach(subject, self._account_namespaces, self._account_namespace_set):
                for account in self._accounts[ns]:
                    if account == subject:
                        continue
                    if account in self._stand_ins:
                        grant, name = self._some_account(subject, ns)
                        account = Subject("ServiceAccount", name, ns)
                    else:
                        grant = rbac.subject_can(subject, "impersonate", "", "serviceaccounts", namespace=ns,
                                                 name=account.name)
                    if grant and account != subject:
                        hops.append(Hop(subject, account, "impersonate", f"impersonate serviceaccounts in {ns}", grant,
                                        ns, True))
        users = rbac.may_ever(subject, "impersonate", "", "users")
        if users:
            for user in self._users:
                if user == subject:
                    continue
                grant = rbac.subject_can(subject, "impersonate", "", "users", name=user.name)
                if grant:
                    hops.append(Hop(subject, user, "impersonate", "impersonate users", grant, "", True))
        # a group is impersonated together with a user: any name the subject may impersonate as user or ServiceAccount
        if (users or rbac.may_ever(subject, "impersonate", "", "serviceaccounts")) \
                and rbac.may_ever(subject, "impersonate", "", "groups"):
            own = {Subject("Group", SA_GROUP), Subject("Group", f"{SA_GROUP}:{subject.namespace}")} \
                if subject.kind == "ServiceAccount" else set()
            for group in self._groups:
                if group == subject or group in own:
                    continue
                grant = rbac.subject_can(subject, "impersonate", "", "groups", name=group.name)
                if grant:
                    hops.append(Hop(subject, group, "impersonate", "impersonate groups (and any user)", grant, "",
                                    True))
        return hops

    def _some_account(self, subject: Subject, namespace: str) -> tuple[Grant | None, str]:
        """A ServiceAccount name of the namespace the subject may impersonate (`default` when any), and the grant."""
        for grant in self.rbac.rules_of(subject, namespace):
            names = grant.rule.resource_names
            name = "default" if not names or "default" in names else names[0]
            if grant.rule.allows("impersonate", "", "serviceaccounts", "", name):
                return grant, name
        return None, ""

    def _credentials(self, subject: Subject, impersonated: bool) -> list[Hop]:
        """ServiceAccounts whose credentials the principal can get: a token, a pod run as it, exec into its pod."""
        rbac, hops = self.rbac, []
        namespaces = self._reach(subject, self._account_namespaces, self._account_namespace_set)

        def others(ns: str) -> list[Subject]:  # itself too when held by impersonation: its credentials are new
            return [a for a in self._accounts[ns] if impersonated or a != subject]

        if rbac.may_ever(subject, "create", "", "serviceaccounts", "token"):
            for ns in namespaces:
                for account in others(ns):
                    grant = rbac.subject_can(subject, "create", "", "serviceaccounts", "token", ns, account.name)
                    if grant:
                        hops.append(Hop(subject, account, "token", f"create serviceaccounts/token in {ns}", grant, ns))
        if namespaces:  # decided once for the namespaces the subject holds no RoleBinding in (Rbac.scope_of)
            scoped = rbac.namespaces_of(subject)
            elsewhere = self._pod_maker(subject, "", False) if rbac.holds_cluster_grants(subject) else None
            for ns in namespaces:
                made = self._pod_maker(subject, ns, False) if ns in scoped else elsewhere
                if made:
                    hops += [Hop(subject, account, "pod", f"{made[0]} in {ns}", made[1], ns) for account in others(ns)]
        if not any(rbac.may_ever(subject, "create", "", "pods", sub) for sub in ("exec", "attach")):
            return hops  # most principals: no pod of any account to ask about (at 20,000 pods, most of the search)
        for ns in namespaces:
            for account in others(ns):
                execed = self.exec_into(subject, self._pods_by_account.get((ns, account.name), []))
                if execed:
                    hops.append(Hop(subject, account, "exec", execed[0], execed[1], ns))
        return hops

    def gained(self, role: str, rules: tuple[Rule, ...], namespace: str, evidence: Mapping[str, Any],
               binding: str) -> Subject:
        """The hypothetical principal holding `rules` (as `role`) in `namespace` ("" = every namespace)."""
        key = (role, namespace)
        found = self._gained.get(key)
        if found is None:
            where = f"in namespace {namespace}" if namespace else "in every namespace"
            found = self._gained[key] = Subject(GAINED, f"{role} {where}")
            self.rbac.assume(found, binding, role, rules, namespace, evidence)
        return found

    def _bindable_cluster_roles(self, subject: Subject, namespace: str) -> list[tuple[str, Grant]]:
        """The ClusterRoles the subject may bind in the namespace ("" = by a ClusterRoleBinding), memoised by scope;
        cluster-admin alone when it may bind that one (it holds every rule)."""
        scope = self.rbac.scope_of(subject, namespace) if namespace else ""
        key = (subject, scope)
        found = self._bindable.get(key)
        if found is None:
            found = []
            for name in sorted(self.rbac.cluster_roles):
                grant = self.rbac.subject_can(subject, "bind", RBAC_GROUP, "clusterroles", namespace=scope, name=name)
                if grant:
                    found.append((name, grant))
            admin = [(n, g) for n, g in found if n == "cluster-admin"]
            self._bindable[key] = found = admin or found
        return found

    def _may_bind_some(self, subject: Subject, resource: str, namespace: str) -> Grant | None:
        """A grant allowing `bind` on some name of roles/clusterroles in the namespace (the role it would create)."""
        for grant in self.rbac.rules_of(subject, namespace):
            rule = grant.rule
            if rule.allows("bind", RBAC_GROUP, resource, "", rule.resource_names[0] if rule.resource_names else "x"):
                return grant
        return None

    def _binds(self, subject: Subject) -> list[Hop]:
        """Roles the subject binds to itself: with bind on them, or after creating one with escalate."""
        rbac, hops = self.rbac, []
        if not (rbac.may_ever(subject, "bind", RBAC_GROUP, "clusterroles")
                or rbac.may_ever(subject, "bind", RBAC_GROUP, "roles")):
            return hops
        for ns in [*self._reach(subject, self._interesting, self._interesting_set), ""]:
            binding_resource = "rolebindings" if ns else "clusterrolebindings"
            creates = rbac.subject_can(subject, "create", RBAC_GROUP, binding_resource, namespace=ns)
            if not creates:
                continue
            where = f"in {ns}" if ns else "(a ClusterRoleBinding)"
            label = f"RoleBinding {ns}/(one it creates)" if ns else "ClusterRoleBinding (one it creates)"
            candidates: list[tuple[str, tuple[Rule, ...], Mapping[str, Any], Grant]] = [
                (f"ClusterRole {name}", rbac.cluster_role_rules(name), rbac.cluster_roles[name], grant)
                for name, grant in self._bindable_cluster_roles(subject, ns)]
            for name, role in self._roles.get(ns, []):
                grant = rbac.subject_can(subject, "bind", RBAC_GROUP, "roles", namespace=ns, name=name)
                if grant:
                    candidates.append((f"Role {ns}/{name}", rbac.role_rules(ns, name), role, grant))
            for role, rules, evidence, grant in candidates:
                if not rbac.covers(subject, ns, rules):
                    hops.append(Hop(subject, self.gained(role, rules, ns, evidence, label), "bind",
                                    f"bind {role} and create {binding_resource} {where}", grant, ns))
            # a role it creates with any rule (escalate), then binds: Roles in the namespace, or ClusterRoles
            for resource in (("roles", "clusterroles") if ns else ("clusterroles",)):
                role_ns = ns if resource == "roles" else ""
                escalates = rbac.subject_can(subject, "escalate", RBAC_GROUP, resource, namespace=role_ns)
                if (escalates and rbac.subject_can(subject, "create", RBAC_GROUP, resource, namespace=role_ns)
                        and self._may_bind_some(subject, resource, ns) and not rbac.covers(subject, ns, [ANY_RULE])):
                    kind = "Role" if resource == "roles" else "ClusterRole"
                    role = f"any rule (a {kind} it creates with escalate)"
                    hops.append(Hop(subject, self.gained(role, (ANY_RULE,), ns, creates.binding_obj, label), "escalate",
                                    f"create {resource} with escalate, bind them and create {binding_resource} {where}",
                                    escalates, ns))
        return hops

    def _escalations(self, subject: Subject, impersonated: bool) -> list[Hop]:
        """Roles bound to the principal that it may raise to any rule (escalate + update/patch on them)."""
        rbac, hops = self.rbac, []
        if not (rbac.may_ever(subject, "escalate", RBAC_GROUP, "roles")
                or rbac.may_ever(subject, "escalate", RBAC_GROUP, "clusterroles")):
            return hops
        for binding in rbac.bindings_of(subject):
            ref = binding.get("roleRef") or {}
            name = str(ref.get("name"))
            ns = str((binding.get("metadata") or {}).get("namespace") or "") \
                if binding.get("kind") == "RoleBinding" else ""
            resource, role_ns = ("roles", ns) if ref.get("kind") == "Role" else ("clusterroles", "")
            role = rbac.roles.get((ns, name)) if resource == "roles" else rbac.cluster_roles.get(name)
            if role is None or rbac.covers(subject, ns, [ANY_RULE]):
                continue
            escalates = rbac.subject_can(subject, "escalate", RBAC_GROUP, resource, namespace=role_ns, name=name)
            edits = (rbac.subject_can(subject, "update", RBAC_GROUP, resource, namespace=role_ns, name=name)
                     or rbac.subject_can(subject, "patch", RBAC_GROUP, resource, namespace=role_ns, name=name))
            if escalates and edits:
                kind = "Role" if resource == "roles" else "ClusterRole"
                label = f"{kind} {ns + '/' if resource == 'roles' else ''}{name} raised to any rule"
                binding_label = (f"RoleBinding {ns}/{(binding.get('metadata') or {}).get('name')}" if ns else
                                 f"ClusterRoleBinding {(binding.get('metadata') or {}).get('name')}")
                hops.append(Hop(subject, self.gained(label, (ANY_RULE,), ns, role, binding_label), "escalate",
                                f"escalate and update {resource} {name}{f' in {ns}' if ns else ''}", escalates, ns,
                                impersonated))
        return hops

    # -- paths --------------------------------------------------------------------------------

    def chain_paths(self, start: Subject) -> list[Path]:
        """Breadth first from a subject (held by its own credentials) to a fixed point: each principal met with
        paths of its own is reported once, through the shortest chain (hops tried in HOP_KINDS order), and ends its
        chain (what it leads to further is a longer way to the same identity through the same first hop)."""
        seen = {(start, False)}
        queue: deque[tuple[Subject, bool, tuple[Hop, ...]]] = deque([(start, False, ())])
        reported = {start}
        own = own_groups(start)  # principals of their own, reported as themselves: no chain goes through them
        found = []
        while queue:
            subject, impersonated, chain = queue.popleft()
            following = self.hops(subject, impersonated)
            if chain:
                following = following + self.members(subject, impersonated)
            for hop in following:
                node = (hop.to, hop.impersonated)
                if node in seen or hop.to in own:
                    continue
                seen.add(node)
                longer = (*chain, hop)
                theirs = self.direct_paths(hop.to)
                if not theirs:
                    queue.append((hop.to, hop.impersonated, longer))
                elif hop.to not in reported:  # a chain ends at the first principal that reaches the identity itself
                    reported.add(hop.to)
                    first = longer[0]
                    found.append(Path(start, first.action, chain_via(longer, theirs[0]), chain_kind(longer),
                                      first.grant, first.namespace, longer, theirs[0]))
        return found

    def paths(self) -> list[Path]:
        """Every path of every subject bound to anything: its own, and through every principal it comes to act as.
        Computed once per graph: ACCESS-001 and report.html's picture read the same answer."""
        if self._all_paths is None:
            self._all_paths = self._paths()
        return list(self._all_paths)

    def _paths(self) -> list[Path]:
        found = []
        for subject in list(self.rbac.grants()):
            found += self.direct_paths(subject)
            if not self.rbac.covers(subject, "", [ANY_RULE]):  # who holds every rule everywhere gains nothing by a chain
                found += self.chain_paths(subject)
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
