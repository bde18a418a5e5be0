"""Objects as the API server stores and serves them: defaults filled in, keyed, copied per version."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid

from aksid.sandbox.bulk import json_copy
from aksid.sandbox.kube.resources import CRD_KEY, Catalog, KubeObject, ObjectKey, Resource, split_api_version

# Objects loaded without a creationTimestamp get this one, so that reruns see identical objects.
FIXED_CREATION_TIMESTAMP = "2025-01-01T00:00:00Z"
# uuid5 namespace for deterministic metadata.uid values.
_UID_NAMESPACE = uuid.UUID("6f1c2a4e-9d0b-5a43-8e2f-3b7d1c5e0a91")
# Kinds whose metadata.generation the API server maintains (spec changes bump it).
_GENERATION_KINDS = {
    ("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"), CRD_KEY,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
}
# Non-omitempty status integers: the typed client rejects a status without them.
_REQUIRED_STATUS_INTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "DaemonSet"): ("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady"),
    ("apps", "ReplicaSet"): ("replicas",),
    ("apps", "StatefulSet"): ("replicas", "availableReplicas"),
}


def now_rfc3339() -> str:
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
    elif (group, kind) == CRD_KEY:
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
    obj = json_copy(obj)
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


def served_copy(obj: KubeObject, resource: Resource) -> KubeObject:
    """A copy in the requested version; custom resources are served in any version without conversion."""
    served = json_copy(obj)
    served["apiVersion"] = resource.group_version
    return served


def list_item_variant(resource: Resource) -> str:
    """What a LIST item's encoding depends on besides the object: the served version for custom resources
    (their items carry apiVersion and kind), nothing for built-ins (their items carry neither)."""
    return resource.group_version if resource.custom else ""


def encode_list_item(obj: KubeObject, variant: str) -> bytes:
    """The object as an item of a LIST in JSON, byte for byte what encoding the whole list would give it."""
    if variant:
        served = {**obj, "apiVersion": variant}  # keeps apiVersion where the object has it, as served_copy does
    else:
        # Items of built-in lists carry no apiVersion/kind on a real API server; custom resources do.
        served = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    return json.dumps(served, separators=(",", ":")).encode()
