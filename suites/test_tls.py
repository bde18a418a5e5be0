"""TLS: what a browser receives at https://hello.<domain> — a trusted chain, for that host, the one cert-manager issued.

Evidence: the handshake with the demo host at the address its A record gives (`snapshot.tls`: the chain as
served, the protocol, whether TLS 1.0/1.1 still complete, the plain-HTTP answer, the page), and the cluster's
Ingress, Certificate, CertificateRequests and (with --aksid-read-secrets) the Secret (`snapshot.kube`).
Times are judged at collection, so a replayed snapshot gives the answer it gave live.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from aksid.checks import check
from aksid.config import LETSENCRYPT_STAGING, Target
from aksid.modes import LIVE_MODES
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot
from aksid.trust import (
    TrustStoreError,
    dns_names,
    load_store,
    looks_like_staging,
    parse_chain,
    top_issuer,
    validity_time,
    verify_chain,
)

CERT_MANAGER = "cert-manager.io/v1"
ACME = "acme.cert-manager.io/v1"
DEMO_TITLE = "Hello Kubernetes!"
REDIRECTS = (301, 302, 307, 308)
ISSUER_NAME_ANNOTATION = "cert-manager.io/issuer-name"


def _collected(snapshot: Snapshot) -> dt.datetime:
    return dt.datetime.fromisoformat(snapshot.document["created"])


def served_host(_snapshot: Snapshot, target: Target) -> dict[str, str]:
    return {f"host/{target.demo_fqdn}": target.demo_fqdn}


def _chain(snapshot: Snapshot) -> list[x509.Certificate]:
    handshake = snapshot.tls.value("handshake")
    if not handshake.get("chain"):
        raise EvidenceUnavailable("the server sent no certificate")
    try:
        return parse_chain(handshake["chain"])
    except ValueError as exc:
        raise EvidenceUnavailable(f"the served certificates cannot be parsed: {exc}") from None


# -- cert-manager's view of the demo certificate -------------------------------------------------

def _demo_tls(snapshot: Snapshot, target: Target) -> tuple[str, str] | None:
    """(namespace, secretName) of the Ingress TLS entry for the demo host; cert-manager names the Certificate alike."""
    for ingress in snapshot.kube.list("networking.k8s.io/v1", "Ingress"):
        for tls in (ingress.get("spec") or {}).get("tls") or []:
            if target.demo_fqdn in (tls.get("hosts") or []) and tls.get("secretName"):
                return ingress["metadata"]["namespace"], tls["secretName"]
    return None


def _of_current_revision(snapshot: Snapshot, namespace: str, name: str, api_version: str, kind: str) -> dict[str, Any] | None:
    """The CertificateRequest (or ACME Order) of the Certificate's current revision (cert-manager annotates them)."""
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", namespace, name)
    revision = ((certificate or {}).get("status") or {}).get("revision")
    if certificate is None or revision is None:
        return None
    for obj in snapshot.kube.list(api_version, kind, namespace):
        annotations = obj["metadata"].get("annotations") or {}
        if (annotations.get("cert-manager.io/certificate-name") == name
                and annotations.get("cert-manager.io/certificate-revision") == str(revision)):
            return obj
    return None


def _current_request(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    return _of_current_revision(snapshot, namespace, name, CERT_MANAGER, "CertificateRequest")


def _secret(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret when Secrets were read (--aksid-read-secrets) and listed; None otherwise."""
    entry = snapshot.kube.entry("v1", "Secret")
    if entry["status"] != "ok":
        return None
    return snapshot.kube.get("v1", "Secret", namespace, name)


def _pem(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def _first_certificate(pem: str) -> x509.Certificate | None:
    try:
        return parse_chain([pem])[0] if pem else None
    except (ValueError, IndexError):
        return None


def _issued_leaf(snapshot: Snapshot, namespace: str, name: str) -> tuple[x509.Certificate | None, str]:
    """(the leaf cert-manager issued, where it was read): the Secret's tls.crt when Secrets were read, else the
    current CertificateRequest's status.certificate. (None, source) when that source holds no certificate."""
    secret = _secret(snapshot, namespace, name)
    if secret is not None:
        return _first_certificate(_pem((secret.get("data") or {}).get("tls.crt") or "")), f"Secret {namespace}/{name} (tls.crt)"
    request = _current_request(snapshot, namespace, name)
    if request is None:
        raise EvidenceUnavailable(
            f"no CertificateRequest of the current revision of Certificate {namespace}/{name} (and Secrets were not "
            "read: --aksid-read-secrets), so there is no issued certificate to compare")
    source = f"CertificateRequest {namespace}/{request['metadata']['name']} (status.certificate)"
    return _first_certificate(_pem((request.get("status") or {}).get("certificate") or "")), source


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _issued_by_staging(snapshot: Snapshot, target: Target) -> bool:
    """Whether cert-manager's records say staging issued the demo certificate: the Secret's issuer annotation or
    the CertificateRequest's issuerRef names a staging issuer, or the ACME Order was placed on the staging server."""
    try:
        found = _demo_tls(snapshot, target)
        if found is None:
            return False
        secret = _secret(snapshot, *found)
        request = _current_request(snapshot, *found)
        order = _of_current_revision(snapshot, *found, ACME, "Order")
    except (EvidenceUnavailable, EvidenceNotCollected):
        return False
    names = [((secret or {}).get("metadata", {}).get("annotations") or {}).get(ISSUER_NAME_ANNOTATION) or "",
             (((request or {}).get("spec") or {}).get("issuerRef") or {}).get("name") or ""]
    order_url = str(((order or {}).get("status") or {}).get("url") or "")
    staging_servers = {_origin(target.acme_staging_server), _origin(LETSENCRYPT_STAGING)}
    return any(name.endswith("staging") for name in names) or (bool(order_url) and _origin(order_url) in staging_servers)


# -- TLS-001 ------------------------------------------------------------------------------------

@check(
    "TLS-001", "the demo host's chain validates to a root in the public trust store", "critical",
    remediation="Issue from a publicly trusted CA: set ACME_ISSUER=letsencrypt-prod and point the Ingress's "
                "cert-manager.io/cluster-issuer at it (then `cmctl renew`); make the server send the full chain "
                "(cert-manager's tls.crt: leaf and intermediates).",
    subjects=served_host,
    modes=LIVE_MODES,
)
def test_chain_is_publicly_trusted(subject: str, snapshot: Snapshot, target: Target) -> None:
    chain = _chain(snapshot)
    try:
        store = load_store(target.trust_store)
    except TrustStoreError as exc:
        raise EvidenceUnavailable(str(exc)) from None
    path, why = verify_chain(chain, store, validity_time(chain[0], _collected(snapshot)))
    if path is not None:
        return
    served = f"{len(chain)} certificates" if len(chain) > 1 else "its leaf only, without intermediates: see TLS-003"
    staging = looks_like_staging(chain) or _issued_by_staging(snapshot, target) or target.acme_issuer.endswith("staging")
    hint = ("; it is a Let's Encrypt staging chain, which no browser trusts: switch ACME_ISSUER to letsencrypt-prod"
            " and re-issue the certificate" if staging else "")
    raise AssertionError(
        f"the chain served by {subject} ({served}) ends at '{top_issuer(chain)}', which does not lead to a root in "
        f"the trust store {store.name} ({why}){hint}")


# -- TLS-002 ------------------------------------------------------------------------------------

def _covers(leaf: x509.Certificate, host: str) -> bool:
    """RFC 6125 as browsers apply it: subjectAltName DNS names only, a wildcard covers exactly one label."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in dns_names(leaf)):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


@check(
    "TLS-002", "the certificate covers the host name and is inside its validity window", "critical",
    remediation="Let cert-manager (re)issue for the Ingress host: check the Ingress tls.hosts and the Certificate's "
                "dnsNames, then `cmctl renew`; a leaf this close to expiry means renewals are failing (see ISS-004).",
    subjects=served_host,
    modes=LIVE_MODES,
)
def test_certificate_covers_host_and_is_current(subject: str, snapshot: Snapshot, target: Target) -> None:
    leaf = _chain(snapshot)[0]
    names = ", ".join(dns_names(leaf)) or "no DNS name"
    assert _covers(leaf, subject), (
        f"the certificate served for {subject} is for {names} ({leaf.subject.rfc4514_string()}) and does not cover "
        f"{subject}")
    collected = _collected(snapshot)
    assert leaf.not_valid_before_utc <= collected, (
        f"the certificate for {subject} is not valid before {leaf.not_valid_before_utc} (collected {collected})")
    assert collected <= leaf.not_valid_after_utc, (
        f"the certificate for {subject} expired at {leaf.not_valid_after_utc} (collected {collected})")
    remaining = leaf.not_valid_after_utc - collected
    assert remaining >= dt.timedelta(days=target.tls_min_days_count), (
        f"the certificate for {subject} expires in {remaining.days} day(s) ({leaf.not_valid_after_utc}), less than the "
        f"required {target.tls_min_days_count} (tls_min_days)")


# -- TLS-003 ------------------------------------------------------------------------------------

@check(
    "TLS-003", "the served leaf is the one cert-manager issued; the server sends the intermediates", "high",
    remediation="Point the Ingress's tls.secretName at the Certificate's Secret and let ingress-nginx reload; "
                "serve tls.crt as cert-manager wrote it (leaf + intermediates), never a hand-made bundle.",
    subjects=served_host,
    modes=LIVE_MODES,
)
def test_served_leaf_is_the_issued_one(subject: str, snapshot: Snapshot, target: Target) -> None:
    chain = _chain(snapshot)
    assert len(chain) > 1 or chain[0].issuer == chain[0].subject, (
        f"{subject} serves its leaf without intermediates (issuer '{chain[0].issuer.rfc4514_string()}'): clients "
        "that do not fetch them (AIA) cannot build the chain")
    found = _demo_tls(snapshot, target)
    if found is None:
        raise EvidenceUnavailable(f"no Ingress has TLS for {subject}, so there is no issued certificate to compare")
    issued, source = _issued_leaf(snapshot, *found)
    assert issued is not None, f"{source} holds no certificate, so {subject} cannot be serving cert-manager's"
    served = chain[0]
    assert issued == served, (
        f"{subject} serves serial {served.serial_number:x} (expires {served.not_valid_after_utc}), but {source} "
        f"holds serial {issued.serial_number:x} (expires {issued.not_valid_after_utc}): the Ingress serves another "
        "certificate")


# -- TLS-004 ------------------------------------------------------------------------------------

def edge_behaviours(_snapshot: Snapshot, _target: Target) -> dict[str, str]:
    return {"protocols": "protocols", "http-redirect": "redirect", "page": "page"}


@check(
    "TLS-004", "TLS 1.2+ only; http:// redirects to https:// on the same host; the page is the demo app", "medium",
    remediation="Keep ingress-nginx's defaults (ssl-protocols TLSv1.2 TLSv1.3, ssl-redirect true) and the Ingress "
                "backend hello-kubernetes:80.",
    subjects=edge_behaviours,
    modes=LIVE_MODES,
)
def test_edge_behaviour(subject: str, snapshot: Snapshot, target: Target) -> None:
    host = target.demo_fqdn
    if subject == "protocols":
        legacy = snapshot.tls.value("legacy")
        accepted = [name for name, yes in legacy.items() if yes]
        assert not accepted, f"{host} still completes {' and '.join(accepted)} handshakes; only TLS 1.2 and 1.3 are safe"
        protocol = snapshot.tls.value("handshake").get("protocol")
        assert protocol in ("TLSv1.2", "TLSv1.3"), f"{host} negotiated {protocol}"
    elif subject == "redirect":
        answer: dict[str, Any] = snapshot.tls.value("http")
        location = str(answer.get("location") or "")
        assert answer.get("status") in REDIRECTS, (
            f"http://{host}/ answered {answer.get('status')} instead of redirecting to https://{host}/")
        assert location.lower().rstrip("/") == f"https://{host}" or location.lower().startswith(f"https://{host}/"), (
            f"http://{host}/ redirects to {location!r}, not to https://{host}/")
    else:
        page = snapshot.tls.value("page")
        assert page.get("status") == 200 and DEMO_TITLE in (page.get("body") or ""), (
            f"https://{host}/ answered {page.get('status')} without '{DEMO_TITLE}': the Ingress does not reach "
            "hello-kubernetes")
