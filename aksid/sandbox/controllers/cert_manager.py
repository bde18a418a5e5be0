"""cert-manager's ingress-shim and ACME issuer: an annotated Ingress gets a Certificate, a real DNS-01 issuance
from the pebble its ClusterIssuer names (challenge TXT through knot), the Secret, and nginx serving the host.

The issuance fails the way cert-manager's does when the state says so: the issuer is missing, its azureDNS
solver names another zone, or the identity the cert-manager pods are bound to may not write the zone; the
Certificate then stays not Ready, with the cause in its Issuing condition.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from pathlib import Path
from typing import Any

from aksid.arm_ids import same_id
from aksid.sandbox.acme_client import AcmeError, issue_certificate
from aksid.sandbox.controllers import cert_manager_challenges as challenges
from aksid.sandbox.controllers import edge_hosts
from aksid.sandbox.controllers.identities import arm_of_type, can_write_zone, workload_identity
from aksid.sandbox.controllers.world import World
from aksid.sandbox.pebble import AcmeCA

ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"


class IssuanceFailed(Exception):
    """Why cert-manager could not issue; the text goes into the Certificate's Issuing condition."""


class PresentFailed(IssuanceFailed):
    """The DNS-01 solver could not present the challenge record: the Challenge's reason, retried by cert-manager."""

    def __init__(self, solver: dict[str, Any], reason: str) -> None:
        super().__init__(reason)
        self.solver, self.reason = solver, reason


def reconcile(world: World, ingresses: list[dict[str, Any]]) -> None:
    """Certificates for annotated Ingresses created through the API; nginx stops serving hosts whose Certificate is gone."""
    for ingress in ingresses:
        issuer = (ingress["metadata"].get("annotations") or {}).get(ISSUER_ANNOTATION)
        for tls in (ingress.get("spec") or {}).get("tls") or []:
            if issuer and tls.get("secretName") and tls.get("hosts"):
                _ensure_certificate(world, ingress, issuer, tls["secretName"], list(tls["hosts"]))
    nginx = world.endpoints.nginx if world.endpoints else None
    if nginx:
        # Served hosts first, then the Ready Certificates: an issuance (another thread) marks its Certificate
        # Ready before it adds the host, so a host listed here is in `wanted` below unless its Certificate is
        # gone. In the other order a host added between the two reads was removed and never served again.
        served = edge_hosts.served_hosts(nginx)
        wanted = {h for c in world.kube.list_kind("cert-manager.io", "Certificate") for h in (c.get("spec") or {}).get(
            "dnsNames") or [] if _ready(c)}
        for host in served:
            if host not in wanted:
                edge_hosts.remove_host(nginx, host)


def _ready(certificate: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (certificate.get("status") or {}).get("conditions") or [])


def _ensure_certificate(world: World, ingress: dict[str, Any], issuer: str, secret: str, hosts: list[str]) -> None:
    namespace = ingress["metadata"]["namespace"]
    if world.kube.get("cert-manager.io", "Certificate", namespace, secret) is not None:
        return
    certificate = {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": secret, "namespace": namespace, "ownerReferences": [{
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress["metadata"]["name"],
            "uid": ingress["metadata"].get("uid"), "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"secretName": secret, "dnsNames": hosts, "usages": ["digital signature", "key encipherment"],
                 "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}},
        "status": _conditions("False", "DoesNotExist", "Issuing certificate as Secret does not exist",
                              issuing=("True", "DoesNotExist", "Issuing certificate as Secret does not exist")),
    }
    world.kube.put(certificate)
    threading.Thread(target=_issue, args=(world, certificate), daemon=True, name=f"cert-manager-{secret}").start()


def _issue(world: World, certificate: dict[str, Any]) -> None:
    namespace, name = certificate["metadata"]["namespace"], certificate["metadata"]["name"]
    try:
        host = certificate["spec"]["dnsNames"][0]
        ca, zone, email = _acme_for(world, certificate["spec"]["issuerRef"]["name"], host)
        assert world.endpoints is not None
        issued = issue_certificate(ca, host, dns_servers=world.endpoints.dns_servers, update_key=world.endpoints.update_key,
                                   zone=zone, email=email)
    except PresentFailed as exc:  # cert-manager keeps the Order and retries the Challenge: the Certificate is Issuing
        challenges.present_failed(world, certificate, exc.solver, exc.reason)
        return
    except (IssuanceFailed, AcmeError) as exc:
        _update(world, namespace, name, _conditions(
            "False", "DoesNotExist", "Issuing certificate as Secret does not exist",
            issuing=("False", "Failed", f"The certificate request has failed to complete and will be retried: {exc}"),
            failed=1))
        return
    _store(world, certificate, issued.chain_pem, issued.key_pem)


def _acme_for(world: World, issuer_name: str, certificate_host: str) -> tuple[AcmeCA, str, str]:
    """The pebble, zone and e-mail of a ClusterIssuer, once its solver and the identity behind it are usable."""
    issuer = world.kube.get("cert-manager.io", "ClusterIssuer", None, issuer_name)
    if issuer is None:
        raise IssuanceFailed(f'Referenced "ClusterIssuer" not found: clusterissuer.cert-manager.io "{issuer_name}" not found')
    acme = (issuer.get("spec") or {}).get("acme") or {}
    solver = next((((s.get("dns01") or {}).get("azureDNS")) for s in acme.get("solvers") or []
                   if (s.get("dns01") or {}).get("azureDNS")), None)
    if solver is None:
        raise IssuanceFailed(f"ClusterIssuer {issuer_name} has no azureDNS DNS-01 solver")
    zone = next((z for z in arm_of_type(world, "Microsoft.Network/dnszones")
                 if same_id(z["id"], f"/subscriptions/{solver.get('subscriptionID')}/resourceGroups/"
                                     f"{solver.get('resourceGroupName')}/providers/Microsoft.Network/dnszones/"
                                     f"{solver.get('hostedZoneName')}")), None)
    if zone is None:
        raise IssuanceFailed(f"azure.dns: the zone {solver.get('hostedZoneName')} in resource group "
                             f"{solver.get('resourceGroupName')} was not found (ResourceNotFound)")
    identity = _solver_identity(world)
    if identity is None:
        raise IssuanceFailed("AuthorizationFailed: no identity (NMI or Entra ID refused the token) may write the zone "
                             f"'{zone['id']}'")
    if not can_write_zone(world, identity, zone["id"]):
        raise PresentFailed(solver, challenges.txt_write_denied(identity, zone, certificate_host))
    ca = _pebble(world, str(acme.get("server", "")))
    return ca, str(zone["name"]), str(acme.get("email") or f"admin@{zone['name']}")


def _solver_identity(world: World) -> dict[str, Any] | None:
    for deployment in world.kube.list_kind("apps", "Deployment"):
        if deployment["metadata"]["name"] == "cert-manager":
            return workload_identity(world, deployment["metadata"]["namespace"], "cert-manager")
    return None


def _pebble(world: World, server: str) -> AcmeCA:
    assert world.endpoints is not None
    for ca in world.endpoints.cas.values():
        if ca["directory_url"] == server:
            return AcmeCA(int(ca["pid"]), ca["directory_url"], Path(ca["https_ca_bundle"]), ca["roots_pem"],
                          ca.get("management_url", ""))
    raise IssuanceFailed(f"Failed to register ACME account: {server} is not reachable from the cluster")


def _store(world: World, certificate: dict[str, Any], chain_pem: str, key_pem: str) -> None:
    from cryptography import x509

    namespace, name = certificate["metadata"]["namespace"], certificate["metadata"]["name"]
    leaf = x509.load_pem_x509_certificate(chain_pem.encode())
    world.kube.put({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": certificate["spec"]["secretName"], "namespace": namespace, "annotations": {
                        "cert-manager.io/certificate-name": name,
                        "cert-manager.io/issuer-name": certificate["spec"]["issuerRef"]["name"],
                        "cert-manager.io/issuer-kind": "ClusterIssuer"}},
                    "data": {"tls.crt": _b64(chain_pem), "tls.key": _b64(key_pem)}})
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    times = {"notBefore": _stamp(leaf.not_valid_before_utc), "notAfter": _stamp(leaf.not_valid_after_utc),
             "renewalTime": _stamp(leaf.not_valid_before_utc + lifetime * 2 / 3), "revision": 1}
    _update(world, namespace, name, {**_conditions("True", "Ready", "Certificate is up to date and has not expired"),
                                     **times})
    nginx = world.endpoints.nginx if world.endpoints else None
    if nginx:
        for host in certificate["spec"]["dnsNames"]:
            edge_hosts.add_host(nginx, host, chain_pem, key_pem)


def _update(world: World, namespace: str, name: str, status: dict[str, Any]) -> None:
    current = world.kube.get("cert-manager.io", "Certificate", namespace, name)
    if current is not None:  # deleted meanwhile (the run's namespace went): nothing to report
        world.kube.put({**current, "status": status})


def _conditions(ready: str, reason: str, message: str, issuing: tuple[str, str, str] | None = None,
                failed: int = 0) -> dict[str, Any]:
    now = _stamp(dt.datetime.now(dt.UTC))
    conditions = [{"type": "Ready", "status": ready, "reason": reason, "message": message, "lastTransitionTime": now,
                   "observedGeneration": 1}]
    if issuing is not None:
        conditions.append({"type": "Issuing", "status": issuing[0], "reason": issuing[1], "message": issuing[2],
                           "lastTransitionTime": now, "observedGeneration": 1})
    return {"conditions": conditions, **({"failedIssuanceAttempts": failed} if failed else {})}


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
