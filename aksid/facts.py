"""Facts the checks, the chain picture and the diff share: one derivation each, so they cannot disagree.

A fact is read from the snapshot only (never the network), and says where it was read.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from aksid.snapshot import EvidenceUnavailable, Snapshot
from aksid.trust import parse_chain

CERT_MANAGER = "cert-manager.io/v1"
REVISION = "cert-manager.io/certificate-revision"
CERTIFICATE_NAME = "cert-manager.io/certificate-name"


@dataclass(frozen=True)
class IssuedLeaf:
    """The leaf cert-manager issued for a Certificate, and where it was read (None: that source holds none)."""

    certificate: x509.Certificate | None
    source: str


def of_current_revision(snapshot: Snapshot, namespace: str, name: str, api_version: str, kind: str
                        ) -> dict[str, Any] | None:
    """The CertificateRequest (or ACME Order) of the Certificate's current revision, as cert-manager annotates it."""
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", namespace, name)
    revision = ((certificate or {}).get("status") or {}).get("revision")
    if certificate is None or revision is None:
        return None
    for obj in snapshot.kube.list(api_version, kind, namespace):
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(CERTIFICATE_NAME) == name and annotations.get(REVISION) == str(revision):
            return obj
    return None


def certificate_secret(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    """The Certificate's Secret when Secrets were read (--aksid-read-secrets) and listed; None otherwise."""
    if snapshot.kube.entry("v1", "Secret")["status"] != "ok":
        return None
    return snapshot.kube.get("v1", "Secret", namespace, name)


def first_certificate(encoded: str) -> x509.Certificate | None:
    """The first certificate of a base64 PEM bundle (tls.crt, status.certificate); None when there is none."""
    try:
        pem = base64.b64decode(encoded, validate=True).decode("utf-8") if encoded else ""
        return parse_chain([pem])[0] if pem else None
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError):
        return None


def issued_leaf(snapshot: Snapshot, namespace: str, name: str) -> IssuedLeaf:
    """The leaf cert-manager issued for Certificate namespace/name: the Secret's tls.crt when Secrets were read,
    else the current revision's CertificateRequest's status.certificate. Raises EvidenceUnavailable when neither
    can be read (no request of the current revision, Secrets not read)."""
    secret = certificate_secret(snapshot, namespace, name)
    if secret is not None:
        return IssuedLeaf(first_certificate((secret.get("data") or {}).get("tls.crt") or ""),
                          f"Secret {namespace}/{name} (tls.crt)")
    request = of_current_revision(snapshot, namespace, name, CERT_MANAGER, "CertificateRequest")
    if request is None:
        raise EvidenceUnavailable(
            f"no CertificateRequest of the current revision of Certificate {namespace}/{name} (and Secrets were not "
            "read: --aksid-read-secrets), so there is no issued certificate to compare")
    return IssuedLeaf(first_certificate((request.get("status") or {}).get("certificate") or ""),
                      f"CertificateRequest {namespace}/{request['metadata']['name']} (status.certificate)")
