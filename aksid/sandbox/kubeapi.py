"""A fake Kubernetes API server over a scenario's objects, faithful enough for kubectl and the Python client.

Serves discovery (legacy and aggregated), GET and LIST (label/field selectors, limit/continue),
server-side Table printing for kubectl, `Status` errors shaped like kube-apiserver's, create and delete
(for a later provision mode), and faults injected by the scenario. Custom resources exist only while
their CustomResourceDefinition is in the store, exactly as on a cluster.

There are no controllers: what a scenario (or a POST) says about an object's status stays as written.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from aksid.sandbox.kubeselectors import (
    FieldGetter,
    SelectorError,
    fields_for,
    parse_field_selector,
    parse_label_selector,
)

KubeObject = dict[str, Any]
# (group, kind, namespace, name); namespace is "" for cluster-scoped objects.
ObjectKey = tuple[str, str, str, str]

SERVER_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# Objects loaded without a creationTimestamp get this one, so that reruns see identical objects.
FIXED_CREATION_TIMESTAMP = "2025-01-01T00:00:00Z"
# uuid5 namespace for deterministic metadata.uid values.
_UID_NAMESPACE = uuid.UUID("6f1c2a4e-9d0b-5a43-8e2f-3b7d1c5e0a91")
# kube-apiserver refuses request bodies above 3 MiB.
_MAX_BODY_BYTES = 3 * 1024 * 1024
_JSON = "application/json"
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")

_REASONS: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}
_DEFAULT_MESSAGES: dict[int, str] = {
    403: "forbidden: the request was denied (injected fault)",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


# --- resources --------------------------------------------------------------------------------


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


_ALL = ("all",)
BUILTIN_RESOURCES: tuple[Resource, ...] = (
    _builtin("", "ConfigMap", "configmaps", short=("cm",)),
    _builtin("", "Endpoints", "endpoints", short=("ep",)),
    _builtin("", "Event", "events", short=("ev",)),
    _builtin("", "Namespace", "namespaces", namespaced=False, short=("ns",), verbs=_NAMESPACE_VERBS),
    _builtin("", "Node", "nodes", namespaced=False, short=("no",)),
    _builtin("", "Pod", "pods", short=("po",), categories=_ALL),
    _builtin("", "Secret", "secrets"),
    _builtin("", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _builtin("", "Service", "services", short=("svc",), categories=_ALL),
    _builtin("apps", "DaemonSet", "daemonsets", short=("ds",), categories=_ALL),
    _builtin("apps", "Deployment", "deployments", short=("deploy",), categories=_ALL),
    _builtin("apps", "ReplicaSet", "replicasets", short=("rs",), categories=_ALL),
    _builtin("apps", "StatefulSet", "statefulsets", short=("sts",), categories=_ALL),
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
_BUILTIN_KINDS = {(r.group, r.kind): r for r in BUILTIN_RESOURCES}
_BUILTIN_GROUPS = tuple(dict.fromkeys(r.group for r in BUILTIN_RESOURCES if r.group))
_CRD_KEY = ("apiextensions.k8s.io", "CustomResourceDefinition")
# Kinds whose metadata.generation the API server maintains (spec changes bump it).
_GENERATION_KINDS = {
    ("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"), _CRD_KEY,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
}
# DELETE answers with the deleted object for these (their REST storage sets ReturnDeletedObject, or
# deletion is asynchronous); with a `Status` of Success for the others. The typed client relies on it.
_DELETE_RETURNS_OBJECT = {("", "Pod"), ("", "Service"), ("", "ServiceAccount"), ("", "Namespace"), _CRD_KEY}
# Non-omitempty status integers: the typed client rejects a status without them.
_REQUIRED_STATUS_INTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "DaemonSet"): ("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady"),
    ("apps", "ReplicaSet"): ("replicas",),
    ("apps", "StatefulSet"): ("replicas", "availableReplicas"),
}


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


# --- errors -----------------------------------------------------------------------------------


def status_document(code: int, message: str, reason: str | None = None,
                    details: dict[str, Any] | None = None) -> KubeObject:
    """A `Status` of Failure with the same fields, in the same order, as kube-apiserver writes them."""
    document: KubeObject = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message}
    reason = _REASONS.get(code, "") if reason is None else reason
    if reason:
        document["reason"] = reason
    if details is not None:
        document["details"] = details
    document["code"] = code
    return document


class ApiError(Exception):
    """An error answer; `document()` is the `Status` body."""

    def __init__(self, code: int, message: str, reason: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.details = details
        self.headers = headers or {}

    def document(self) -> KubeObject:
        return status_document(self.code, self.message, self.reason, self.details)


def _details(resource: Resource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, f'{resource.qualified_plural} "{name}" not found', details=_details(resource, name))


def _no_such_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def _method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource", details={})


def _invalid(kind: str, name: str, field_path: str, problem: str, cause: str) -> ApiError:
    """422 Invalid with one cause, as validation failures come back from the API server."""
    return ApiError(
        422, f'{kind} "{name}" is invalid: {field_path}: {problem}',
        details={"name": name, "kind": kind, "causes": [{"reason": cause, "message": problem, "field": field_path}]},
    )


# --- faults -----------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scenario-injected failure: requests whose path (with query) matches answer `status`.

    Keys: match (regex, searched in the raw and the percent-decoded path), status, and optionally
    message, reason, headers (e.g. Retry-After), method (only this HTTP method) and times (only the
    first N matching requests; the fault then stops applying).
    """

    pattern: re.Pattern[str]
    status: int
    message: str
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    times: int | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec, dict) or "match" not in spec or "status" not in spec:
            raise ValueError(f"a kube fault needs 'match' and 'status': {spec!r}")
        try:
            pattern = re.compile(str(spec["match"]))
        except re.error as exc:
            raise ValueError(f"the kube fault match {spec['match']!r} is not a valid regex: {exc}") from None
        status = int(spec["status"])
        if not 400 <= status <= 599:
            raise ValueError(f"the kube fault status must be an HTTP error code (4xx/5xx), not {status}")
        times = spec.get("times")
        return cls(
            pattern=pattern, status=status,
            message=str(spec.get("message") or _DEFAULT_MESSAGES.get(status, f"injected fault ({status})")),
            reason=spec.get("reason"), headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            method=str(spec["method"]).upper() if spec.get("method") else None,
            times=None if times is None else int(times),
        )

    def applies(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        return bool(self.pattern.search(path) or self.pattern.search(unquote(path)))

    def error(self) -> ApiError:
        details: dict[str, Any] | None = None
        retry_after = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None)
        if retry_after is not None and retry_after.strip().isdigit():
            details = {"retryAfterSeconds": int(retry_after)}  # as the API server reports throttling
        elif self.status in (429, 503):
            details = {}
        return ApiError(self.status, self.message, self.reason, details, dict(self.headers))


# --- object preparation -------------------------------------------------------------------------


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _identity(obj: KubeObject) -> tuple[str, str, str]:
    """apiVersion, kind and name, or ValueError naming what is missing."""
    meta = obj.get("metadata")
    if not isinstance(obj, dict) or not isinstance(meta, dict):
        raise ValueError(f"a kube object needs apiVersion, kind and metadata: {str(obj)[:200]}")
    api_version, kind, name = obj.get("apiVersion"), obj.get("kind"), meta.get("name")
    if not (isinstance(api_version, str) and api_version and isinstance(kind, str) and kind
            and isinstance(name, str) and name):
        raise ValueError(f"a kube object needs apiVersion, kind and metadata.name: {str(obj)[:200]}")
    return api_version, kind, name


def _check_string_map(obj: KubeObject, key: str) -> None:
    """Labels and annotations are string maps; a YAML `true` or `1` would break every typed client."""
    values = obj["metadata"].get(key)
    if values is None:
        return
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise ValueError(f"metadata.{key} of {obj['kind']} {obj['metadata'].get('name')} must map strings to "
                         f"strings (quote values such as 'true' or '1' in YAML): {values!r}")


def _fill_kind_defaults(obj: KubeObject, group: str, kind: str) -> None:
    """Fields the API server always returns for these kinds, so typed clients accept the objects."""
    meta = obj["metadata"]
    if (group, kind) == ("", "Namespace"):
        meta.setdefault("labels", {}).setdefault("kubernetes.io/metadata.name", meta["name"])
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif (group, kind) == _CRD_KEY:
        _fill_crd_status(obj)
    for name in _REQUIRED_STATUS_INTS.get((group, kind), ()):
        obj.setdefault("status", {}).setdefault(name, 0)


def _fill_crd_status(crd: KubeObject) -> None:
    spec = crd.get("spec") or {}
    status = crd.setdefault("status", {})
    status.setdefault("acceptedNames", copy.deepcopy(spec.get("names") or {}))
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage") and v.get("name")]
    status.setdefault("storedVersions", storage)
    status.setdefault("conditions", [
        {"type": condition, "status": "True", "lastTransitionTime": crd["metadata"]["creationTimestamp"],
         "reason": reason, "message": message}
        for condition, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ])


def prepare_object(obj: KubeObject, catalog: Catalog, resource_version: str,
                   creation_timestamp: str = FIXED_CREATION_TIMESTAMP) -> KubeObject:
    """A filled-in deep copy: namespace default, uid, resourceVersion, creationTimestamp, generation."""
    api_version, kind, name = _identity(obj)
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    group, _ = split_api_version(api_version)
    resource = catalog.for_kind(group, kind)
    if resource is not None and resource.namespaced and not meta.get("namespace"):
        meta["namespace"] = "default"
    elif resource is not None and not resource.namespaced:
        meta.pop("namespace", None)
    namespace = meta.get("namespace") or ""
    meta.setdefault("uid", str(uuid.uuid5(_UID_NAMESPACE, f"{api_version}/{kind}/{namespace}/{name}")))
    meta.setdefault("resourceVersion", resource_version)
    meta.setdefault("creationTimestamp", creation_timestamp)
    if (group, kind) in _GENERATION_KINDS or (resource is not None and resource.custom):
        meta.setdefault("generation", 1)
    _check_string_map(obj, "labels")
    _check_string_map(obj, "annotations")
    _fill_kind_defaults(obj, group, kind)
    return obj


def object_key(obj: KubeObject) -> ObjectKey:
    group, _ = split_api_version(obj["apiVersion"])
    meta = obj["metadata"]
    return group, obj["kind"], meta.get("namespace") or "", meta["name"]


def _served_copy(obj: KubeObject, resource: Resource) -> KubeObject:
    """A copy in the requested version; custom resources are served in any version without conversion."""
    served = copy.deepcopy(obj)
    served["apiVersion"] = resource.group_version
    return served


# --- store ------------------------------------------------------------------------------------


class KubeStore:
    """Thread-safe in-memory object store."""

    def __init__(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        self._lock = threading.RLock()
        self._revision = 0
        self._objects: dict[ObjectKey, KubeObject] = {}
        self._faults: list[Fault] = []
        self._catalog = Catalog(())
        self.reset(objects, faults)

    def reset(self, objects: list[dict], faults: list[dict] | None = None) -> None:
        """Replace every object and fault; ValueError (and no change) if the scenario is malformed."""
        parsed_faults = [Fault.parse(spec) for spec in faults or []]
        crds = [o for o in objects if isinstance(o, dict) and o.get("kind") == _CRD_KEY[1]
                and split_api_version(str(o.get("apiVersion", "")))[0] == _CRD_KEY[0]]
        catalog = Catalog(crds)
        with self._lock:
            revision = self._revision
            prepared: dict[ObjectKey, KubeObject] = {}
            for obj in objects:
                revision += 1
                filled = prepare_object(obj, catalog, str(revision))
                key = object_key(filled)
                if key in prepared:
                    raise ValueError(f"the kube object {'/'.join(part for part in key if part)} is listed twice")
                prepared[key] = filled
            self._revision = revision
            self._objects = prepared
            self._faults = parsed_faults
            self._catalog = Catalog(o for k, o in prepared.items() if k[:2] == _CRD_KEY)

    def objects(self) -> list[dict]:
        """Current objects (copies), in load-then-creation order."""
        with self._lock:
            return copy.deepcopy(list(self._objects.values()))

    def catalog(self) -> Catalog:
        with self._lock:
            return self._catalog

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault for this request, counting it against its `times`."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def list_objects(self, resource: Resource, namespace: str | None) -> tuple[list[KubeObject], str]:
        """Objects of a resource (in one namespace, or all), ordered by namespace then name, and the revision."""
        with self._lock:
            keys = sorted(
                key for key in self._objects
                if key[:2] == (resource.group, resource.kind) and (namespace is None or key[2] == namespace)
            )
            return [_served_copy(self._objects[key], resource) for key in keys], str(self._revision)

    def get_object(self, resource: Resource, namespace: str | None, name: str) -> KubeObject | None:
        with self._lock:
            obj = self._objects.get((resource.group, resource.kind, namespace or "", name))
            return None if obj is None else _served_copy(obj, resource)

    def create_object(self, resource: Resource, obj: KubeObject, dry_run: bool = False) -> KubeObject:
        """Store a new object (already checked against the request); 409 if it exists, 404 without its namespace."""
        with self._lock:
            namespace = obj["metadata"].get("namespace") or ""
            if resource.namespaced and ("", "Namespace", "", namespace) not in self._objects:
                raise not_found(_BUILTIN_KINDS[("", "Namespace")], namespace)
            key = (resource.group, resource.kind, namespace, obj["metadata"]["name"])
            if key in self._objects:
                name = key[3]
                raise ApiError(409, f'{resource.qualified_plural} "{name}" already exists', "AlreadyExists",
                               _details(resource, name))
            try:
                created = prepare_object(obj, self._catalog, str(self._revision + 1), _now_rfc3339())
            except ValueError as exc:
                raise _invalid(resource.kind, key[3], "metadata", str(exc), "FieldValueInvalid") from None
            if not dry_run:
                self._revision += 1
                self._objects[key] = created
                self._refresh_catalog(resource)
            return _served_copy(created, resource)

    def delete_object(self, resource: Resource, namespace: str | None, name: str,
                      dry_run: bool = False) -> KubeObject | None:
        """Remove an object (and what a cluster would remove with it); None if it does not exist."""
        with self._lock:
            key = (resource.group, resource.kind, namespace or "", name)
            obj = self._objects.get(key)
            if obj is None or dry_run:
                return None if obj is None else _served_copy(obj, resource)
            self._revision += 1
            del self._objects[key]
            for dependent in self._dependents(resource, obj):
                del self._objects[dependent]
            self._refresh_catalog(resource)
            return _served_copy(obj, resource)

    def _dependents(self, resource: Resource, obj: KubeObject) -> list[ObjectKey]:
        """Deleting a namespace deletes its objects; deleting a CRD deletes its custom resources."""
        if (resource.group, resource.kind) == ("", "Namespace"):
            return [key for key in self._objects if key[2] == obj["metadata"]["name"]]
        if (resource.group, resource.kind) == _CRD_KEY:
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            return [key for key in self._objects if key[:2] == (spec.get("group"), kind)]
        return []

    def _refresh_catalog(self, resource: Resource) -> None:
        if (resource.group, resource.kind) == _CRD_KEY:
            self._catalog = Catalog(o for k, o in self._objects.items() if k[:2] == _CRD_KEY)


# --- discovery --------------------------------------------------------------------------------


def _api_resource(resource: Resource) -> KubeObject:
    entry: KubeObject = {
        "name": resource.plural, "singularName": resource.singular_name, "namespaced": resource.namespaced,
        "kind": resource.kind, "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def resource_list_document(catalog: Catalog, group: str, version: str) -> KubeObject | None:
    resources = catalog.resources(group, version)
    if resources is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": [_api_resource(r) for r in sorted(resources.values(), key=lambda r: r.plural)]}


def _group_entry(catalog: Catalog, group: str) -> KubeObject:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in catalog.versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_document(catalog: Catalog, group: str) -> KubeObject | None:
    if not catalog.versions(group) or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(catalog, group)}


def group_list_document(catalog: Catalog) -> KubeObject:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_entry(catalog, g) for g in catalog.groups()]}


def core_versions_document(server_address: str) -> KubeObject:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _discovery_resource(resource: Resource) -> KubeObject:
    entry: KubeObject = {
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular_name,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def aggregated_discovery_document(catalog: Catalog, groups: list[str], version: str) -> KubeObject:
    """apidiscovery.k8s.io APIGroupDiscoveryList: what kubectl asks /api and /apis for first."""
    items = []
    for group in groups:
        versions = []
        for group_version in catalog.versions(group):
            resources = catalog.resources(group, group_version) or {}
            versions.append({
                "version": group_version,
                "resources": [_discovery_resource(r) for r in sorted(resources.values(), key=lambda r: r.plural)],
                "freshness": "Current",
            })
        metadata: KubeObject = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        items.append({"metadata": metadata, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _all_group_versions(catalog: Catalog) -> list[tuple[str, str]]:
    return [(group, version) for group in ["", *catalog.groups()] for version in catalog.versions(group)]


def root_paths_document(catalog: Catalog) -> KubeObject:
    """GET /: every path the server answers at its top levels, as kube-apiserver lists them."""
    paths = ["/api", "/apis", *(f"/{_gv_path(g, v)}" for g, v in _all_group_versions(catalog)),
             *(f"/apis/{g}" for g in catalog.groups()), "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]
    return {"paths": sorted(paths)}


def openapi_index_document(catalog: Catalog) -> KubeObject:
    """/openapi/v3: one entry per group-version; the hash changes whenever the served resources do."""
    paths = {}
    for group, version in _all_group_versions(catalog):
        resources = sorted((catalog.resources(group, version) or {}).values(), key=lambda r: r.plural)
        digest = hashlib.sha256(json.dumps([_api_resource(r) for r in resources]).encode()).hexdigest()[:32].upper()
        paths[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
    return {"paths": paths}


def openapi_group_version_document(catalog: Catalog, group: str, version: str) -> KubeObject | None:
    """A skeleton OpenAPI v3 document: operations without schemas.

    Enough for kubectl's check that the server validates fields itself (the `fieldValidation` query
    parameter on POST/PATCH), so `kubectl create -f` works without downloading schemas; `kubectl explain`
    and client-side validation get nothing useful from it.
    """
    resources = catalog.resources(group, version)
    if resources is None:
        return None
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    paths: KubeObject = {}
    for resource in sorted(resources.values(), key=lambda r: r.plural):
        gvk = {"x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": resource.kind}}
        base = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if resource.namespaced else "")
        operation = {**gvk, "parameters": [field_validation], "responses": {"200": {"description": "OK"}}}
        paths[base + resource.plural] = {"get": {**gvk, "responses": {"200": {"description": "OK"}}}, "post": operation}
        paths[base + resource.plural + "/{name}"] = {"get": {**gvk, "responses": {"200": {"description": "OK"}}},
                                                     "patch": operation, "put": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


# --- tables (what `kubectl get` prints) ---------------------------------------------------------


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, which kubectl's AGE column uses."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _since(value: Any, now: dt.datetime) -> str:
    when = _parse_time(value)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


def _get(obj: Any, *keys: str | int, default: Any = None) -> Any:
    for key in keys:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return default
    return obj


Cell = Callable[[KubeObject, dt.datetime], Any]


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> KubeObject:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


_NAME_COLUMN = Column("Name", lambda o, _: o["metadata"]["name"], format="name",
                      description="Name must be unique within a namespace.")
_AGE_COLUMN = Column("Age", lambda o, now: _since(o["metadata"].get("creationTimestamp"), now),
                     description="CreationTimestamp is a timestamp representing the server time when this object "
                                 "was created.")


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


def _pod_ready(pod: KubeObject, _: dt.datetime) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    total = len(_get(pod, "spec", "containers", default=[]))
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _container_reason(status: KubeObject) -> str | None:
    state = status.get("state") or {}
    if _get(state, "waiting", "reason"):
        return state["waiting"]["reason"]
    terminated = state.get("terminated")
    if terminated:
        if terminated.get("reason"):
            return terminated["reason"]
        if terminated.get("signal"):
            return f"Signal:{terminated['signal']}"
        return f"ExitCode:{terminated.get('exitCode', 0)}"
    return None


def _init_reason(pod: KubeObject) -> str | None:
    statuses = _get(pod, "status", "initContainerStatuses", default=[])
    for index, status in enumerate(statuses):
        terminated = _get(status, "state", "terminated")
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        reason = _container_reason(status)
        if reason and reason != "PodInitializing":
            return f"Init:{reason}"
        return f"Init:{index}/{len(_get(pod, 'spec', 'initContainers', default=[]))}"
    return None


def _pod_status(pod: KubeObject, _: dt.datetime) -> str:
    """A condensed version of kubectl's pod STATUS: init progress, container reasons, Terminating."""
    reason = _get(pod, "status", "reason") or _get(pod, "status", "phase") or "Unknown"
    init = _init_reason(pod)
    if init:
        reason = init
    else:
        has_running = False
        for status in reversed(_get(pod, "status", "containerStatuses", default=[])):
            container_reason = _container_reason(status)
            if container_reason:
                reason = container_reason
            elif _get(status, "state", "running") and status.get("ready"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if _get(pod, "status", "reason") == "NodeLost" else "Terminating"
    return reason


def _pod_restarts(pod: KubeObject, now: dt.datetime) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    init_statuses = _get(pod, "status", "initContainerStatuses", default=[])
    restarts = sum(int(s.get("restartCount") or 0) for s in [*init_statuses, *statuses])
    finished = [t for s in statuses if (t := _parse_time(_get(s, "lastState", "terminated", "finishedAt")))]
    if restarts and finished:
        return f"{restarts} ({human_duration((now - max(finished)).total_seconds())} ago)"
    return str(restarts)


def _node_status(node: KubeObject, _: dt.datetime) -> str:
    ready = next((c.get("status") for c in _get(node, "status", "conditions", default=[]) if c.get("type") == "Ready"),
                 None)
    status = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    return f"{status},SchedulingDisabled" if _get(node, "spec", "unschedulable") else status


def _node_roles(node: KubeObject, _: dt.datetime) -> str:
    labels = _get(node, "metadata", "labels", default={})
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_address(kind: str) -> Cell:
    def cell(node: KubeObject, _: dt.datetime) -> str:
        addresses = [a.get("address") for a in _get(node, "status", "addresses", default=[]) if a.get("type") == kind]
        return _none(",".join(a for a in addresses if a))

    return cell


def _load_balancer_addresses(obj: KubeObject) -> list[str]:
    return [i.get("ip") or i.get("hostname") or "" for i in _get(obj, "status", "loadBalancer", "ingress", default=[])]


def _service_external_ip(service: KubeObject, _: dt.datetime) -> str:
    external = _get(service, "spec", "externalIPs", default=[])
    if _get(service, "spec", "type") == "LoadBalancer":
        return ",".join(_load_balancer_addresses(service) + external) or "<pending>"
    if _get(service, "spec", "type") == "ExternalName":
        return _get(service, "spec", "externalName", default="<none>")
    return ",".join(external) or "<none>"


def _service_ports(service: KubeObject, _: dt.datetime) -> str:
    ports = []
    for port in _get(service, "spec", "ports", default=[]):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node_port}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _selector_text(selector: dict[str, Any] | None) -> str:
    """A label selector (LabelSelector or plain map) as kubectl prints it."""
    if not selector:
        return "<none>"
    structured = "matchLabels" in selector or "matchExpressions" in selector
    labels = (selector.get("matchLabels") or {}) if structured else selector
    expressions = (selector.get("matchExpressions") or []) if structured else []
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str)]
    for expression in expressions:
        values = ",".join(expression.get("values") or [])
        parts.append(f"{expression.get('key')} {str(expression.get('operator', '')).lower()} ({values})")
    return ",".join(parts) or "<none>"


def _template_containers(attribute: str) -> Cell:
    def cell(obj: KubeObject, _: dt.datetime) -> str:
        containers = _get(obj, "spec", "template", "spec", "containers", default=[])
        return ",".join(str(c.get(attribute, "")) for c in containers)

    return cell


def _int_at(*keys: str, default: int = 0) -> Cell:
    return lambda obj, _: int(_get(obj, *keys, default=default) or 0)


def _ratio(ready: tuple[str, ...], desired: tuple[str, ...]) -> Cell:
    return lambda obj, _: f"{_get(obj, *ready, default=0) or 0}/{_get(obj, *desired, default=1)}"


def _ingress_hosts(ingress: KubeObject, _: dt.datetime) -> str:
    hosts = [r.get("host") for r in _get(ingress, "spec", "rules", default=[]) if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_ports(ingress: KubeObject, _: dt.datetime) -> str:
    return "80, 443" if _get(ingress, "spec", "tls") else "80"


def _created_at(obj: KubeObject, _: dt.datetime) -> str:
    return str(obj["metadata"].get("creationTimestamp", ""))


_WIDE_TEMPLATE = (
    Column("Containers", _template_containers("name"), priority=1),
    Column("Images", _template_containers("image"), priority=1),
    Column("Selector", lambda o, _: _selector_text(_get(o, "spec", "selector")), priority=1),
)
_INT = "integer"
BUILTIN_COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "Pod"): (
        _NAME_COLUMN, Column("Ready", _pod_ready), Column("Status", _pod_status), Column("Restarts", _pod_restarts),
        _AGE_COLUMN,
        Column("IP", lambda o, _: _none(_get(o, "status", "podIP")), priority=1),
        Column("Node", lambda o, _: _none(_get(o, "spec", "nodeName")), priority=1),
        Column("Nominated Node", lambda o, _: _none(_get(o, "status", "nominatedNodeName")), priority=1),
        Column("Readiness Gates", lambda o, _: _none(len(_get(o, "spec", "readinessGates", default=[])) or None),
               priority=1),
    ),
    ("", "Node"): (
        _NAME_COLUMN, Column("Status", _node_status), Column("Roles", _node_roles), _AGE_COLUMN,
        Column("Version", lambda o, _: _get(o, "status", "nodeInfo", "kubeletVersion", default="")),
        Column("Internal-IP", _node_address("InternalIP"), priority=1),
        Column("External-IP", _node_address("ExternalIP"), priority=1),
        Column("OS-Image", lambda o, _: _get(o, "status", "nodeInfo", "osImage", default=""), priority=1),
        Column("Kernel-Version", lambda o, _: _get(o, "status", "nodeInfo", "kernelVersion", default=""), priority=1),
        Column("Container-Runtime", lambda o, _: _get(o, "status", "nodeInfo", "containerRuntimeVersion", default=""),
               priority=1),
    ),
    ("", "Namespace"): (_NAME_COLUMN, Column("Status", lambda o, _: _get(o, "status", "phase", default="")),
                        _AGE_COLUMN),
    ("", "Service"): (
        _NAME_COLUMN, Column("Type", lambda o, _: _get(o, "spec", "type", default="ClusterIP")),
        Column("Cluster-IP", lambda o, _: _none(_get(o, "spec", "clusterIP"))),
        Column("External-IP", _service_external_ip), Column("Port(s)", _service_ports), _AGE_COLUMN,
        Column("Selector", lambda o, _: _selector_text(_get(o, "spec", "selector")), priority=1),
    ),
    ("", "ConfigMap"): (_NAME_COLUMN, Column("Data", lambda o, _: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                             type=_INT), _AGE_COLUMN),
    ("", "Secret"): (_NAME_COLUMN, Column("Type", lambda o, _: o.get("type", "Opaque")),
                     Column("Data", lambda o, _: len(o.get("data") or {}), type=_INT), _AGE_COLUMN),
    ("", "ServiceAccount"): (_NAME_COLUMN, Column("Secrets", lambda o, _: len(o.get("secrets") or []), type=_INT),
                             _AGE_COLUMN),
    ("apps", "Deployment"): (
        _NAME_COLUMN, Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
        Column("Up-to-date", _int_at("status", "updatedReplicas"), type=_INT),
        Column("Available", _int_at("status", "availableReplicas"), type=_INT), _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "DaemonSet"): (
        _NAME_COLUMN, Column("Desired", _int_at("status", "desiredNumberScheduled"), type=_INT),
        Column("Current", _int_at("status", "currentNumberScheduled"), type=_INT),
        Column("Ready", _int_at("status", "numberReady"), type=_INT),
        Column("Up-to-date", _int_at("status", "updatedNumberScheduled"), type=_INT),
        Column("Available", _int_at("status", "numberAvailable"), type=_INT),
        Column("Node Selector", lambda o, _: _selector_text(_get(o, "spec", "template", "spec", "nodeSelector"))),
        _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "ReplicaSet"): (
        _NAME_COLUMN, Column("Desired", _int_at("spec", "replicas", default=1), type=_INT),
        Column("Current", _int_at("status", "replicas"), type=_INT),
        Column("Ready", _int_at("status", "readyReplicas"), type=_INT), _AGE_COLUMN, *_WIDE_TEMPLATE,
    ),
    ("apps", "StatefulSet"): (_NAME_COLUMN, Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
                              _AGE_COLUMN, *_WIDE_TEMPLATE[:2]),
    ("networking.k8s.io", "Ingress"): (
        _NAME_COLUMN, Column("Class", lambda o, _: _none(_get(o, "spec", "ingressClassName"))),
        Column("Hosts", _ingress_hosts),
        Column("Address", lambda o, _: ",".join(_load_balancer_addresses(o))), Column("Ports", _ingress_ports),
        _AGE_COLUMN,
    ),
    ("networking.k8s.io", "IngressClass"): (
        _NAME_COLUMN, Column("Controller", lambda o, _: _get(o, "spec", "controller", default="")), _AGE_COLUMN,
    ),
    _CRD_KEY: (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
    ("rbac.authorization.k8s.io", "ClusterRole"): (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
    ("rbac.authorization.k8s.io", "Role"): (_NAME_COLUMN, Column("Created At", _created_at, type="date")),
}

# A small JSONPath for CRD additionalPrinterColumns: .a.b, ['a.b'], [0], [*], [?(@.k=="v")].
_JSONPATH_STEP = re.compile(
    r"""\.(?P<field>[^.\[\]]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[['"](?P<quoted>[^'"]*)['"]\]"""
    r"""|\[\?\(@\.(?P<filter>[\w.-]+)\s*(?P<op>==|!=)\s*(?P<value>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]"""
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """Values a simple JSONPath selects; [] when it selects nothing or is beyond this subset."""
    text = path.strip().removeprefix("{").removesuffix("}").strip().removeprefix("$")
    nodes, position = [obj], 0
    while position < len(text):
        match = _JSONPATH_STEP.match(text, position)
        if match is None:
            return []
        position = match.end()
        nodes = [result for node in nodes for result in _jsonpath_step(node, match)]
    return [node for node in nodes if node is not None]


def _jsonpath_step(node: Any, step: re.Match[str]) -> list[Any]:
    key = step.group("field") or step.group("quoted")
    if key is not None:
        return [node.get(key)] if isinstance(node, dict) else []
    if not isinstance(node, list):
        return []
    index = step.group("index")
    if index == "*":
        return list(node)
    if index is not None:
        position = int(index)
        return [node[position]] if -len(node) <= position < len(node) else []
    wanted = step.group("value").strip("'\"")
    selected = [item for item in node if isinstance(item, dict)
                and (str(_get(item, *step.group("filter").split("."), default="")) == wanted) == (step.group("op") == "==")]
    return selected


def _printer_cell(column: dict[str, Any]) -> Cell:
    def cell(obj: KubeObject, now: dt.datetime) -> Any:
        values = jsonpath_values(obj, str(column.get("jsonPath", "")))
        if not values:
            return None
        value = values[0] if len(values) == 1 else ",".join(json.dumps(v) if isinstance(v, dict | list) else str(v)
                                                              for v in values)
        if column.get("type") == "date":
            return _since(value, now)
        return json.dumps(value) if isinstance(value, dict | list) else value

    return cell


def columns_for(resource: Resource) -> tuple[Column, ...]:
    builtin = BUILTIN_COLUMNS.get((resource.group, resource.kind))
    if builtin:
        return builtin
    if not resource.printer_columns:
        return (_NAME_COLUMN, _AGE_COLUMN)
    printer = tuple(
        Column(str(c.get("name", "")), _printer_cell(c), type=str(c.get("type", "string")), priority=int(c.get("priority", 0)),
               format=str(c.get("format", "")), description=str(c.get("description", "")))
        for c in resource.printer_columns
    )
    return (_NAME_COLUMN, *printer)


def partial_metadata(obj: KubeObject, version: str = "v1") -> KubeObject:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": copy.deepcopy(obj["metadata"])}


def table_document(resource: Resource, objects: list[KubeObject], list_meta: KubeObject, version: str,
                   include_object: str) -> KubeObject:
    now = dt.datetime.now(dt.UTC)
    columns = columns_for(resource)
    rows = []
    for obj in objects:
        row: KubeObject = {"cells": [column.cell(obj, now) for column in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, version)
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta,
            "columnDefinitions": [column.definition() for column in columns], "rows": rows}


# --- content negotiation ------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    mime: str
    params: dict[str, str]

    @property
    def is_json(self) -> bool:
        return self.mime in ("application/json", "application/*", "*/*")

    def meta_as(self, *kinds: str) -> str | None:
        """The meta.k8s.io version when this range asks for one of `kinds` (`as=Table;g=meta.k8s.io;v=v1`)."""
        if self.params.get("as") in kinds and self.params.get("g") == "meta.k8s.io" \
                and self.params.get("v") in ("v1", "v1beta1"):
            return self.params["v"]
        return None


def parse_accept(header: str | None) -> list[MediaRange]:
    ranges = []
    for part in (header or "").split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), params))
    return ranges


def choose_object_format(accept: str | None) -> tuple[str, str]:
    """("table"|"partial"|"json", meta.k8s.io version): the first acceptable range wins.

    Protobuf or YAML ranges are skipped: everything is answered in JSON, which real clients also accept.
    """
    for media in parse_accept(accept):
        if not media.is_json:
            continue
        if "as" not in media.params:
            return "json", ""
        if version := media.meta_as("Table"):
            return "table", version
        if version := media.meta_as("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial", version
    return "json", ""


def choose_discovery_format(accept: str | None) -> str | None:
    """The apidiscovery.k8s.io version when aggregated discovery comes before legacy in Accept, else None."""
    for media in parse_accept(accept):
        if not media.is_json:
            continue
        params = media.params
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        if "as" not in params:
            return None
    return None


# --- pagination -----------------------------------------------------------------------------------


def _encode_continue(resource: Resource, after: tuple[str, str], revision: str) -> str:
    payload = {"v": "aksid/1", "r": resource.qualified_plural, "rv": revision, "after": list(after)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_continue(resource: Resource, token: str) -> tuple[str, str]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = payload["after"]
        if payload.get("v") != "aksid/1" or payload.get("r") != resource.qualified_plural or len(after) != 2:
            raise ValueError("the token belongs to another list")
        return str(after[0]), str(after[1])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ApiError(400, f"continue key is not valid: {exc}") from None


def _parse_limit(value: str | None) -> int:
    if value in (None, ""):
        return 0
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(400, f"limit: Invalid value: {value!r}: must be an integer") from None
    return max(limit, 0)


def _sort_key(obj: KubeObject) -> tuple[str, str]:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def paginate(resource: Resource, items: list[KubeObject], query: dict[str, str], revision: str,
             filtered: bool) -> tuple[list[KubeObject], KubeObject]:
    """One page and its ListMeta. Continue tokens are positions (namespace, name), stable across writes."""
    token = query.get("continue")
    if token:
        after = _decode_continue(resource, token)
        items = [obj for obj in items if _sort_key(obj) > after]
    limit = _parse_limit(query.get("limit"))
    meta: KubeObject = {"resourceVersion": revision}
    if limit and len(items) > limit:
        page = items[:limit]
        meta["continue"] = _encode_continue(resource, _sort_key(page[-1]), revision)
        if not filtered:
            # As upstream: the count is only known (and only reported) when no selector filtered the list.
            meta["remainingItemCount"] = len(items) - limit
        return page, meta
    return items, meta


# --- the HTTP handler ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, content_type: str = _JSON) -> Response:
        return cls(status, (json.dumps(document, separators=(",", ":")) + "\n").encode(), content_type)

    @classmethod
    def error(cls, error: ApiError) -> Response:
        response = cls.json(error.code, error.document())
        response.headers.update(error.headers)
        return response


@dataclass(frozen=True)
class Target:
    """What a resource path names: a collection (name None) or one object, maybe a subresource of it."""

    resource: Resource
    namespace: str | None
    name: str | None = None
    subresource: str | None = None


def route_resource(parts: list[str], resources: dict[str, Resource]) -> Target:
    """Resolve the path segments after `/api/v1` or `/apis/<group>/<version>`."""
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] in resources and resources[parts[2]].namespaced:
        namespace, parts = parts[1], parts[2:]
    resource = resources.get(parts[0])
    if resource is None or len(parts) > 3:
        raise _no_such_path()
    if resource.namespaced and namespace is None and len(parts) > 1:
        raise _no_such_path()  # a namespaced object is only addressable under /namespaces/<ns>/
    name = parts[1] if len(parts) > 1 else None
    subresource = parts[2] if len(parts) > 2 else None
    if subresource not in (None, "status"):
        raise _no_such_path()
    return Target(resource, namespace, name, subresource)


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH_SEGMENT_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def _name_problem(kind: str, name: str) -> str | None:
    """kube-apiserver's metadata.name validation for the kind, or None when the name is valid."""
    if kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return f'Invalid value: "{name}": may not be \'.\' or \'..\' and may not contain \'/\' or \'%\''
        return None
    if kind == "Namespace":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return (f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                    "characters or '-', and must start and end with an alphanumeric character")
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                "characters, '-' or '.', and must start and end with an alphanumeric character")
    return None


_GENERATED_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_GENERATED_SUFFIX_ALPHABET) for _ in range(5))


def _parse_body(body: bytes, content_type: str | None) -> KubeObject:
    """A JSON or YAML request body; protobuf (kubectl's default for built-ins) is refused with 415, as
    kube-apiserver refuses formats it does not know, and client-go then retries in JSON."""
    media = (content_type or _JSON).split(";", 1)[0].strip().lower()
    if media not in (_JSON, "application/yaml"):
        raise ApiError(415, f'the body of the request was in an unknown format - accepted media types include: '
                            f'{_JSON}, application/yaml', details={})
    try:
        document = yaml.safe_load(body) if media == "application/yaml" else json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return document


def _check_new_object(target: Target, obj: KubeObject) -> KubeObject:
    """Validate a POSTed object against its path as the API server does; return it completed from the path."""
    resource = target.resource
    _check_type(resource, obj)
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    meta = obj["metadata"]
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata must be an object")
    if resource.namespaced:
        if meta.get("namespace") and meta["namespace"] != target.namespace:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = target.namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = _generated_name(str(meta["generateName"]))
    _check_name(resource, obj)
    for server_field in ("resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
        meta.pop(server_field, None)  # the server sets these, whatever the client sent
    meta["uid"] = str(uuid.uuid4())  # random, as on a cluster: a re-created object is a new object
    if (resource.group, resource.kind) == ("", "Pod"):
        obj.setdefault("status", {}).setdefault("phase", "Pending")  # as the API server's pod strategy does
    return obj


def _check_type(resource: Resource, obj: KubeObject) -> None:
    """apiVersion and kind default to the path's; when given they must match it."""
    obj.setdefault("apiVersion", resource.group_version)
    obj.setdefault("kind", resource.kind)
    if obj["apiVersion"] != resource.group_version:
        raise ApiError(400, f"the API version in the data ({obj['apiVersion']}) does not match the expected API "
                            f"version ({resource.group_version})")
    if obj["kind"] != resource.kind:
        raise ApiError(400, f'{obj["kind"]} in version "{resource.version}" cannot be handled as a {resource.kind}: '
                            "the kind in the data does not match the resource")


def _check_name(resource: Resource, obj: KubeObject) -> None:
    name = obj["metadata"].get("name")
    if not isinstance(name, str) or not name:
        raise _invalid(resource.kind, "", "metadata.name", "Required value: name or generateName is required",
                       "FieldValueRequired")
    problem = _name_problem(resource.kind, name)
    if problem:
        raise _invalid(resource.kind, name, "metadata.name", problem, "FieldValueInvalid")
    if (resource.group, resource.kind) == _CRD_KEY:
        spec = obj.get("spec") or {}
        if name != f"{(spec.get('names') or {}).get('plural')}.{spec.get('group')}":
            raise _invalid(resource.kind, name, "metadata.name",
                           f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group', "FieldValueInvalid")


def selectable_fields(resource: Resource) -> dict[str, FieldGetter]:
    """The fields a fieldSelector may name: per built-in kind, or a CRD's selectableFields."""
    fields = fields_for(resource.group, resource.kind)
    for json_path in resource.selectable_fields:
        fields[json_path.lstrip(".")] = _json_path_getter(json_path)
    return fields


def _json_path_getter(json_path: str) -> FieldGetter:
    def get(obj: KubeObject) -> str:
        values = jsonpath_values(obj, json_path)
        if not values:
            return ""
        value = values[0]
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return get


def _flat_query(raw_query: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(raw_query, keep_blank_values=True).items()}


class KubeRequestHandler(BaseHTTPRequestHandler):
    """Serves one KubeStore; `make_kube_handler` binds the store, token and log."""

    protocol_version = "HTTP/1.1"
    server_version = "aksid-sandbox-kube-apiserver"
    sys_version = ""
    # Idle keep-alive connections are dropped after this many seconds, so threads do not pile up.
    timeout = 120
    # Buffer the response so headers and body leave in one send: written separately, Nagle's algorithm
    # and the client's delayed ACK stall every keep-alive request by ~40 ms.
    wbufsize = 64 * 1024

    store: KubeStore
    token: str
    request_log: Callable[[dict[str, Any]], None]

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: every request goes to `request_log` instead of stderr."""

    def setup(self) -> None:
        super().setup()
        # Large responses are written in more than one send; do not let Nagle hold back the last one.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the interim 100 Continue must not wait in the response buffer
        return accepted

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True  # the client went away; nothing to answer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")

    # -- plumbing --

    def _serve(self, method: str) -> None:
        try:
            response = self._respond(method, self._read_body())
        except ApiError as error:
            response = Response.error(error)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise  # the client went away mid-request: nobody to answer (see handle)
        except Exception as exc:  # a bug in the fake must still answer, like kube-apiserver's panic handler
            response = Response.error(ApiError(500, f"Internal error occurred: {type(exc).__name__}: {exc}"))
        # Logged once the answer is decided and before it is sent: a client holding its response can
        # rely on finding the request in the log already.
        self.request_log({"server": "kube", "method": method, "path": self.path, "status": response.status,
                          "user_agent": self.headers.get("User-Agent", "")})
        try:
            self._write(method, response)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, f"invalid Content-Length {raw_length!r}") from None
        if length > _MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: this connection cannot be reused
            raise ApiError(413, "Request entity too large: limit is 3145728")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > _MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "Request entity too large: limit is 3145728")
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _write(self, method: str, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, private")
        if self.close_connection:
            self.send_header("Connection", "close")  # e.g. an unread oversized body is still on the wire
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    def _authenticate(self) -> None:
        scheme, _, presented = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
            raise ApiError(401, "Unauthorized")

    # -- routing --

    def _respond(self, method: str, body: bytes) -> Response:
        self._authenticate()
        fault = self.store.take_fault(method, self.path)
        if fault is not None:
            raise fault.error()
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.split("/") if part]
        query = _flat_query(url.query)
        if parts[:1] not in (["api"], ["apis"]):
            return self._respond_other(method, parts)
        catalog = self.store.catalog()
        if parts[0] == "api":
            group, version, rest = "", (parts[1] if len(parts) > 1 else None), parts[2:]
        else:
            group = parts[1] if len(parts) > 1 else None
            version, rest = (parts[2] if len(parts) > 2 else None), parts[3:]
        if version is None or not rest:
            _require_get(method)
            return self._discovery(catalog, group, version)
        resources = catalog.resources(group or "", version)
        if resources is None:
            raise _no_such_path()
        if rest[0] == "watch" or query.get("watch", "").lower() in ("true", "1"):
            raise ApiError(405, "watch is not supported by the aksid sandbox API server", details={})
        return self._resource(method, route_resource(rest, resources), query, body)

    def _respond_other(self, method: str, parts: list[str]) -> Response:
        _require_get(method)
        if not parts:
            return Response.json(200, root_paths_document(self.store.catalog()))
        if parts == ["version"]:
            return Response.json(200, SERVER_VERSION)
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        raise _no_such_path()  # /openapi/v2 included: kubectl 1.32 uses v3 only

    def _openapi(self, gv_parts: list[str]) -> Response:
        catalog = self.store.catalog()
        if not gv_parts:
            return Response.json(200, openapi_index_document(catalog))
        document = None
        if gv_parts[0] == "api" and len(gv_parts) == 2:
            document = openapi_group_version_document(catalog, "", gv_parts[1])
        elif gv_parts[0] == "apis" and len(gv_parts) == 3:
            document = openapi_group_version_document(catalog, gv_parts[1], gv_parts[2])
        if document is None:
            raise _no_such_path()
        return Response.json(200, document)

    def _discovery(self, catalog: Catalog, group: str | None, version: str | None) -> Response:
        aggregated = choose_discovery_format(self.headers.get("Accept"))
        if group == "" and version is None:  # /api
            if aggregated:
                return _aggregated(aggregated_discovery_document(catalog, [""], aggregated), aggregated)
            host, port = self.server.server_address[:2]
            return Response.json(200, core_versions_document(f"{host}:{port}"))
        if group is None:  # /apis
            if aggregated:
                return _aggregated(aggregated_discovery_document(catalog, catalog.groups(), aggregated), aggregated)
            return Response.json(200, group_list_document(catalog))
        document = resource_list_document(catalog, group, version) if version else group_document(catalog, group)
        if document is None:
            raise _no_such_path()
        return Response.json(200, document)

    def _resource(self, method: str, target: Target, query: dict[str, str], body: bytes) -> Response:
        dry_run = query.get("dryRun") == "All"
        if method in ("GET", "HEAD"):
            return self._get(target, query) if target.name else self._list(target, query)
        # Namespaced kinds are created under /namespaces/<ns>/ only; the cluster-wide path lists.
        if method == "POST" and target.name is None and (target.namespace or not target.resource.namespaced):
            obj = _check_new_object(target, _parse_body(body, self.headers.get("Content-Type")))
            created = self.store.create_object(target.resource, obj, dry_run)
            return Response.json(201, created)
        if method == "DELETE" and target.name and target.subresource is None:
            return self._delete(target, dry_run)
        raise _method_not_allowed()

    # -- verbs --

    def _get(self, target: Target, query: dict[str, str]) -> Response:
        assert target.name is not None
        obj = self.store.get_object(target.resource, target.namespace, target.name)
        if obj is None:
            raise not_found(target.resource, target.name)
        form, version = choose_object_format(self.headers.get("Accept"))
        if form == "table":
            include = query.get("includeObject", "Metadata")
            return Response.json(200, table_document(target.resource, [obj], {}, version, include))
        if form == "partial":
            return Response.json(200, partial_metadata(obj, version))
        return Response.json(200, obj)

    def _list(self, target: Target, query: dict[str, str]) -> Response:
        resource = target.resource
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), selectable_fields(resource))
        except SelectorError as exc:
            raise ApiError(400, str(exc)) from None
        items, revision = self.store.list_objects(resource, target.namespace)
        items = [obj for obj in items if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)]
        page, list_meta = paginate(resource, items, query, revision, filtered=not (labels.empty and fields.empty))
        form, version = choose_object_format(self.headers.get("Accept"))
        if form == "table":
            return Response.json(200, table_document(resource, page, list_meta, version,
                                                     query.get("includeObject", "Metadata")))
        if form == "partial":
            return Response.json(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version}",
                                       "metadata": list_meta, "items": [partial_metadata(o, version) for o in page]})
        if not resource.custom:
            # Items of built-in lists carry no apiVersion/kind on a real API server; custom resources do.
            page = [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in page]
        return Response.json(200, {"kind": resource.list_kind_name, "apiVersion": resource.group_version,
                                   "metadata": list_meta, "items": page})

    def _delete(self, target: Target, dry_run: bool) -> Response:
        assert target.name is not None
        resource = target.resource
        deleted = self.store.delete_object(resource, target.namespace, target.name, dry_run)
        if deleted is None:
            raise not_found(resource, target.name)
        if resource.custom or (resource.group, resource.kind) in _DELETE_RETURNS_OBJECT:
            return Response.json(200, deleted)
        details = {**_details(resource, target.name), "uid": deleted["metadata"]["uid"]}
        return Response.json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                   "details": details})


def _require_get(method: str) -> None:
    if method not in ("GET", "HEAD"):
        raise _method_not_allowed()


def _aggregated(document: KubeObject, version: str) -> Response:
    content_type = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    return Response.json(200, document, content_type)


def make_kube_handler(store: KubeStore, token: str, log: Callable[[dict], None]) -> type[BaseHTTPRequestHandler]:
    """A handler class serving `store` to clients presenting `Authorization: Bearer <token>`.

    `log` receives one record per request, just before its answer is sent: server, method, path (with
    query), status, user_agent. Never the Authorization header, never a body.
    """
    if not token:
        raise ValueError("the kube API token must not be empty")
    return type("KubeHandler", (KubeRequestHandler,), {"store": store, "token": token, "request_log": staticmethod(log)})
