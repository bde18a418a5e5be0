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
