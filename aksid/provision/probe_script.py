"""The identity probe: run inside a pod (stdlib only, any Python 3), it asks for an ARM token and prints ONE JSON
line with the HTTP status and the token's non-secret claims. It never prints a token (the ARM token, or the
ServiceAccount token it exchanges), a signature or any header that could carry one.

Pod identity (no argument): it asks the instance metadata endpoint, which NMI answers; with `ask-as CLIENT_ID` it also
asks for that identity by its client id (what any pod can add to its request).
Workload identity (argument `workload-identity`): it reads the projected ServiceAccount token the webhook mounted
(AZURE_FEDERATED_TOKEN_FILE) and exchanges it at Entra ID (AZURE_AUTHORITY_HOST, AZURE_TENANT_ID) for a token of
AZURE_CLIENT_ID, as the Azure SDKs' WorkloadIdentityCredential does; it also prints the `iss`, `sub` and `aud` of
the ServiceAccount token it presented.

Shipped as source: the provisioner runs it as `python3 -c <this file> [workload-identity]` in the probe image.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

IMDS = os.environ.get("AKSID_IMDS_ENDPOINT", "http://169.254.169.254")
PATH = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"
CLAIMS = ("oid", "appid", "tid", "aud", "exp", "xms_mirid")
ASSERTION_CLAIMS = ("iss", "sub", "aud")
ARM_SCOPE = "https://management.azure.com/.default"
WI_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST")


def claims_of(token, names=CLAIMS):
    """The JWT payload's named claims (the signature is never decoded, kept or printed)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    decoded = json.loads(base64.urlsafe_b64decode(payload.encode()))
    return {name: decoded[name] for name in names if name in decoded}


def imds_token(client_id=None):
    """One token request to 169.254.169.254, as the pod's SDK would make it (with a client id: for that identity).
    `server` is who answered: IMDS names itself in its Server header, NMI does not."""
    url = IMDS + PATH + ("&client_id=" + urllib.parse.quote(client_id) if client_id else "")
    request = urllib.request.Request(url, headers={"Metadata": "true"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            body = json.loads(response.read().decode())
            return {"status": response.status, "client_id": body.get("client_id"), "server": response.headers.get(
                "Server"), "claims": claims_of(body.get("access_token", "..."))}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "server": exc.headers.get("Server"),
                "error": exc.read().decode(errors="replace")[:300]}
    except OSError as exc:  # no answer at all (AKS's IMDS restriction drops it; refused; timed out): no token either
        return {"status": None, "error": (type(exc).__name__ + ": " + str(exc))[:300]}


def imds_probe(arguments):
    """Pod identity: ask as the pod's SDK would; with `ask-as CLIENT_ID`, also ask for that identity, as an attacker
    would (IMDS itself hands it to anyone who names it when NMI is not in the way)."""
    result = imds_token()
    if arguments[:1] == ["ask-as"] and len(arguments) > 1:
        result["asked_as"] = dict(imds_token(arguments[1]), asks_client_id=arguments[1])
    return result


def exchanged_token():
    present = [name for name in WI_VARIABLES if os.environ.get(name)]
    missing = [name for name in WI_VARIABLES if name not in present]
    if "AZURE_FEDERATED_TOKEN_FILE" in missing or "AZURE_AUTHORITY_HOST" in missing:
        return {"status": None, "variables": present,
                "error": "no " + " or ".join(missing) + " in the environment: the workload identity webhook did "
                         "not mutate this pod"}
    with open(os.environ["AZURE_FEDERATED_TOKEN_FILE"], encoding="utf-8") as handle:
        assertion = handle.read().strip()
    result = {"status": None, "variables": present, "client_id": os.environ.get("AZURE_CLIENT_ID"),
              "assertion": claims_of(assertion, ASSERTION_CLAIMS)}
    authority = os.environ.get("AKSID_AUTHORITY_ENDPOINT") or os.environ["AZURE_AUTHORITY_HOST"]
    url = authority.rstrip("/") + "/" + os.environ.get("AZURE_TENANT_ID", "") + "/oauth2/v2.0/token"
    form = urllib.parse.urlencode({
        "client_id": os.environ.get("AZURE_CLIENT_ID", ""), "scope": ARM_SCOPE, "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}).encode()
    request = urllib.request.Request(url, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            body = json.loads(response.read().decode())
            result.update(status=response.status, claims=claims_of(body.get("access_token", "...")))
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            text = json.loads(text).get("error_description") or text
        except ValueError:
            pass
        result.update(status=exc.code, error=text[:400])
    return result


def main():
    try:
        result = exchanged_token() if sys.argv[1:] == ["workload-identity"] else imds_probe(sys.argv[1:])
    except urllib.error.HTTPError as exc:
        result = {"status": exc.code, "error": exc.read().decode(errors="replace")[:300]}
    except Exception as exc:  # noqa: BLE001 - the probe reports whatever stopped it, in one line
        result = {"status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
