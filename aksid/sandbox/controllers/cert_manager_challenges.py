"""cert-manager's ACME objects while a DNS-01 challenge cannot be presented: the Order, the Challenge, the Event.

As cert-manager (v1.x, pkg/controller/acmechallenges/sync.go) leaves them when the solver's Present fails: the
Challenge stays `state: pending`, `processing: true`, `presented: false`, its `status.reason` the solver's error
(for azureDNS the NormalizedError, aksid.sandbox.controllers.azure_errors), and a Warning Event `PresentError`
"Error presenting challenge: <error>" on it; the Order stays `pending`; the Certificate keeps Issuing=True. The
Challenge is retried with a back-off, so nothing changes until someone grants the right. The objects live in the
Certificate's namespace, owned by it (Certificate → Order → Challenge, as cert-manager's CertificateRequest sits
between the two; one level fewer here), and go with the namespace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from aksid.sandbox.controllers.azure_errors import normalized_error
from aksid.sandbox.controllers.world import World

ACME = "acme.cert-manager.io/v1"


def txt_write_denied(identity: dict[str, Any], zone: dict[str, Any], host: str) -> str:
    """The azureDNS solver's error when ARM refuses the challenge record's PUT (403 AuthorizationFailed)."""
    del identity  # the normalized error drops the body, and with it the client's ids
    record = f"_acme-challenge.{host.rstrip('.')}".lower().removesuffix("." + str(zone["name"]).lower())
    return normalized_error("PUT", f"{zone['id']}/TXT/{record}", "403 Forbidden", "AuthorizationFailed")


def present_failed(world: World, certificate: dict[str, Any], solver: dict[str, Any], reason: str) -> None:
    namespace, name = certificate["metadata"]["namespace"], certificate["metadata"]["name"]
    host = certificate["spec"]["dnsNames"][0]
    issuer = certificate["spec"]["issuerRef"]
    order_name = f"{name}-1-{_hash(name, host)}"
    challenge_name = f"{order_name}-{_hash(order_name, host)}"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    world.kube.put({"apiVersion": ACME, "kind": "Order", "metadata": {
        "name": order_name, "namespace": namespace, "annotations": {"cert-manager.io/certificate-name": name,
                                                                    "cert-manager.io/certificate-revision": "1"},
        "ownerReferences": [_owner(certificate, "cert-manager.io/v1")]},
        "spec": {"dnsNames": [host], "issuerRef": issuer, "request": ""},
        "status": {"state": "pending", "url": f"https://acme.invalid/order/{order_name}"}})
    order = world.kube.get("acme.cert-manager.io", "Order", namespace, order_name) or {"metadata": {}}
    world.kube.put({"apiVersion": ACME, "kind": "Challenge", "metadata": {
        "name": challenge_name, "namespace": namespace, "ownerReferences": [_owner(order, ACME, "Order")]},
        "spec": {"dnsName": host, "issuerRef": issuer, "key": "", "solver": {"dns01": {"azureDNS": solver}},
                 "token": "", "type": "DNS-01", "url": "", "wildcard": False},
        "status": {"presented": False, "processing": True, "reason": reason, "state": "pending"}})
    world.kube.put({"apiVersion": "v1", "kind": "Event", "metadata": {
        "name": f"{challenge_name}.{_hash(challenge_name, now)}", "namespace": namespace},
        "involvedObject": {"apiVersion": ACME, "kind": "Challenge", "name": challenge_name, "namespace": namespace},
        "reason": "PresentError", "message": f"Error presenting challenge: {reason}", "type": "Warning",
        "source": {"component": "cert-manager-challenges"}, "count": 1, "firstTimestamp": now, "lastTimestamp": now})


def _owner(obj: dict[str, Any], api_version: str, kind: str = "Certificate") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": obj["metadata"].get("name"),
            "uid": obj["metadata"].get("uid"), "controller": True, "blockOwnerDeletion": True}


def _hash(*parts: str) -> str:
    """A stable number like the FNV hash cert-manager appends to the names it derives."""
    return str(int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:8], 16))
