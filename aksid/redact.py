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


def redact_kube_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `obj` with secret material replaced; the input is not modified."""
    return _walk(obj, kind=obj.get("kind"))


def _walk(value: Any, kind: str | None, key: str | None = None) -> Any:
    if isinstance(value, dict):
        if kind == "Secret" and key in ("data", "stringData"):
            return {k: (v if k in _PUBLIC_SECRET_KEYS else _redact_secret_value(v, key == "data")) for k, v in value.items()}
        if key == "annotations":
            return {k: (REDACTED if k in _SECRET_ANNOTATIONS else v) for k, v in value.items()}
        if _is_env_var(value):
            return {**value, "value": REDACTED} if looks_secret(str(value["name"])) else dict(value)
        return {k: _walk(v, kind, k) for k, v in value.items()}
    if isinstance(value, list):
        redacted = [_walk(item, kind, key) for item in value]
        # container args like --azure-client-secret=... carry the value inline
        if key in ("args", "command"):
            redacted = [_redact_flag(item) if isinstance(item, str) else item for item in redacted]
        return redacted
    return value


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
