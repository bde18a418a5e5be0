"""Azure's errors as the controllers' Go SDK prints them, so the sandbox's logs, Events and statuses carry the real text.

ARM's denial is HTTP 403 with the body `{"error": {"code": "AuthorizationFailed", "message": "The client '<client
id>' with object id '<object id>' does not have authorization to perform action '<action>' over scope '<scope>' or
the scope is invalid. If access was recently granted, please refresh your credentials."}}` (the fake ARM's
aksid/sandbox/arm/authz.py answers with the same). The Go SDK's `azcore.ResponseError.Error()`
(sdk/azcore/internal/exported/response_error.go) prints it as the request line, a dashed separator,
`RESPONSE 403: 403 Forbidden`, `ERROR CODE: AuthorizationFailed`, a separator, the body indented by two spaces, a
separator. cert-manager's azureDNS solver (pkg/issuer/acme/dns/azuredns, `NormalizedError`) keeps the first part and
replaces the body with "see logs for more information", so a Challenge's reason stays the same from one try to the
next.
"""

from __future__ import annotations

import json
from typing import Any

SEPARATOR = "-" * 80
ARM = "https://management.azure.com"


def authorization_failed(identity: dict[str, Any] | None, action: str, scope: str) -> dict[str, Any]:
    """ARM's 403 body for `identity` (its client and object ids) asking for `action` on `scope`."""
    props = (identity or {}).get("properties") or {}
    return {"error": {"code": "AuthorizationFailed", "message": (
        f"The client '{props.get('clientId', '')}' with object id '{props.get('principalId', '')}' does not have "
        f"authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was "
        "recently granted, please refresh your credentials.")}}


def response_error(method: str, resource_id: str, status: str, body: dict[str, Any]) -> str:
    """`azcore.ResponseError.Error()` of a request to ARM for `resource_id` answered `status` ("403 Forbidden")."""
    code = str((body.get("error") or {}).get("code") or "")
    return (f"{method} {ARM}{resource_id}\n{SEPARATOR}\nRESPONSE {status.split()[0]}: {status}\n"
            f"ERROR CODE: {code or 'UNAVAILABLE'}\n{SEPARATOR}\n{json.dumps(body, indent=2)}\n{SEPARATOR}\n")


def normalized_error(method: str, resource_id: str, status: str, code: str) -> str:
    """cert-manager's azureDNS `NormalizedError` of the same failure: no body, the same text on every retry."""
    return (f"request error:\n{method} {ARM}{resource_id}\n{SEPARATOR}\nRESPONSE {status}\n"
            f"ERROR CODE: {code}\n{SEPARATOR}\nsee logs for more information")


def logrus_line(moment: str, level: str, message: str) -> str:
    """One line of logrus' text formatter (external-dns' default --log-format=text): a message with spaces or
    newlines is quoted as Go's %q does, so one error is one line."""
    return f'time="{moment}" level={level} msg={json.dumps(message)}\n'
