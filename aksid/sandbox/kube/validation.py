"""A POSTed object checked against its path and kube-apiserver's name rules, completed as the server does."""

from __future__ import annotations

import re
import secrets
import uuid

from aksid.sandbox.kube.errors import ApiError, invalid
from aksid.sandbox.kube.resources import CRD_KEY, KubeObject, Resource

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


def check_new_object(resource: Resource, namespace: str | None, obj: KubeObject) -> KubeObject:
    """Validate an object POSTed to `resource` (under /namespaces/`namespace`/) as the API server does;
    return it completed from the path."""
    _check_type(resource, obj)
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    meta = obj["metadata"]
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata must be an object")
    if resource.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
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
        raise invalid(resource.kind, "", "metadata.name", "Required value: name or generateName is required",
                      "FieldValueRequired")
    problem = _name_problem(resource.kind, name)
    if problem:
        raise invalid(resource.kind, name, "metadata.name", problem, "FieldValueInvalid")
    if (resource.group, resource.kind) == CRD_KEY:
        spec = obj.get("spec") or {}
        if name != f"{(spec.get('names') or {}).get('plural')}.{spec.get('group')}":
            raise invalid(resource.kind, name, "metadata.name",
                          f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group', "FieldValueInvalid")


# What a pod update may change in the spec (ValidatePodUpdate); the rest of a pod's spec is immutable.
_POD_UPDATE_MESSAGE = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                       "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                       "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                       "was previously negative)")
_SELECTOR_IMMUTABLE_KINDS = {("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"),
                             ("apps", "StatefulSet")}


def check_name_matches(resource: Resource, namespace: str | None, name: str, obj: KubeObject) -> None:
    """k8s.io/apiserver's checkName: a PUT or patched body must name the object of the URL (400 otherwise)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(400, f"the name of the object ({name} based on URL) was undeterminable: metadata is not "
                            "an object")
    if meta.get("name") != name:
        raise ApiError(400, f"the name of the object ({meta.get('name') or ''}) does not match the name on the URL "
                            f"({name})")
    if resource.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
        raise ApiError(400, f"the namespace of the object ({meta['namespace']}) does not match the namespace on the "
                            f"URL ({namespace})")


def check_updated_object(resource: Resource, namespace: str | None, current: KubeObject, obj: KubeObject,
                         status_only: bool) -> KubeObject:
    """An object written over `current` by PUT or PATCH (of the object, or of its `/status` when `status_only`),
    checked as kube-apiserver's update strategies do and completed: what the server owns comes from `current`.
    The caller has checked the name (check_name_matches) and resourceVersion is left for the store to check."""
    _check_type(resource, obj)
    meta = obj["metadata"]
    if resource.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    _check_name(resource, obj)
    before = current["metadata"]
    for server_field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if server_field in before:
            meta[server_field] = before[server_field]
        else:
            meta.pop(server_field, None)
    meta.pop("generation", None)  # the store carries it over, counting spec changes
    if status_only:
        # The status strategies: only the status changes (and the resourceVersion precondition stands).
        written = {key: value for key, value in current.items() if key != "status"}
        written["metadata"] = dict(before)
        if obj.get("status") is not None:
            written["status"] = obj["status"]
        return written
    if resource.has_status:  # the object's strategy: the status is the /status subresource's business
        obj.pop("status", None)
        if current.get("status") is not None:
            obj["status"] = current["status"]
    _check_immutable(resource, current, obj)
    return obj


def _check_immutable(resource: Resource, current: KubeObject, obj: KubeObject) -> None:
    name = obj["metadata"]["name"]
    key = (resource.group, resource.kind)
    if key == ("", "Pod") and _mutable_pod_spec(obj.get("spec"), current.get("spec")) != (current.get("spec") or {}):
        raise invalid(resource.kind, name, "spec", _POD_UPDATE_MESSAGE, "FieldValueForbidden")
    if key in _SELECTOR_IMMUTABLE_KINDS:
        selector, before = (obj.get("spec") or {}).get("selector"), (current.get("spec") or {}).get("selector")
        if selector != before:
            raise invalid(resource.kind, name, "spec.selector", f"Invalid value: {selector!r}: field is immutable",
                          "FieldValueInvalid")


def _mutable_pod_spec(spec: object, before: object) -> object:
    """`spec` with what a pod update may change set back to `before`'s values: equal to `before` when allowed."""
    if not isinstance(spec, dict) or not isinstance(before, dict):
        return spec
    normalized = dict(spec)
    for field in ("containers", "initContainers"):
        new, old = normalized.get(field), before.get(field)
        if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
            normalized[field] = [({**n, "image": o.get("image")} if isinstance(n, dict) and isinstance(o, dict)
                                  and "image" in o else n) for n, o in zip(new, old, strict=True)]
    for field in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        if field in before:
            normalized[field] = before[field]
        else:
            normalized.pop(field, None)
    old_tolerations = before.get("tolerations") or []
    if all(t in (normalized.get("tolerations") or []) for t in old_tolerations):  # only additions
        if "tolerations" in before:
            normalized["tolerations"] = before["tolerations"]
        else:
            normalized.pop("tolerations", None)
    return normalized
