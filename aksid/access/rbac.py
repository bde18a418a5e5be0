"""Kubernetes RBAC evaluated as the API server's RBAC authorizer does, over Role/ClusterRole/RoleBinding/
ClusterRoleBinding objects as the API returns them. It knows no role by name.

Followed (Kubernetes docs "Using RBAC Authorization", and k8s.io/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go,
plugin/pkg/auth/authorizer/rbac/rbac.go):
- a rule allows a request when its verbs, apiGroups and resources match (each `*` matches everything), and its
  resourceNames is empty or names the object; a subresource is matched only as `resource/subresource` or
  `*/subresource` (`pods` does not match `pods/exec`); a rule with resourceNames can never allow `create` of a new
  object, whose request has no name (but it can allow `create` on a subresource of a named object, e.g.
  `serviceaccounts/token` of one ServiceAccount);
- nonResourceURLs rules only match non-resource requests: they are ignored here (no path to a token goes through one);
- RBAC only adds: there are no deny rules, a request is allowed when any rule of any role bound to the subject allows it;
- a RoleBinding grants its role's rules inside the binding's namespace only (a ClusterRole referenced by a RoleBinding
  too); a ClusterRoleBinding grants them in every namespace and at the cluster scope;
- aggregation: a ClusterRole with `aggregationRule.clusterRoleSelectors` holds the rules of every ClusterRole whose
  labels match one of the selectors (the controller writes them into its `rules`; a snapshot of a live cluster has
  them already, objects as published, e.g. bootstrap policy test data, have `rules: null`): both are resolved, and
  transitively (view aggregates into edit, edit into admin);
- subjects: User and Group by name, ServiceAccount as `system:serviceaccount:<namespace>:<name>` (its namespace
  defaults to the RoleBinding's), and every ServiceAccount is in the groups `system:serviceaccounts` and
  `system:serviceaccounts:<namespace>`, every authenticated principal in `system:authenticated`;
- `impersonate`, `bind` and `escalate` are verbs like any other here (a rule allows them or not, resourceNames
  narrowing them); what they lead to is aksid/access/paths.py's. For it, the evaluator also answers whether a subject
  already holds every rule of a role (covers(): binding a role one holds gains nothing), and holds hypothetical grants
  (assume(): the rights a subject would give itself with bind or escalate, or system:masters', whom the API server
  authorizes before RBAC), evaluated like the others but never listed by grants() or who_can().
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aksid.workloads import label_selector_matches

RBAC_API = "rbac.authorization.k8s.io/v1"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in raw.get(key) or ())

        return cls(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"))

    def allows(self, verb: str, api_group: str, resource: str, subresource: str = "", name: str = "") -> bool:
        if not self.resources:  # a nonResourceURLs rule
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and api_group not in self.api_groups:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        if not any(r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in self.resources):
            return False
        return not self.resource_names or (bool(name) and name in self.resource_names)

    def covers(self, other: Rule) -> bool:
        """Whether this rule allows every resource request `other` allows (a nonResourceURLs rule is covered by
        anything: paths never go through one)."""
        if not other.resources:
            return True
        if not self.resources:
            return False

        def within(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
            return "*" in mine or ("*" not in theirs and set(theirs) <= set(mine))

        if not within(self.verbs, other.verbs) or not within(self.api_groups, other.api_groups):
            return False
        for resource in other.resources:
            _, slash, sub = resource.partition("/")
            if not ("*" in self.resources or resource in self.resources
                    or (slash and sub != "*" and f"*/{sub}" in self.resources)):
                return False
        return not self.resource_names or (bool(other.resource_names)
                                           and set(other.resource_names) <= set(self.resource_names))

    def text(self) -> str:
        groups = ",".join(g or '""' for g in self.api_groups)
        names = f" names {','.join(self.resource_names)}" if self.resource_names else ""
        return f"{','.join(self.verbs)} {','.join(self.resources)} (apiGroups {groups}){names}"


@dataclass(frozen=True)
class Subject:
    """A binding's subject: kind User, Group or ServiceAccount; `namespace` only for a ServiceAccount."""

    kind: str
    name: str
    namespace: str = ""

    @property
    def user(self) -> str:
        """The user name the API server authenticates: `system:serviceaccount:ns:name` for a ServiceAccount."""
        return f"{SA_PREFIX}{self.namespace}:{self.name}" if self.kind == "ServiceAccount" else self.name

    def __str__(self) -> str:
        return f"ServiceAccount {self.namespace}/{self.name}" if self.kind == "ServiceAccount" else f"{self.kind} {self.name}"

    @property
    def setting(self) -> str:
        """How access_allowed names it."""
        return (f"ServiceAccount:{self.namespace}/{self.name}" if self.kind == "ServiceAccount"
                else f"{self.kind}:{self.name}")


@dataclass(frozen=True)
class Grant:
    """One rule a subject holds: through which binding, from which role, and where (namespace "" = everywhere)."""

    binding: str  # "ClusterRoleBinding NAME" or "RoleBinding NS/NAME"
    role: str  # "ClusterRole NAME" or "Role NS/NAME"
    namespace: str
    rule: Rule
    binding_obj: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "every namespace"


def _items(objects: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for obj in objects:
        if obj.get("kind") == "List" or (str(obj.get("kind", "")).endswith("List") and "items" in obj):
            yield from _items(obj.get("items") or [])
        else:
            yield obj


@dataclass
class _SubjectIndex:
    """One subject's grants, one (position in grants(), role, grants) per binding: cluster-wide, by namespace; and
    the merged lists and decisions (by scope and request) computed so far."""

    cluster: list[tuple[int, str, tuple[Grant, ...]]] = field(default_factory=list)
    by_namespace: dict[str, list[tuple[int, str, tuple[Grant, ...]]]] = field(default_factory=dict)
    merged: dict[str, list[tuple[int, str, tuple[Grant, ...]]]] = field(default_factory=dict)
    decisions: dict[tuple[str, str, str, str, str, str], Grant | None] = field(default_factory=dict)


class Rbac:
    """The RBAC objects of a cluster, and what they allow."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.cluster_roles: dict[str, Mapping[str, Any]] = {}
        self.roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.bindings: list[Mapping[str, Any]] = []
        for obj in _items(objects):
            if not str(obj.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/"):
                continue
            meta = obj.get("metadata") or {}
            kind = obj.get("kind")
            if kind == "ClusterRole":
                self.cluster_roles[str(meta.get("name"))] = obj
            elif kind == "Role":
                self.roles[(str(meta.get("namespace") or ""), str(meta.get("name")))] = obj
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                self.bindings.append(obj)
        self._resolved: dict[str, tuple[Rule, ...]] = {}
        self._grants: dict[Subject, list[Grant]] | None = None
        self._bindings_of: dict[Subject, list[Mapping[str, Any]]] = {}
        self._assumed: dict[Subject, list[Grant]] = {}
        self._index: dict[Subject, _SubjectIndex] = {}
        self._matches: dict[tuple[str, str, str, str, str, str], int] = {}  # (role, request) → its first rule allowing

    # -- roles --------------------------------------------------------------------------------

    def cluster_role_rules(self, name: str) -> tuple[Rule, ...]:
        """A ClusterRole's rules, aggregation resolved (transitively; a cycle adds nothing twice)."""
        if name not in self._resolved:
            self._resolved[name] = tuple(dict.fromkeys(self._aggregate(name, set())))
        return self._resolved[name]

    def _aggregate(self, name: str, seen: set[str]) -> list[Rule]:
        role = self.cluster_roles.get(name)
        if role is None or name in seen:
            return []
        seen.add(name)
        rules = [Rule.parse(r) for r in role.get("rules") or []]
        selectors = ((role.get("aggregationRule") or {}).get("clusterRoleSelectors")) or []
        if selectors:
            for other, obj in sorted(self.cluster_roles.items()):
                labels = (obj.get("metadata") or {}).get("labels") or {}
                if other != name and any(label_selector_matches(s, labels) for s in selectors):
                    rules += self._aggregate(other, seen)
        return rules

    def role_rules(self, namespace: str, name: str) -> tuple[Rule, ...]:
        role = self.roles.get((namespace, name))
        return tuple(Rule.parse(r) for r in (role or {}).get("rules") or [])

    # -- bindings -----------------------------------------------------------------------------

    @staticmethod
    def binding_subjects(binding: Mapping[str, Any]) -> list[Subject]:
        namespace = str((binding.get("metadata") or {}).get("namespace") or "")
        found = []
        for raw in binding.get("subjects") or []:
            kind = str(raw.get("kind", ""))
            if kind == "ServiceAccount":
                found.append(Subject(kind, str(raw.get("name", "")), str(raw.get("namespace") or namespace)))
            elif kind in ("User", "Group"):
                found.append(Subject(kind, str(raw.get("name", ""))))
        return found

    def binding_rules(self, binding: Mapping[str, Any]) -> tuple[str, tuple[Rule, ...]]:
        """(the role as text, its rules) of a binding; a RoleBinding's Role is in the binding's namespace."""
        ref = binding.get("roleRef") or {}
        namespace = str((binding.get("metadata") or {}).get("namespace") or "")
        if ref.get("kind") == "Role":
            return f"Role {namespace}/{ref.get('name')}", self.role_rules(namespace, str(ref.get("name")))
        return f"ClusterRole {ref.get('name')}", self.cluster_role_rules(str(ref.get("name")))

    def grants(self) -> dict[Subject, list[Grant]]:
        """Every subject named by a binding, with the rules it holds and where."""
        if self._grants is None:
            grants: dict[Subject, list[Grant]] = {}
            for binding in self.bindings:
                meta = binding.get("metadata") or {}
                namespace = str(meta.get("namespace") or "") if binding.get("kind") == "RoleBinding" else ""
                label = (f"RoleBinding {namespace}/{meta.get('name')}" if namespace
                         else f"ClusterRoleBinding {meta.get('name')}")
                role, rules = self.binding_rules(binding)
                for subject in self.binding_subjects(binding):
                    self._bindings_of.setdefault(subject, []).append(binding)
                    held = grants.setdefault(subject, [])
                    segment = tuple(Grant(label, role, namespace, rule, binding) for rule in rules)
                    held.extend(segment)
                    if segment:
                        index = self._index.setdefault(subject, _SubjectIndex())
                        (index.by_namespace.setdefault(namespace, []) if namespace else index.cluster).append(
                            (len(held) - len(segment), role, segment))
            self._grants = grants
        return self._grants

    def bindings_of(self, subject: Subject) -> list[Mapping[str, Any]]:
        """The RoleBindings and ClusterRoleBindings naming a subject, in order (those of roles without rules too)."""
        self.grants()
        return self._bindings_of.get(subject, [])

    def assume(self, subject: Subject, binding: str, role: str, rules: Iterable[Rule], namespace: str,
               evidence: Mapping[str, Any]) -> None:
        """Hypothetical grants: `subject` (not a binding subject of this cluster) holds `rules` in `namespace` ("" =
        every namespace), as if `binding` bound `role` to it; `evidence` is the object the grants are read from (the
        role, or the binding that allows creating one). Evaluated by every method below like real grants; not in
        grants() nor who_can()."""
        if subject in self.grants() or subject in self._assumed:
            raise ValueError(f"{subject} holds grants already")
        segment = tuple(Grant(binding, role, namespace, rule, evidence) for rule in rules)
        self._assumed[subject] = list(segment)
        if segment:
            index = self._index.setdefault(subject, _SubjectIndex())
            (index.by_namespace.setdefault(namespace, []) if namespace else index.cluster).append((0, role, segment))

    def assumed(self, subject: Subject) -> bool:
        return subject in self._assumed

    def held(self, subject: Subject) -> list[Grant]:
        """A subject's grants, real or assumed."""
        return self.grants().get(subject) or self._assumed.get(subject, [])

    def covers(self, subject: Subject, namespace: str, rules: Iterable[Rule]) -> bool:
        """Whether the subject already holds, in the namespace ("" = at the cluster scope), every rule given, each
        within one of its own rules (rights pieced together from several rules count as not held: a bind or escalate
        hop is then shown although it adds nothing)."""
        mine = [g.rule for g in self.rules_of(subject, namespace)]
        return all(any(rule.covers(other) for rule in mine) for other in rules)

    # -- the index: each subject's grants by namespace, in the order of grants() ----------------------------------
    # A request's decision is the first grant (in binding order) of rules_of() whose rule allows it: the grants of
    # the ClusterRoleBindings and those of the RoleBindings of the request's namespace, merged back into that order.
    # A namespace where the subject holds no RoleBinding decides as the cluster scope does ("" below), so a subject
    # is evaluated once per namespace it is bound in plus once for everywhere else, and a role's rules once per
    # request, whichever binding and subject use it.

    def namespaces_of(self, subject: Subject) -> frozenset[str]:
        """The namespaces where a subject holds grants through RoleBindings."""
        self.grants()
        index = self._index.get(subject)
        return frozenset(index.by_namespace) if index else frozenset()

    def holds_cluster_grants(self, subject: Subject) -> bool:
        """Whether a subject holds grants in every namespace (through ClusterRoleBindings)."""
        self.grants()
        index = self._index.get(subject)
        return bool(index and index.cluster)

    def scope_of(self, subject: Subject, namespace: str) -> str:
        """The namespace a subject's decisions there are the same as: itself where the subject holds RoleBinding
        grants, otherwise "" (the cluster scope: its ClusterRoleBinding grants only)."""
        self.grants()
        index = self._index.get(subject)
        return namespace if index and namespace in index.by_namespace else ""

    def may_ever(self, subject: Subject, verb: str, api_group: str, resource: str, subresource: str = "") -> bool:
        """Whether any grant of the subject, anywhere, could allow the request for some object name: False proves
        subject_can() is None for it in every namespace and for every name."""
        combined = f"{resource}/{subresource}" if subresource else resource
        for grant in self.held(subject):
            rule = grant.rule
            if (rule.resources and ("*" in rule.verbs or verb in rule.verbs)
                    and ("*" in rule.api_groups or api_group in rule.api_groups)
                    and any(r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in rule.resources)):
                return True
        return False

    def _first_match(self, role: str, segment: tuple[Grant, ...], request: tuple[str, str, str, str, str]) -> int:
        """The index of the first of a role's rules (as one binding's grants) that allows the request, or -1;
        memoised by (role, request): a role's rules are the same in every binding of it."""
        key = (role, *request)
        found = self._matches.get(key)
        if found is None:
            found = next((i for i, grant in enumerate(segment) if grant.rule.allows(*request)), -1)
            self._matches[key] = found
        return found

    # -- decisions ----------------------------------------------------------------------------

    @staticmethod
    def identities(user: str, groups: Iterable[str] = ()) -> list[Subject]:
        """The binding subjects that name a request's user: itself, its groups, a ServiceAccount's implicit groups."""
        found = [Subject("User", user)]
        groups = list(groups)
        if user.startswith(SA_PREFIX):
            namespace, _, name = user[len(SA_PREFIX):].partition(":")
            found.append(Subject("ServiceAccount", name, namespace))
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        groups.append("system:authenticated")
        found += [Subject("Group", g) for g in dict.fromkeys(groups)]
        return found

    def rules_of(self, subject: Subject, namespace: str) -> list[Grant]:
        """The grants that apply to a subject (as one binding subject) for a request in a namespace ("" = cluster scope)."""
        return [g for _, _, segment in self._segments(subject, namespace) for g in segment]

    def _segments(self, subject: Subject, namespace: str) -> list[tuple[int, str, tuple[Grant, ...]]]:
        """The subject's grants for a namespace, one (position, role, grants) per binding, in binding order."""
        self.grants()
        index = self._index.get(subject)
        if index is None:
            return []
        scope = namespace if namespace in index.by_namespace else ""
        merged = index.merged.get(scope)
        if merged is None:
            merged = (sorted(index.cluster + index.by_namespace[scope], key=lambda entry: entry[0]) if scope
                      else index.cluster)
            index.merged[scope] = merged
        return merged

    def allows(self, user: str, groups: Iterable[str], verb: str, api_group: str, resource: str,
               subresource: str = "", namespace: str = "", name: str = "") -> bool:
        """The API server's decision for one resource request."""
        return self.why(user, groups, verb, api_group, resource, subresource, namespace, name) is not None

    def why(self, user: str, groups: Iterable[str], verb: str, api_group: str, resource: str,
            subresource: str = "", namespace: str = "", name: str = "") -> Grant | None:
        for subject in self.identities(user, groups):
            for grant in self.rules_of(subject, namespace):
                if grant.rule.allows(verb, api_group, resource, subresource, name):
                    return grant
        return None

    def subject_can(self, subject: Subject, verb: str, api_group: str, resource: str, subresource: str = "",
                    namespace: str = "", name: str = "") -> Grant | None:
        """The first grant by which one binding subject (as named, not through its groups) may make the request."""
        self.grants()
        index = self._index.get(subject)
        if index is None:
            return None
        scope = namespace if namespace in index.by_namespace else ""
        key = (scope, verb, api_group, resource, subresource, name)
        if key in index.decisions:
            return index.decisions[key]
        request = (verb, api_group, resource, subresource, name)
        found = None
        for _, role, segment in self._segments(subject, scope):
            at = self._first_match(role, segment, request)
            if at >= 0:
                found = segment[at]
                break
        index.decisions[key] = found
        return found

    def who_can(self, verb: str, api_group: str, resource: str, subresource: str = "", namespace: str = "",
                name: str = "") -> dict[Subject, Grant]:
        """Every binding subject that may make the request (each with one grant that allows it); a Group stands for
        its members, whoever they are (Entra group membership is not in a snapshot)."""
        found = {}
        for subject in self.grants():
            grant = self.subject_can(subject, verb, api_group, resource, subresource, namespace, name)
            if grant is not None:
                found[subject] = grant
        return found
