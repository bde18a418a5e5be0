"""List pagination: `limit` and `continue`, with tokens that are positions (namespace, name)."""

from __future__ import annotations

import base64
import binascii
import json

from aksid.sandbox.kube.errors import ApiError
from aksid.sandbox.kube.resources import KubeObject, Resource


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
