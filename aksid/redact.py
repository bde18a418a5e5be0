"""Strip secrets from evidence before it is stored or reported."""

from __future__ import annotations

import base64
import binascii
import copy
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
# probes' and hooks' exec commands): only those are walked; the rest (status, volumes, affinity) is left as is.
_POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",), "Deployment": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_NO_POD_SPEC = frozenset({"Namespace", "Node", "Service", "ServiceAccount", "Ingress", "IngressClass"})
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def redact_kube_object(obj: dict[str, Any], owned: bool = False) -> dict[str, Any]:
    """`obj` with secret material replaced, and without `managedFields` (kubectl hides them too: they repeat the
    object's field names and cost a third of a pod's size). A copy, the input unchanged; `owned`: the caller has just
    parsed `obj` and gives it up, so it is redacted where it stands (no copy: half the time on a large cluster)."""
    if not owned:
        obj = copy.deepcopy(obj)
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    path = _POD_SPECS.get(str(kind))
    if path is None and kind not in _NO_POD_SPEC:
        _walk(obj, kind)  # Secrets, custom resources...: every field
        return obj
    _walk(metadata, kind, "metadata")
    if path is not None:
        _redact_pod_spec(obj, path, kind)
    return obj


def _redact_pod_spec(obj: dict[str, Any], path: tuple[str, ...], kind: str | None) -> None:
    """Down to the pod spec: its template's metadata and its containers are walked."""
    node = obj
    for depth, key in enumerate(path):
        child = node.get(key)
        if not isinstance(child, dict):
            return
        if key == "template":
            _walk(child.get("metadata"), kind, "metadata")
        node = child
        if depth == len(path) - 1:
            for containers in _CONTAINER_LISTS:
                _walk(node.get(containers), kind, containers)


def _walk(value: Any, kind: str | None, key: str | None = None) -> None:
    """Replace secret material inside `value` where it stands."""
    # Hot path (every field of every walked object): scalars are skipped where they stand instead of by a call.
    if type(value) is dict:
        if kind == "Secret" and key in ("data", "stringData"):
            for name, item in value.items():
                if name not in _PUBLIC_SECRET_KEYS:
                    value[name] = _redact_secret_value(item, key == "data")
        elif key == "annotations":
            for name in _SECRET_ANNOTATIONS.intersection(value):
                value[name] = REDACTED
        elif "value" in value and _is_env_var(value):
            if looks_secret(str(value["name"])):
                value["value"] = REDACTED
        else:
            for name, item in value.items():
                if type(item) in _CONTAINERS:
                    _walk(item, kind, name)
    elif type(value) is list:
        for item in value:
            if type(item) in _CONTAINERS:
                _walk(item, kind, key)
        # container args like --azure-client-secret=... carry the value inline
        if key in ("args", "command"):
            value[:] = [_redact_flag(item) if isinstance(item, str) else item for item in value]


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
