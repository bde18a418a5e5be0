"""ARM's paging: `{"value": [...], "nextLink": ...}` at the store's page size, the link absolute and back to this
server (never to the request's Host: the SDKs send the token wherever a nextLink points)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse


def paged(request: ArmRequest, items: list[dict[str, Any]], page_size: int) -> ArmResponse:
    token = request.param("$skiptoken") or "0"
    if not token.isdigit():
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.")
    start = int(token)
    body: dict[str, Any] = {"value": items[start : start + page_size]}
    if start + page_size < len(items):
        body["nextLink"] = _next_link(request, start + page_size)
    return ArmResponse(200, body)


def _next_link(request: ArmRequest, start: int) -> str:
    # Keep every parameter ($filter above all): the SDKs replay the link, only swapping api-version.
    params = [(name, value) for name, value in request.query if name.lower() != "$skiptoken"]
    params.append(("$skiptoken", str(start)))
    path = re.sub("/{2,}", "/", request.path)
    return f"{request.base_url}{path}?{urlencode(params, quote_via=quote, safe='')}"
