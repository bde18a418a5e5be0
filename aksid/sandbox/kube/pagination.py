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


def page_request(resource: Resource, query: dict[str, str]) -> tuple[tuple[str, str] | None, int]:
    """Where a page starts (after this position, from `continue`; None: at the start) and its limit (0: none).
    400 for a malformed token (checked first, as before) or limit."""
    token = query.get("continue")
    after = _decode_continue(resource, token) if token else None
    return after, _parse_limit(query.get("limit"))


def list_meta(resource: Resource, revision: str, last: tuple[str, str] | None, more: bool, remaining: int,
              filtered: bool) -> KubeObject:
    """A page's ListMeta: a continue token after `last` when `more` matching items follow."""
    meta: KubeObject = {"resourceVersion": revision}
    if more and last is not None:
        meta["continue"] = _encode_continue(resource, last, revision)
        if not filtered:
            # As upstream: the count is only known (and only reported) when no selector filtered the list.
            meta["remainingItemCount"] = remaining
    return meta


def paginate(resource: Resource, items: list[KubeObject], query: dict[str, str], revision: str,
             filtered: bool) -> tuple[list[KubeObject], KubeObject]:
    """One page and its ListMeta. Continue tokens are positions (namespace, name), stable across writes."""
    after, limit = page_request(resource, query)
    if after is not None:
        items = [obj for obj in items if _sort_key(obj) > after]
    if limit and len(items) > limit:
        page = items[:limit]
        return page, list_meta(resource, revision, _sort_key(page[-1]), True, len(items) - limit, filtered)
    return items, list_meta(resource, revision, None, False, 0, filtered)


def encode_list(resource: Resource, meta: KubeObject, items: list[bytes]) -> bytes:
    """A list document whose items are already encoded: byte for byte what `json.dumps` of the whole list
    (separators "," and ":", then a newline) would give, without encoding any item again."""
    head = json.dumps({"kind": resource.list_kind_name, "apiVersion": resource.group_version, "metadata": meta},
                      separators=(",", ":"))
    return b"".join((head[:-1].encode(), b',"items":[', b",".join(items), b"]}\n"))
