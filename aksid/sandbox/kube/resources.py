"""What the fake API server serves: the built-in resources and those of the CRDs in the store."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

KubeObject = dict[str, Any]
# (group, kind, namespace, name); namespace is "" for cluster-scoped objects.
ObjectKey = tuple[str, str, str, str]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One served resource: what discovery lists and what a REST path resolves to."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    singular: str = ""
    list_kind: str = ""
    custom: bool = False
    printer_columns: tuple[dict[str, Any], ...] = ()
    selectable_fields: tuple[str, ...] = ()  # CRD selectableFields (jsonPaths), beyond metadata.name/namespace
    status_subresource: bool = False  # writes of the object leave its status alone; /status writes only that

    @property
    def has_status(self) -> bool:
        """Whether the resource has a `/status` subresource (then PUT/PATCH of the object ignore its status)."""
        return self.status_subresource or (not self.custom and (self.group, self.kind) in _STATUS_KINDS)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def qualified_plural(self) -> str:
        """`deployments.apps`, as kube-apiserver names a resource in its error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _builtin(group: str, kind: str, plural: str, namespaced: bool = True, short: tuple[str, ...] = (),
             categories: tuple[str, ...] = (), verbs: tuple[str, ...] = _ALL_VERBS) -> Resource:
    return Resource(group, "v1", kind, plural, namespaced, short, categories, verbs)


# Built-in kinds with a status subresource (their REST storage has a StatusREST).
_STATUS_KINDS = {
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolumeClaim"), ("", "Pod"), ("", "Service"),
    ("apps", "DaemonSet"), ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
    ("batch", "CronJob"), ("batch", "Job"), ("networking.k8s.io", "Ingress"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
}
_ALL = ("all",)
BUILTIN_RESOURCES: tuple[Resource, ...] = (
    _builtin("", "ConfigMap", "configmaps", short=("cm",)),
    _builtin("", "Endpoints", "endpoints", short=("ep",)),
    _builtin("", "Event", "events", short=("ev",)),
    _builtin("", "Namespace", "namespaces", namespaced=False, short=("ns",), verbs=_NAMESPACE_VERBS),
    _builtin("", "Node", "nodes", namespaced=False, short=("no",)),
    _builtin("", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",)),
    _builtin("", "Pod", "pods", short=("po",), categories=_ALL),
    _builtin("", "Secret", "secrets"),
    _builtin("", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _builtin("", "Service", "services", short=("svc",), categories=_ALL),
    _builtin("apps", "DaemonSet", "daemonsets", short=("ds",), categories=_ALL),
    _builtin("apps", "Deployment", "deployments", short=("deploy",), categories=_ALL),
    _builtin("apps", "ReplicaSet", "replicasets", short=("rs",), categories=_ALL),
    _builtin("apps", "StatefulSet", "statefulsets", short=("sts",), categories=_ALL),
    _builtin("batch", "CronJob", "cronjobs", short=("cj",), categories=_ALL),
    _builtin("batch", "Job", "jobs", categories=_ALL),
    _builtin("networking.k8s.io", "IngressClass", "ingressclasses", namespaced=False),
    _builtin("networking.k8s.io", "Ingress", "ingresses", short=("ing",)),
    _builtin("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _builtin("rbac.authorization.k8s.io", "Role", "roles"),
    _builtin("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
             namespaced=False),
    _builtin("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
             namespaced=False),
    _builtin("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
             short=("crd", "crds")),
)
BUILTIN_KINDS = {(r.group, r.kind): r for r in BUILTIN_RESOURCES}
_BUILTIN_GROUPS = tuple(dict.fromkeys(r.group for r in BUILTIN_RESOURCES if r.group))
CRD_KEY = ("apiextensions.k8s.io", "CustomResourceDefinition")


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order: GA before beta before alpha, higher numbers first, then the rest by name."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stage, -int(match.group(1)), -int(match.group(3) or 0), "")


def _established(crd: KubeObject) -> bool:
    """Only an explicit Established=False condition keeps a CRD's kinds from being served."""
    conditions = (crd.get("status") or {}).get("conditions") or []
    return not any(c.get("type") == "Established" and c.get("status") == "False" for c in conditions)


def crd_resources(crd: KubeObject) -> list[Resource]:
    """The resources a CustomResourceDefinition serves, preferred version first."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if not (_established(crd) and spec.get("group") and names.get("plural") and names.get("kind")):
        return []
    versions = sorted((v for v in spec.get("versions") or [] if v.get("served") and v.get("name")),
                      key=lambda v: _version_priority(v["name"]))
    return [
        Resource(
            group=spec["group"], version=v["name"], kind=names["kind"], plural=names["plural"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            singular=names.get("singular") or "", list_kind=names.get("listKind") or "", custom=True,
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            selectable_fields=tuple(str(f["jsonPath"]) for f in v.get("selectableFields") or [] if f.get("jsonPath")),
            status_subresource=(v.get("subresources") or spec.get("subresources") or {}).get("status") is not None,
        )
        for v in versions
    ]


class Catalog:
    """Everything served at one moment: the built-in resources plus those of the CRDs in the store."""

    def __init__(self, crds: Iterable[KubeObject]) -> None:
        self._by_gv: dict[tuple[str, str], dict[str, Resource]] = {}
        self._versions: dict[str, list[str]] = {}  # group -> versions, preferred first
        self._by_kind: dict[tuple[str, str], Resource] = {}
        for resource in BUILTIN_RESOURCES:
            self._add(resource)
        custom = [r for crd in crds for r in crd_resources(crd)]
        for resource in sorted(custom, key=lambda r: (r.group, _version_priority(r.version), r.plural)):
            if resource.group in _BUILTIN_GROUPS or resource.group == "":
                continue  # a CRD cannot take over a built-in group
            if resource.plural in self._by_gv.get((resource.group, resource.version), {}):
                continue  # two CRDs with the same names: the first one wins, the other is not established
            self._add(resource)

    def _add(self, resource: Resource) -> None:
        self._by_gv.setdefault((resource.group, resource.version), {})[resource.plural] = resource
        versions = self._versions.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
        self._by_kind.setdefault((resource.group, resource.kind), resource)

    def resources(self, group: str, version: str) -> dict[str, Resource] | None:
        return self._by_gv.get((group, version))

    def versions(self, group: str) -> list[str]:
        return list(self._versions.get(group, []))

    def groups(self) -> list[str]:
        """Named groups in discovery order: built-ins first, then custom groups by name."""
        custom = sorted(g for g in self._versions if g and g not in _BUILTIN_GROUPS)
        return [*_BUILTIN_GROUPS, *custom]

    def for_kind(self, group: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, kind))
