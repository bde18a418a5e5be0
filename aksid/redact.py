"""Strip secrets from evidence before it is stored or reported."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

REDACTED = "<redacted>"
# Certificates are public by nature; keeping them lets TLS checks compare the served leaf.
_PUBLIC_SECRET_KEYS = frozenset({"tls.crt", "ca.crt"})
_SECRET_NAME = re.compile(r"secret|password|passwd|token|key|credential|connectionstring|sas", re.IGNORECASE)
_SECRET_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})


def looks_secret(name: str) -> bool:
    """True for setting names that conventionally hold secrets (AZURE_CLIENT_SECRET, aadClientSecret...)."""
    return bool(_SECRET_NAME.search(name))


# Built-in kinds whose secrets can only sit in annotations and in their pods' containers (env, args, command,
# probes' and hooks' exec commands): only those are walked; the rest (status, volumes, affinity) is copied as is.
_POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",), "Deployment": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_NO_POD_SPEC = frozenset({"Namespace", "Node", "Service", "ServiceAccount", "Ingress", "IngressClass"})
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def redact_kube_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `obj` with secret material replaced, and without `managedFields` (kubectl hides them
    too: they repeat the object's field names and cost a third of a pod's size); the input is not modified."""
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    path = _POD_SPECS.get(str(kind))
    if path is None and kind not in _NO_POD_SPEC:
        return _walk(obj, kind=kind)  # Secrets, custom resources...: every field
    redacted = {**obj, "metadata": _walk(obj.get("metadata"), kind, "metadata")}
    if path is not None:
        _redact_pod_spec(redacted, path, kind)
    return redacted


def _redact_pod_spec(obj: dict[str, Any], path: tuple[str, ...], kind: str | None) -> None:
    """Copy-on-write down to the pod spec: its template's metadata and its containers are walked."""
    node = obj
    for depth, key in enumerate(path):
        child = node.get(key)
        if not isinstance(child, dict):
            return
        child = dict(child)
        if key == "template" and isinstance(child.get("metadata"), dict):
            child["metadata"] = _walk(child["metadata"], kind, "metadata")
        node[key] = child
        node = child
        if depth == len(path) - 1:
            for containers in _CONTAINER_LISTS:
                if isinstance(node.get(containers), list):
                    node[containers] = _walk(node[containers], kind, containers)


def _walk(value: Any, kind: str | None, key: str | None = None) -> Any:
    # Hot path (every field of every object): scalars are returned where they stand instead of by a call.
    if type(value) is dict:
        if kind == "Secret" and key in ("data", "stringData"):
            return {k: (v if k in _PUBLIC_SECRET_KEYS else _redact_secret_value(v, key == "data")) for k, v in value.items()}
        if key == "annotations":
            return {k: (REDACTED if k in _SECRET_ANNOTATIONS else v) for k, v in value.items()}
        if "value" in value and _is_env_var(value):
            return {**value, "value": REDACTED} if looks_secret(str(value["name"])) else dict(value)
        return {k: (_walk(v, kind, k) if type(v) in _CONTAINERS else v) for k, v in value.items()}
    if type(value) is list:
        redacted = [_walk(item, kind, key) if type(item) in _CONTAINERS else item for item in value]
        # container args like --azure-client-secret=... carry the value inline
        if key in ("args", "command"):
            redacted = [_redact_flag(item) if isinstance(item, str) else item for item in redacted]
        return redacted
    return value


_CONTAINERS = (dict, list)


def _redact_secret_value(value: Any, encoded: bool) -> Any:
    """A JSON document (external-dns' azure.json) keeps its keys, so checks can tell a client secret is
    configured without anyone seeing it; anything else is replaced whole."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8") if encoded else value
        document = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        return REDACTED
    if not isinstance(document, dict):
        return REDACTED
    shown = {k: (REDACTED if looks_secret(k) or not isinstance(v, bool | int | float | str | None) else v)
             for k, v in document.items()}
    return {"redactedJson": shown}


def _is_env_var(value: dict[str, Any]) -> bool:
    return isinstance(value.get("name"), str) and "value" in value and isinstance(value.get("value"), str)


def _redact_flag(arg: str) -> str:
    flag, sep, _ = arg.partition("=")
    return f"{flag}={REDACTED}" if sep and flag.startswith("-") and looks_secret(flag) else arg


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def redact_provision(value: Any) -> Any:
    """Provision evidence holds claims, never tokens; should a probe's line or an error body carry a JWT anyway
    (a misbehaving endpoint echoing it), it is cut out wherever it stands."""
    if isinstance(value, dict):
        return {k: redact_provision(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_provision(item) for item in value]
    if isinstance(value, str):
        return _JWT.sub(REDACTED, value)
    return value
