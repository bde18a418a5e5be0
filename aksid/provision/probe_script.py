"""The identity probe: run inside a pod (stdlib only, any Python 3), it asks the instance metadata
endpoint for an ARM token and prints ONE JSON line with the HTTP status and the token's non-secret
claims. It never prints the token, its signature or any header that could carry it.

Shipped as source: the provisioner runs it as `python3 -c <this file>` in the probe image.
"""

import base64
import json
import os
import urllib.error
import urllib.request

IMDS = os.environ.get("AKSID_IMDS_ENDPOINT", "http://169.254.169.254")
PATH = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"
CLAIMS = ("oid", "appid", "tid", "aud", "exp", "xms_mirid")


def claims_of(token):
    """The JWT payload's non-secret claims (the signature is never decoded, kept or printed)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    decoded = json.loads(base64.urlsafe_b64decode(payload.encode()))
    return {name: decoded[name] for name in CLAIMS if name in decoded}


def main():
    request = urllib.request.Request(IMDS + PATH, headers={"Metadata": "true"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            body = json.loads(response.read().decode())
            result = {"status": response.status, "client_id": body.get("client_id"),
                      "claims": claims_of(body.get("access_token", "..."))}
    except urllib.error.HTTPError as exc:
        result = {"status": exc.code, "error": exc.read().decode(errors="replace")[:300]}
    except Exception as exc:  # noqa: BLE001 - the probe reports whatever stopped it, in one line
        result = {"status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
