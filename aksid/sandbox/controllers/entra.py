"""Entra ID's token endpoint for workload identity: a client-credentials request whose client assertion is a
projected ServiceAccount token, judged as Entra judges it (azure-workload-identity's token exchange).

`POST /<tenant>/oauth2/v2.0/token` with `client_id` (the identity's client id), `client_assertion` (the
ServiceAccount token), `client_assertion_type` jwt-bearer, `grant_type` client_credentials and `scope`
(`https://management.azure.com/.default`). The identity must be in that tenant and hold a federated credential
whose issuer and subject equal the assertion's `iss` and `sub` exactly and whose audiences include one of its
`aud`; else Entra answers 400 AADSTS70021 naming the assertion's issuer, subject and audience. The sandbox's
kubelet signs the assertions it projects, so the signature (checked by Entra against the issuer's JWKS) is not
modelled: an assertion here always comes from this cluster's issuer, or says which issuer it claims.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aksid.sandbox.controllers.identities import identity_by_client_id, managed_cluster, trusting_credential
from aksid.sandbox.controllers.world import World

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _refusal(code: int, description: str, error: str = "invalid_request") -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code]}


def token(world: World, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one token request to the tenant's v2.0 endpoint."""
    if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
        return _refusal(900144, "The request body must contain the following parameter: 'grant_type' "
                                "client_credentials with a client_assertion of type jwt-bearer.")
    client_id = form.get("client_id") or ""
    if not client_id:
        return _refusal(900144, "The request body must contain the following parameter: 'client_id'.")
    identity = identity_by_client_id(world, client_id)
    if identity is None or str((identity.get("properties") or {}).get("tenantId", "")).lower() != tenant.lower():
        return _refusal(700016, f"Application with identifier '{client_id}' was not found in the directory "
                                f"'{tenant}'.", "unauthorized_client")
    try:
        assertion = _payload(form.get("client_assertion") or "")
    except ValueError:
        return _refusal(50027, "JWT token is invalid or malformed.")
    audiences = assertion.get("aud") if isinstance(assertion.get("aud"), list) else [assertion.get("aud")]
    if int(assertion.get("exp") or 0) < time.time():
        return _refusal(700024, "Client assertion is not within its valid time range.")
    issuer, subject = str(assertion.get("iss")), str(assertion.get("sub"))
    if trusting_credential(world, identity, issuer, subject, [str(a) for a in audiences]) is None:
        return _refusal(70021, "No matching federated identity record found for presented assertion. Assertion "
                               f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
                               f"'{','.join(str(a) for a in audiences)}'.", "invalid_client")
    scope = form.get("scope") or ""
    if not scope.endswith("/.default"):
        return _refusal(1002012, f"The provided value for scope {scope} is not valid. Client credential flows must "
                                 "have a scope value with /.default suffixed to the resource identifier.")
    return 200, _access_token(world, identity, scope.removesuffix("/.default"))


def _payload(jwt: str) -> dict[str, Any]:
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(segment.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a JWT") from exc
    if not isinstance(decoded, dict):
        raise ValueError("not a JWT")
    return decoded


def _access_token(world: World, identity: dict[str, Any], resource: str) -> dict[str, Any]:
    """A v1 access token for the resource (ARM accepts v1), naming the managed identity; the signature is a
    placeholder, never checked."""
    props = identity.get("properties") or {}
    now = int(time.time())
    claims = {"aud": resource, "iss": f"https://sts.windows.net/{props.get('tenantId')}/", "iat": now, "nbf": now,
              "exp": now + 86400, "oid": props.get("principalId"), "sub": props.get("principalId"),
              "appid": props.get("clientId"), "tid": props.get("tenantId"), "xms_mirid": identity.get("id"),
              "idtyp": "app", "xms_az_rid": (managed_cluster(world) or {}).get("id")}
    jwt = ".".join(_b64(part) for part in ({"typ": "JWT", "alg": "RS256"}, claims)) + ".c2FuZGJveA"
    return {"token_type": "Bearer", "expires_in": 86399, "ext_expires_in": 86399, "access_token": jwt}


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
