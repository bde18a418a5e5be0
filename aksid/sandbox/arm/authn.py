"""Who a request to the fake ARM comes from: the sandbox's own bearer token (allowed everything) or a restricted
principal's (each request authorized by its roles, see authz); anything else is ARM's 401 with the challenge
azure-core reads. Tokens are compared in constant time and never logged."""

from __future__ import annotations

import hmac
from typing import Protocol

from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError


class Restricted(Protocol):
    """A principal whose requests are authorized (aksid.sandbox.arm.authz.ArmPrincipal)."""

    token: str
    user: str  # logged with each of its requests

    def authorize(self, request: ArmRequest) -> None: ...


def authenticate(authorization: str | None, token: str, tenant: str,
                 principals: tuple[Restricted, ...] = ()) -> Restricted | None:
    """None for the sandbox's own token (allowed everything); the principal a restricted token belongs to."""
    if not authorization:
        raise _unauthenticated(
            tenant, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthenticated(
            tenant, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            "The authentication failed because of an invalid 'Authorization' header.",
        )
    offered = presented.strip().encode()
    if hmac.compare_digest(offered, token.encode()):
        return None
    for principal in principals:
        if hmac.compare_digest(offered, principal.token.encode()):
            return principal
    invalid = "The access token is invalid."
    raise _unauthenticated(tenant, "InvalidAuthenticationToken", invalid, invalid)


def restricted_user(authorization: str | None, principals: tuple[Restricted, ...]) -> str | None:
    """The user of the restricted principal a request came from, for the request log."""
    offered = (authorization or "").strip().partition(" ")[2].strip().encode()
    return next((p.user for p in principals if offered and hmac.compare_digest(offered, p.token.encode())), None)


def _unauthenticated(tenant: str, code: str, message: str, description: str) -> ArmError:
    # error="invalid_token" (not "insufficient_claims") makes azure-core's challenge policy give up
    # at once and surface the 401 instead of asking the credential again.
    challenge = (
        f'Bearer authorization_uri="https://login.microsoftonline.com/{tenant}", '
        f'error="invalid_token", error_description="{description}"'
    )
    return ArmError(401, code, message, {"WWW-Authenticate": challenge})
