"""Trust decisions over served chains, with `cryptography.x509.verification` (no hand-written path building)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class TrustStoreError(ValueError):
    """The trust store cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class TrustStore:
    name: str  # for messages: "Mozilla (certifi 2024.8.30)" or the bundle's path
    roots: tuple[x509.Certificate, ...]


def load_store(path: str | None) -> TrustStore:
    """The configured PEM bundle, or Mozilla's store as certifi ships it."""
    if path:
        return _load(str(path), str(path))
    import certifi

    return _load(certifi.where(), f"Mozilla (certifi {certifi.__version__})")


@functools.lru_cache(maxsize=8)
def _load(path: str, name: str) -> TrustStore:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustStoreError(f"the trust store {name} cannot be read ({exc.strerror or exc})") from None
    roots = []
    for block in _PEM_BLOCK.findall(data):
        # One bad entry must not cost the whole store: Mozilla's still has a root with a negative serial
        # number, which cryptography loads with a deprecation warning today and may refuse tomorrow.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                roots.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    if not roots:
        raise TrustStoreError(f"the trust store {name} holds no certificate")
    return TrustStore(name, tuple(roots))


def store_problem(path: str) -> str | None:
    """Why the file at `path` cannot serve as a trust store (a phrase for the trust_store setting), or None.

    Read as TLS-001 will read it (the same loader), so what passes here is what the check uses."""
    try:
        with open(path, "rb") as file:
            if not file.read(1):
                return "is an empty file, not a PEM bundle of trusted root certificates"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    try:
        _load(path, path)
    except TrustStoreError:
        return ("holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' block that parses): "
                "give a PEM bundle of trusted root certificates")
    return None


def parse_chain(pems: list[str]) -> list[x509.Certificate]:
    """Each PEM text holds one certificate or more (a chain); all of them, in order."""
    return [cert for pem in pems for cert in x509.load_pem_x509_certificates(pem.encode())]


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def validity_time(leaf: x509.Certificate, collected: dt.datetime) -> dt.datetime:
    """When to judge the chain of trust: at collection, unless the leaf was outside its window then.

    An expired leaf is TLS-002's finding; TLS-001 asks whether the chain leads to a trusted root,
    so it is judged at the last moment the leaf itself was valid (bounds are inclusive).
    """
    if leaf.not_valid_before_utc <= collected <= leaf.not_valid_after_utc:
        return collected
    return leaf.not_valid_after_utc if collected > leaf.not_valid_after_utc else leaf.not_valid_before_utc


def verify_chain(
    chain: list[x509.Certificate], store: TrustStore, at: dt.datetime
) -> tuple[list[x509.Certificate] | None, str]:
    """(the verified path leaf→root, '') or (None, why not). The name checked is the leaf's own, so
    only trust is judged here; whether it covers the demo host is TLS-002's."""
    if not chain:
        return None, "the server sent no certificate"
    leaf, intermediates = chain[0], chain[1:]
    names = dns_names(leaf)
    if not names:
        return None, "the leaf names no DNS host (no subjectAltName)"
    # a wildcard leaf is probed with a name it covers
    probe = "aksid-probe" + names[0][1:] if names[0].startswith("*.") else names[0]
    try:
        verifier = PolicyBuilder().store(Store(list(store.roots))).time(at).build_server_verifier(x509.DNSName(probe))
        return list(verifier.verify(leaf, intermediates)), ""
    except VerificationError as exc:
        return None, _why(str(exc), len(store.roots))
    except ValueError as exc:  # e.g. a SAN that is not a valid DNS name
        return None, f"the chain cannot be checked: {exc}"


def _why(text: str, roots: int) -> str:
    """cryptography's reason, in the words of the question asked."""
    text = text.split(" (encountered processing", 1)[0].removeprefix("validation failed: ")
    if "candidates exhausted" in text and "no interior errors" in text:
        return f"none of its certificates is issued by one of the store's {roots} roots"
    return text


def top_issuer(chain: list[x509.Certificate]) -> str:
    """The name the served chain ends at (the root it claims to lead to)."""
    return chain[-1].issuer.rfc4514_string() if chain else "nothing"


def looks_like_staging(chain: list[x509.Certificate]) -> bool:
    """Let's Encrypt names every staging certificate '(STAGING) ...'; none of them is in any public store."""
    return any("(STAGING)" in name.rfc4514_string().upper() for cert in chain for name in (cert.subject, cert.issuer))
