"""RBAC for the fake API server: requests of a restricted user are authorized as kube-apiserver's RBAC
authorizer would, by the ClusterRoles/Roles and their bindings in a set of manifests (aksid's own deploy/*.yaml).

Only what decides a request is modelled: the request's attributes (as k8s.io/apiserver's RequestInfoFactory reads
them from the path and method), rules (apiGroups, resources with subresources and `*`, verbs, resourceNames,
nonResourceURLs), ClusterRoleBindings and RoleBindings to ServiceAccount/User/Group subjects, and the discovery
paths every authenticated user may read (the `system:discovery` and `system:public-info-viewer` roles).
A denial is kube-apiserver's 403 `Status`, reason Forbidden, with its exact message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from aksid.sandbox.kube.errors import ApiError

RBAC_GROUP = "rbac.authorization.k8s.io"
# What `system:discovery` and `system:public-info-viewer` grant every authenticated user (kube-apiserver's bootstrap policy).
_DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                   "/healthz", "/livez", "/readyz")
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Attributes:
    """What the authorizer sees of one request."""

    user: str
    groups: tuple[str, ...]
    verb: str
    path: str
    resource_request: bool
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_attributes(user: str, groups: Iterable[str], method: str, target: str) -> Attributes:
    """RequestInfoFactory's reading of a request: /api/v1/... and /apis/<group>/<version>/... are resource requests."""
    url = urlsplit(target)
    path = url.path
    parts = [unquote(part) for part in path.split("/") if part]
    query = parse_qs(url.query)
    lowered = method.lower()
    groups = tuple(groups)
    plain_verb = "get" if lowered == "head" else lowered
    if parts[:1] == ["api"] and len(parts) >= 3:
        api_group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        api_group, rest = parts[1], parts[3:]
    else:
        return Attributes(user, groups, plain_verb, path, resource_request=False)
    watch = rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = ""
    if len(rest) > 1 and rest[0] == "namespaces":
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if watch or (query.get("watch", [""])[0].lower() in ("true", "1") and lowered in ("get", "head")):
        verb = "watch"
    elif lowered in ("get", "head"):
        verb = "get" if name else "list"
    elif lowered == "post":
        verb = "create"
    elif lowered == "put":
        verb = "update"
    elif lowered == "patch":
        verb = "patch"
    elif lowered == "delete":
        verb = "delete" if name else "deletecollection"
    else:
        verb = lowered
    return Attributes(user, groups, verb, path, True, api_group, resource, subresource, namespace, name)


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in raw.get(key) or ())

        return cls(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"),
                   strings("nonResourceURLs"))

    def allows(self, attributes: Attributes) -> bool:
        if not ("*" in self.verbs or attributes.verb in self.verbs):
            return False
        if not attributes.resource_request:
            return any(url == attributes.path or url == "*"
                       or (url.endswith("*") and attributes.path.startswith(url[:-1])) for url in self.non_resource_urls)
        if not ("*" in self.api_groups or attributes.api_group in self.api_groups):
            return False
        combined = f"{attributes.resource}/{attributes.subresource}" if attributes.subresource else attributes.resource
        if not any(_resource_matches(allowed, attributes, combined) for allowed in self.resources):
            return False
        return not self.resource_names or attributes.name in self.resource_names


def _resource_matches(allowed: str, attributes: Attributes, combined: str) -> bool:
    """rbac/v1's ResourceMatches: `*`, `resource`, `resource/subresource`, `*/subresource`."""
    if allowed in ("*", combined):
        return True
    return bool(attributes.subresource) and allowed == f"*/{attributes.subresource}"


@dataclass(frozen=True)
class _Binding:
    role_kind: str  # ClusterRole or Role
    role_name: str
    namespace: str  # "" for a ClusterRoleBinding (cluster-wide)
    subjects: tuple[dict[str, Any], ...]


class RbacAuthorizer:
    """The RBAC rules of a set of manifests; `check` raises the API server's 403 for what they do not allow."""

    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.bindings: list[_Binding] = []
        for document in documents:
            self._add(document)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> RbacAuthorizer:
        return cls(load_manifests(paths))

    def _add(self, document: dict[str, Any]) -> None:
        api_version, kind = str(document.get("apiVersion", "")), document.get("kind")
        if not api_version.startswith(f"{RBAC_GROUP}/"):
            return
        meta = document.get("metadata") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "")
        rules = tuple(Rule.parse(rule) for rule in document.get("rules") or [])
        if kind == "ClusterRole":
            self.cluster_roles[name] = rules
        elif kind == "Role":
            self.roles[(namespace, name)] = rules
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            ref = document.get("roleRef") or {}
            self.bindings.append(_Binding(str(ref.get("kind", "")), str(ref.get("name", "")),
                                          namespace if kind == "RoleBinding" else "",
                                          tuple(document.get("subjects") or ())))

    def bound_roles(self, user: str, groups: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(binding scope namespace or "", role kind, role name) of every binding naming the user."""
        groups = tuple(groups)
        return [(b.namespace, b.role_kind, b.role_name) for b in self.bindings
                if any(_subject_matches(s, user, groups, b.namespace) for s in b.subjects)]

    def allows(self, attributes: Attributes) -> bool:
        if not attributes.resource_request and _is_discovery(attributes):
            return True
        for scope, role_kind, role_name in self.bound_roles(attributes.user, attributes.groups):
            if scope and (not attributes.resource_request or attributes.namespace != scope):
                continue  # a RoleBinding grants only inside its namespace
            if role_kind == "ClusterRole":
                rules = self.cluster_roles.get(role_name, ())
            else:
                rules = self.roles.get((scope, role_name), ())
            if any(rule.allows(attributes) for rule in rules):
                return True
        return False

    def check(self, attributes: Attributes) -> None:
        if not self.allows(attributes):
            raise forbidden(attributes)


def _subject_matches(subject: dict[str, Any], user: str, groups: tuple[str, ...], binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "ServiceAccount":
        namespace = str(subject.get("namespace") or binding_namespace)
        return user == f"system:serviceaccount:{namespace}:{name}"
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups
    return False


def _is_discovery(attributes: Attributes) -> bool:
    if attributes.verb != "get":
        return False
    path = attributes.path.rstrip("/") or "/"
    return any(path == url or (url.endswith("*") and path.startswith(url[:-1])) for url in _DISCOVERY_URLS)


def forbidden(attributes: Attributes) -> ApiError:
    """kube-apiserver's answer to a denied request (responsewriters.ForbiddenStatusError, apierrors.NewForbidden)."""
    if not attributes.resource_request:
        return ApiError(403, f'forbidden: User "{attributes.user}" cannot {attributes.verb} path "{attributes.path}"',
                        details={})
    resource = f"{attributes.resource}/{attributes.subresource}" if attributes.subresource else attributes.resource
    where = (f'in the namespace "{attributes.namespace}"' if attributes.namespace else "at the cluster scope")
    why = (f'User "{attributes.user}" cannot {attributes.verb} resource "{resource}" in API group '
           f'"{attributes.api_group}" {where}')
    qualified = f"{attributes.resource}.{attributes.api_group}" if attributes.api_group else attributes.resource
    message = (f'{qualified} "{attributes.name}" is forbidden: {why}' if attributes.name
               else f"{qualified} is forbidden: {why}")
    details: dict[str, Any] = {}
    if attributes.name:
        details["name"] = attributes.name
    if attributes.api_group:
        details["group"] = attributes.api_group
    details["kind"] = attributes.resource
    return ApiError(403, message, reason="Forbidden", details=details)


def load_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every YAML document of the files (a directory: its *.yaml and *.yml files, sorted)."""
    documents: list[dict[str, Any]] = []
    for path in paths:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            documents += [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if isinstance(d, dict)]
    return documents


def service_account_user(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The user name and groups the API server gives a ServiceAccount's token."""
    return (f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))


@dataclass(frozen=True)
class Principal:
    """A restricted identity of the fake API server: its bearer token and the RBAC that authorizes it."""

    token: str
    user: str
    groups: tuple[str, ...]
    authorizer: RbacAuthorizer

    def authorize(self, method: str, target: str) -> None:
        """Raise the API server's 403 unless RBAC allows this request (method, path with query)."""
        self.authorizer.check(request_attributes(self.user, self.groups, method, target))

    def authorize_as(self, verb: str, target: str) -> None:
        """A second check of a request under another verb: a server-side apply (PATCH) that creates the
        object needs `create` as well (the patch handler's withAuthorization of its create)."""
        attributes = request_attributes(self.user, self.groups, "PATCH", target)
        self.authorizer.check(replace(attributes, verb=verb))
