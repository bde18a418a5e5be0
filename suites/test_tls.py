"""TLS: what a browser receives at https://hello.<domain> — a trusted chain, for that host, the one cert-manager issued.

Evidence: the handshake with the demo host at the address its A record gives (`snapshot.tls`: the chain as
served, the protocol, whether TLS 1.0/1.1 still complete, the plain-HTTP answer, the page), and the cluster's
Ingress, Certificate, CertificateRequests and (with --aksid-read-secrets) the Secret (`snapshot.kube`).
Times are judged at collection, so a replayed snapshot gives the answer it gave live.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from aksid import facts, hostnames
from aksid.checks import check
from aksid.config import LETSENCRYPT_STAGING, Target
from aksid.evidence import Evidence
from aksid.modes import LIVE_MODES
from aksid.recorded_trust import store_for
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot, names
from aksid.trust import (
    TrustStoreError,
    dns_names,
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


def _chain(snapshot: Snapshot, evidence: Evidence | None = None) -> list[x509.Certificate]:
    handshake = snapshot.tls.value("handshake")
    if evidence is not None:
        evidence.tls("handshake", handshake, "address", "port", "server_name")
    if not handshake.get("chain"):
        raise EvidenceUnavailable("the server sent no certificate")
    try:
        chain = parse_chain(handshake["chain"])
    except ValueError as exc:
        raise EvidenceUnavailable(f"the served certificates cannot be parsed: {exc}") from None
    if evidence is not None:
        for index, certificate in enumerate(chain):
            evidence.add("tls handshake", f"chain[{index}]", handshake["chain"][index], note=_describe(certificate))
    return chain


def _describe(certificate: x509.Certificate) -> str:
    """What a reader needs of a certificate kept as its digest: subject, names, issuer, serial, validity."""
    names = ", ".join(dns_names(certificate)) or "no DNS name"
    return (f"subject {certificate.subject.rfc4514_string()}, DNS names {names}, issuer "
            f"{certificate.issuer.rfc4514_string()}, serial {certificate.serial_number:x}, valid "
            f"{certificate.not_valid_before_utc.isoformat()} to {certificate.not_valid_after_utc.isoformat()}")


# -- cert-manager's view of the demo certificate -------------------------------------------------

def _demo_tls(snapshot: Snapshot, target: Target) -> tuple[str, str] | None:
    """(namespace, secretName) of the Ingress TLS entry for the demo host (its hosts list it, or a wildcard covering
    it: `*.<domain>`, exact entries first); cert-manager names the Certificate alike."""
    found = hostnames.tls_entry_for(snapshot.kube.list("networking.k8s.io/v1", "Ingress"), target.demo_fqdn)
    if found is None:
        return None
    ingress, tls = found
    return ingress["metadata"]["namespace"], tls["secretName"]


def _no_tls_for(snapshot: Snapshot, host: str) -> str:
    """Why no Ingress TLS entry is the demo host's: the hosts the entries do list, when there are any."""
    listed = sorted({name for ingress in snapshot.kube.list("networking.k8s.io/v1", "Ingress")
                     for tls in (ingress.get("spec") or {}).get("tls") or [] for name in hostnames.tls_hosts(tls)})
    if not listed:
        return f"no Ingress has TLS for {host}"
    return (f"no Ingress has TLS for {host} (the TLS entries list {', '.join(listed)}; a wildcard covers exactly one "
            "left-most label)")


def _of_current_revision(snapshot: Snapshot, namespace: str, name: str, api_version: str, kind: str) -> dict[str, Any] | None:
    return facts.of_current_revision(snapshot, namespace, name, api_version, kind)


def _current_request(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    return facts.of_current_revision(snapshot, namespace, name, CERT_MANAGER, "CertificateRequest")


def _secret(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    return facts.certificate_secret(snapshot, namespace, name)


def _issued_leaf(snapshot: Snapshot, namespace: str, name: str) -> tuple[x509.Certificate | None, str]:
    """(the leaf cert-manager issued, where it was read): one derivation, shared with the chain and the diff."""
    leaf = facts.issued_leaf(snapshot, namespace, name)
    return leaf.certificate, leaf.source


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
    reads=("tls:handshake", "kube:Ingress", "kube:Secret", "kube:CertificateRequest", "kube:Order",
           "kube:Certificate"),
    link="served chain → padlock",
)
def test_chain_is_publicly_trusted(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    chain = _chain(snapshot, evidence)
    evidence.target(target, "trust_store", "acme_issuer")
    evidence.add("snapshot", "created", snapshot.document.get("created"), note="the time the chain is judged at")
    evidence.fix(f"point --aksid-set trust_store= at a readable PEM bundle (now {target.trust_store}), or leave it unset "
                 "for the Mozilla store", on_error=True)
    try:
        store, recorded = store_for(target.trust_store, snapshot.document)  # a replay's file may be gone
    except TrustStoreError as exc:
        raise EvidenceUnavailable(str(exc)) from None
    if recorded:
        evidence.add("target", "trust_store", target.trust_store, note=recorded)
    path, why = verify_chain(chain, store, validity_time(chain[0], _collected(snapshot)))
    if path is not None:
        return
    served = f"{len(chain)} certificates" if len(chain) > 1 else "its leaf only, without intermediates: see TLS-003"
    staging = looks_like_staging(chain) or _issued_by_staging(snapshot, target) or target.acme_issuer.endswith("staging")
    found = _demo_tls(snapshot, target)
    renew = f"; cmctl renew -n {found[0]} {found[1]}" if found else ""
    evidence.fix(("set ACME_ISSUER=letsencrypt-prod and annotate the demo Ingress cert-manager.io/cluster-issuer="
                  f"letsencrypt-prod{renew}") if staging else
                 f"serve a chain that leads to a root of {store.name} (leaf and intermediates in tls.crt){renew}")
    hint = ("; it is a Let's Encrypt staging chain, which no browser trusts: switch ACME_ISSUER to letsencrypt-prod"
            " and re-issue the certificate" if staging else "")
    raise AssertionError(
        f"the chain served by {subject} ({served}) ends at '{top_issuer(chain)}', which does not lead to a root in "
        f"the trust store {store.name} ({why}){hint}")


# -- TLS-002 ------------------------------------------------------------------------------------

def _covers(leaf: x509.Certificate, host: str) -> bool:
    """RFC 6125 as browsers apply it: subjectAltName DNS names only, a wildcard covers exactly one label."""
    return hostnames.covers(dns_names(leaf), host)


@check(
    "TLS-002", "the certificate covers the host name and is inside its validity window", "critical",
    remediation="Let cert-manager (re)issue for the Ingress host: check the Ingress tls.hosts and the Certificate's "
                "dnsNames, then `cmctl renew`; a leaf this close to expiry means renewals are failing (see ISS-004).",
    subjects=served_host,
    modes=LIVE_MODES,
    reads=("tls:handshake", "kube:Ingress", "kube:Certificate"),
    link="certificate → served chain",
)
def test_certificate_covers_host_and_is_current(subject: str, snapshot: Snapshot, target: Target,
                                                evidence: Evidence) -> None:
    leaf = _chain(snapshot, evidence)[0]
    evidence.target(target, "demo_fqdn", "tls_min_days")
    evidence.add("snapshot", "created", snapshot.document.get("created"), note="the time the leaf is judged at")
    found = _demo_tls(snapshot, target)
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", *found) if found is not None else None
    if found is not None:
        if certificate is not None:
            evidence.kube(certificate, "spec.dnsNames")
        evidence.fix(f"kubectl -n {found[0]} describe certificate {found[1]} (dnsNames must cover {subject}: the "
                     f"name itself or *.{subject.split('.', 1)[1]}); "
                     f"cmctl renew -n {found[0]} {found[1]}")
    names = ", ".join(dns_names(leaf)) or "no DNS name"
    assert _covers(leaf, subject), (
        f"the certificate served for {subject} is for {names} ({leaf.subject.rfc4514_string()}) and does not cover "
        f"{subject}{_why_not_covered(dns_names(leaf), certificate, subject)}")
    collected = _collected(snapshot)
    assert leaf.not_valid_before_utc <= collected, (
        f"the certificate for {subject} is not valid before {leaf.not_valid_before_utc} (collected {collected})")
    assert collected <= leaf.not_valid_after_utc, (
        f"the certificate for {subject} expired at {leaf.not_valid_after_utc} (collected {collected})")
    remaining = leaf.not_valid_after_utc - collected
    assert remaining >= dt.timedelta(days=target.tls_min_days_count), (
        f"the certificate for {subject} expires in {remaining.days} day(s) ({leaf.not_valid_after_utc}), less than the "
        f"required {target.tls_min_days_count} (tls_min_days)")


def _why_not_covered(served: list[str], certificate: dict[str, Any] | None, host: str) -> str:
    """What a reader of a name mismatch needs: the wildcard rule when the leaf has one, and what the Certificate asks."""
    why = ""
    if any(name.startswith("*") for name in served):
        why = f" (a wildcard covers exactly one left-most label: *.{host.split('.', 1)[1]} would)"
    asked = hostnames.certificate_names(certificate)
    if certificate is not None and asked and not hostnames.covers(asked, host):
        meta = certificate["metadata"]
        why += f"; Certificate {meta.get('namespace')}/{meta['name']} asks for {', '.join(asked)}, which does not cover it either"
    return why


# -- TLS-003 ------------------------------------------------------------------------------------

@check(
    "TLS-003", "the served leaf is the one cert-manager issued; the server sends the intermediates", "high",
    remediation="Point the Ingress's tls.secretName at the Certificate's Secret and let ingress-nginx reload; "
                "serve tls.crt as cert-manager wrote it (leaf + intermediates), never a hand-made bundle.",
    subjects=served_host,
    modes=LIVE_MODES,
    reads=("tls:handshake", "kube:Ingress", "kube:Certificate", "kube:CertificateRequest", "kube:Secret"),
    link="certificate → served chain",
)
def test_served_leaf_is_the_issued_one(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    chain = _chain(snapshot, evidence)
    found = _demo_tls(snapshot, target)
    if found is not None:
        evidence.fix(f"point the Ingress's tls.secretName at Secret {found[0]}/{found[1]} and serve its tls.crt as "
                     "cert-manager wrote it (leaf + intermediates)")
    assert len(chain) > 1 or chain[0].issuer == chain[0].subject, (
        f"{subject} serves its leaf without intermediates (issuer '{chain[0].issuer.rfc4514_string()}'): clients "
        "that do not fetch them (AIA) cannot build the chain")
    found = _demo_tls(snapshot, target)
    if found is None:
        raise EvidenceUnavailable(f"{_no_tls_for(snapshot, subject)}, so there is no issued certificate to compare")
    issued, source = _issued_leaf(snapshot, *found)
    _issued_evidence(snapshot, evidence, *found)
    assert issued is not None, f"{source} holds no certificate, so {subject} cannot be serving cert-manager's"
    served = chain[0]
    assert issued == served, (
        f"{subject} serves serial {served.serial_number:x} (expires {served.not_valid_after_utc}), but {source} "
        f"holds serial {issued.serial_number:x} (expires {issued.not_valid_after_utc}): the Ingress serves another "
        "certificate")


def _issued_evidence(snapshot: Snapshot, evidence: Evidence, namespace: str, name: str) -> None:
    """Where the issued leaf was read: the Secret's tls.crt, else the current CertificateRequest's certificate."""
    secret = _secret(snapshot, namespace, name)
    request = None if secret is not None else _current_request(snapshot, namespace, name)
    obj, field, encoded = ((secret, 'data["tls.crt"]', (secret.get("data") or {}).get("tls.crt")) if secret is not None
                           else (request, "status.certificate", ((request or {}).get("status") or {}).get("certificate")))
    if obj is None:
        return
    issued = facts.first_certificate(encoded or "")
    evidence.kube(obj, field, note=_describe(issued) if issued is not None else "no certificate")


# -- TLS-004 ------------------------------------------------------------------------------------

def edge_behaviours(_snapshot: Snapshot, _target: Target) -> dict[str, str]:
    return {"protocols": "protocols", "http-redirect": "redirect", "page": "page"}


@check(
    "TLS-004", "TLS 1.2+ only; http:// redirects to https:// on the same host; the page is the demo app", "medium",
    remediation="Keep ingress-nginx's defaults (ssl-protocols TLSv1.2 TLSv1.3, ssl-redirect true) and the Ingress "
                "backend hello-kubernetes:80.",
    subjects=edge_behaviours,
    modes=LIVE_MODES,
    reads=("tls:legacy", "tls:http", "tls:page", "tls:handshake", "kube:Ingress"),
    link="served chain → padlock",
    groups=("kube:Ingress", "tls:handshake"),
)
def test_edge_behaviour(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    host = target.demo_fqdn
    if subject == "protocols":
        legacy = snapshot.tls.value("legacy")
        evidence.tls("legacy", legacy, *(f'["{name}"]' for name in legacy))
        evidence.tls("handshake", snapshot.tls.value("handshake"), "protocol")
        evidence.fix(f"set ssl-protocols \"TLSv1.2 TLSv1.3\" in the ConfigMap of ingress-nginx ({target.addon_namespace}) "
                     f"that serves {host}")
        accepted = [name for name, yes in legacy.items() if yes]
        assert not accepted, f"{host} still completes {' and '.join(accepted)} handshakes; only TLS 1.2 and 1.3 are safe"
        protocol = snapshot.tls.value("handshake").get("protocol")
        assert protocol in ("TLSv1.2", "TLSv1.3"), f"{host} negotiated {protocol}"
    elif subject == "redirect":
        answer: dict[str, Any] = snapshot.tls.value("http")
        evidence.tls("http", answer, "status", "location")
        evidence.fix(f"remove nginx.ingress.kubernetes.io/ssl-redirect: \"false\" from the Ingress of {host} (and keep "
                     f"ssl-redirect true in ingress-nginx's ConfigMap in {target.addon_namespace})")
        location = str(answer.get("location") or "")
        assert answer.get("status") in REDIRECTS, (
            f"http://{host}/ answered {answer.get('status')} instead of redirecting to https://{host}/")
        assert location.lower().rstrip("/") == f"https://{host}" or location.lower().startswith(f"https://{host}/"), (
            f"http://{host}/ redirects to {location!r}, not to https://{host}/")
    else:
        page = snapshot.tls.value("page")
        evidence.tls("page", page, "status")
        evidence.add("tls page", "body", within=page,
                     note=f"{'contains' if DEMO_TITLE in (page.get('body') or '') else 'lacks'} '{DEMO_TITLE}'")
        ingress = next(iter(hostnames.ingresses_for(snapshot.kube.list("networking.k8s.io/v1", "Ingress"), host)), None)
        if ingress is not None:
            evidence.kube(ingress, "spec.rules")
        evidence.fix(f"point the backend of Ingress {names([ingress])[0] if ingress else host} at service "
                     "hello-kubernetes port 80")
        assert page.get("status") == 200 and DEMO_TITLE in (page.get("body") or ""), (
            f"https://{host}/ answered {page.get('status')} without '{DEMO_TITLE}': the Ingress does not reach "
            "hello-kubernetes")
