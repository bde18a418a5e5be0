"""A small ACME (RFC 8555) client: issue a certificate through DNS-01, as cert-manager does through Azure DNS.

cert-manager's azureDNS solver writes `_acme-challenge.<host>` TXT into the zone; here the same record is
written by RFC 2136 updates (TSIG-signed) to every authoritative knot server of aksid.sandbox.dns, which
are independent copies of the zone. Hand-written over `requests` + `cryptography` (JWS ES256): the whole
protocol needed here is a dozen POSTs, and it spares the `acme`/`josepy`/`pyOpenSSL` dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from aksid.sandbox.pebble import AcmeCA

CHALLENGE_TTL = 60  # what cert-manager's azureDNS solver writes
HTTP_TIMEOUT = 10.0
DNS_TIMEOUT = 3.0
POLL_INTERVAL = 0.05
NONCE_RETRIES = 3
PEM_CHAIN = "application/pem-certificate-chain"


class AcmeError(RuntimeError):
    """Issuance failed; the message names the step and the CA's problem document."""


@dataclass(frozen=True)
class IssuedCertificate:
    chain_pem: str  # leaf + intermediates, as served by the CA
    key_pem: str  # the leaf's private key (PKCS#8 PEM)
    alternate_chains: list[str] = field(default_factory=list)  # the same leaf with the `Link: rel="alternate"` chains
    account_url: str = ""  # the ACME account (cert-manager's ClusterIssuer `status.acme.uri`)


def issue_certificate(
    ca: AcmeCA,
    domain: str,
    *,
    dns_servers: list[str],
    update_key: dict[str, str],
    zone: str,
    email: str,
    key_type: str = "ec",
    timeout: float = 30.0,
) -> IssuedCertificate:
    """Register an account, order `domain`, solve DNS-01 through every DNS server, finalize, download.

    A wildcard `*.<name>` is ordered as such (RFC 8555 7.1.3); its authorization is for `<name>` and its DNS-01
    record `_acme-challenge.<name>` (8.4), the only challenge a CA offers for a wildcard."""
    if key_type not in ("ec", "rsa"):
        raise AcmeError(f"key_type must be 'ec' or 'rsa', not '{key_type}'")
    servers = [_loopback_endpoint(server) for server in dns_servers]
    if not servers:
        raise AcmeError("no DNS servers given for the DNS-01 challenge")
    record = _ChallengeRecord(domain, zone, servers, update_key)
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        client = _AcmeSession(session, ca.directory_url, ca.https_ca_bundle)
        account_url = client.register(email)
        order_url, order = client.new_order(domain)
        try:
            for authorization_url in order["authorizations"]:
                _solve_dns01(client, authorization_url, record, deadline)
        finally:
            record.remove_all()
        leaf_key = _leaf_key(key_type)
        order = client.finalize(order_url, order, _csr(domain, leaf_key), deadline)
        chain, alternates = client.download(order["certificate"])
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
    return IssuedCertificate(chain, key_pem, alternates, account_url)


# --- the ACME protocol --------------------------------------------------------------------------


class _AcmeSession:
    """JWS-signed requests (ES256) with nonce bookkeeping; every HTTPS request verified against the bundle."""

    def __init__(self, session: requests.Session, directory_url: str, bundle: Path) -> None:
        self._http = session
        # Without this, REQUESTS_CA_BUNDLE (and *_PROXY) from the environment would override `verify`
        # (and could route loopback traffic through a proxy): the sandbox trusts only its own bundle.
        self._http.trust_env = False
        self._http.verify = str(bundle)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._jwk = _jwk(self._key.public_key())
        self._kid: str | None = None
        self._nonce: str | None = None
        self.directory = self._get_json(directory_url, "directory")

    @property
    def thumbprint(self) -> str:
        """RFC 7638: SHA-256 over the required JWK members, sorted, without whitespace."""
        canonical = json.dumps(self._jwk, sort_keys=True, separators=(",", ":")).encode()
        return _b64(hashlib.sha256(canonical).digest())

    def register(self, email: str) -> str:
        payload = {"termsOfServiceAgreed": True, "contact": [f"mailto:{email}"]}
        response = self.post(self.directory["newAccount"], payload, "register the account")
        self._kid = response.headers["Location"]
        return self._kid

    def new_order(self, domain: str) -> tuple[str, dict[str, Any]]:
        payload = {"identifiers": [{"type": "dns", "value": domain}]}
        response = self.post(self.directory["newOrder"], payload, "create the order")
        return response.headers["Location"], response.json()

    def finalize(self, order_url: str, order: dict[str, Any], csr_der: bytes, deadline: float) -> dict[str, Any]:
        order = self.poll(order_url, "order", {"ready", "valid"}, deadline) if order["status"] == "pending" else order
        if order["status"] == "ready":
            self.post(order["finalize"], {"csr": _b64(csr_der)}, "finalize the order")
        return self.poll(order_url, "order", {"valid"}, deadline)

    def download(self, certificate_url: str) -> tuple[str, list[str]]:
        """The default chain and every `Link: rel="alternate"` chain (cert-manager's preferredChain picks among them)."""
        response = self.post(certificate_url, None, "download the certificate", accept=PEM_CHAIN)
        alternates = [link["url"] for link in requests.utils.parse_header_links(response.headers.get("Link", ""))
                      if link.get("rel") == "alternate"]
        chains = [self.post(url, None, "download an alternate chain", accept=PEM_CHAIN).text for url in alternates]
        return response.text, chains

    def poll(self, url: str, what: str, done: set[str], deadline: float) -> dict[str, Any]:
        """POST-as-GET until the status is in `done`; fail at once on `invalid`, and at the deadline."""
        while True:
            body = self.post(url, None, f"poll the {what}").json()
            if body["status"] in done:
                return body
            if body["status"] == "invalid":
                raise AcmeError(f"the {what} {url} became invalid: {_problem_text(_first_error(body))}")
            if time.monotonic() > deadline:
                raise AcmeError(f"the {what} {url} is still '{body['status']}' at the deadline")
            time.sleep(POLL_INTERVAL)

    def post(self, url: str, payload: dict[str, Any] | None, step: str, accept: str | None = None) -> requests.Response:
        """A signed POST (payload None = POST-as-GET); a badNonce is retried with the fresh nonce it carries."""
        for _ in range(NONCE_RETRIES):
            headers = {"Content-Type": "application/jose+json", **({"Accept": accept} if accept else {})}
            body = self._sign(url, payload)
            try:
                response = self._http.post(url, data=body, headers=headers, timeout=HTTP_TIMEOUT)
            except requests.RequestException as exc:
                raise AcmeError(f"could not {step}: {exc}") from None
            self._nonce = response.headers.get("Replay-Nonce")
            if response.status_code < 400:
                return response
            problem = _problem(response)
            if problem.get("type") != "urn:ietf:params:acme:error:badNonce":
                raise AcmeError(f"could not {step}: HTTP {response.status_code} {_problem_text(problem)}")
        raise AcmeError(f"could not {step}: the CA rejected {NONCE_RETRIES} nonces in a row")

    def _sign(self, url: str, payload: dict[str, Any] | None) -> bytes:
        protected: dict[str, Any] = {"alg": "ES256", "nonce": self._fresh_nonce(), "url": url}
        protected.update({"kid": self._kid} if self._kid else {"jwk": self._jwk})
        protected_b64 = _b64(json.dumps(protected).encode())
        payload_b64 = "" if payload is None else _b64(json.dumps(payload).encode())
        der = self._key.sign(f"{protected_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants the raw 64-byte r||s, not DER
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return json.dumps({"protected": protected_b64, "payload": payload_b64, "signature": _b64(signature)}).encode()

    def _fresh_nonce(self) -> str:
        nonce, self._nonce = self._nonce, None
        if nonce:
            return nonce
        try:
            response = self._http.head(self.directory["newNonce"], timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise AcmeError(f"could not get a nonce: {exc}") from None
        if "Replay-Nonce" not in response.headers:
            raise AcmeError(f"the CA gave no nonce (HTTP {response.status_code})")
        return response.headers["Replay-Nonce"]

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise AcmeError(f"could not read the ACME {what} {url}: {exc}") from None
        if response.status_code != 200:
            raise AcmeError(f"could not read the ACME {what} {url}: HTTP {response.status_code}")
        return response.json()


def _solve_dns01(client: _AcmeSession, authorization_url: str, record: _ChallengeRecord, deadline: float) -> None:
    """Publish the TXT on every server, check each serves it (cert-manager's propagation check), respond, poll."""
    authorization = client.post(authorization_url, None, "read the authorization").json()
    if authorization["status"] == "valid":
        return  # reused (pebble's PEBBLE_AUTHZREUSE): nothing to prove
    challenge = next((c for c in authorization["challenges"] if c["type"] == "dns-01"), None)
    if challenge is None:
        raise AcmeError(f"the CA offers no dns-01 challenge for {authorization['identifier']['value']}")
    key_authorization = f"{challenge['token']}.{client.thumbprint}"
    record.add(_b64(hashlib.sha256(key_authorization.encode()).digest()))
    client.post(challenge["url"], {}, "respond to the dns-01 challenge")
    client.poll(authorization_url, "authorization", {"valid"}, deadline)


# --- DNS-01 record (RFC 2136) -------------------------------------------------------------------


class _ChallengeRecord:
    """`_acme-challenge.<domain>` TXT on every authoritative server; removes exactly the values it added."""

    def __init__(self, domain: str, zone: str, servers: list[tuple[str, int]], key: dict[str, str]) -> None:
        self.zone = dns.name.from_text(zone)
        # RFC 8555 8.4: a wildcard's challenge is proven on the name without its "*." label.
        self.name = dns.name.from_text(f"_acme-challenge.{domain.removeprefix('*.')}")
        if not self.name.is_subdomain(self.zone):
            raise AcmeError(f"{domain} is not in the zone {zone}")
        self.servers = servers
        self.keyring = dns.tsigkeyring.from_text({key["name"]: key["secret"]})
        self.key_name = dns.name.from_text(key["name"])
        self.algorithm = dns.name.from_text(key.get("algorithm", "hmac-sha256"))
        self.values: list[str] = []

    def add(self, value: str) -> None:
        self.values.append(value)
        for server in self.servers:
            self._update(server, "add", value)
            self._await_served(server, value)

    def remove_all(self) -> None:
        """Try every server even when one fails (a leftover on one copy is still reported)."""
        failures = []
        for value in self.values:
            for server in self.servers:
                try:
                    self._update(server, "delete", value)
                except AcmeError as exc:
                    failures.append(str(exc))
        self.values.clear()
        if failures:
            raise AcmeError(f"the challenge record was not removed everywhere: {'; '.join(failures)}")

    def _update(self, server: tuple[str, int], action: str, value: str) -> None:
        update = dns.update.UpdateMessage(self.zone, keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.algorithm)
        relative = self.name.relativize(self.zone)
        if action == "add":
            update.add(relative, CHALLENGE_TTL, "TXT", f'"{value}"')
        else:
            update.delete(relative, "TXT", f'"{value}"')
        try:
            response = dns.query.tcp(update, server[0], port=server[1], timeout=DNS_TIMEOUT)
        except (OSError, dns.exception.DNSException) as exc:
            raise AcmeError(f"could not {action} {self.name} TXT on {server[0]}:{server[1]}: {exc}") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise AcmeError(f"{server[0]}:{server[1]} refused to {action} {self.name} TXT: {dns.rcode.to_text(response.rcode())}")

    def _await_served(self, server: tuple[str, int], value: str) -> None:
        query = dns.message.make_query(self.name, dns.rdatatype.TXT)
        query.flags &= ~dns.flags.RD
        deadline = time.monotonic() + DNS_TIMEOUT
        while time.monotonic() < deadline:
            try:
                response = dns.query.udp(query, server[0], port=server[1], timeout=DNS_TIMEOUT)
            except (OSError, dns.exception.DNSException):
                response = None
            served = [b"".join(rdata.strings).decode() for rrset in (response.answer if response else []) for rdata in rrset]
            if value in served:
                return
            time.sleep(POLL_INTERVAL)
        raise AcmeError(f"{server[0]}:{server[1]} does not serve the new {self.name} TXT record")


# --- keys, CSR, encoding ------------------------------------------------------------------------


def _leaf_key(key_type: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    # cert-manager's defaults: ECDSA P-256 when `privateKey.algorithm: ECDSA`, else RSA 2048.
    return ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)


def _csr(domain: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def _jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _loopback_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    try:
        if ipaddress.ip_address(host).is_loopback and 0 < int(port) < 65536:
            return host, int(port)
    except ValueError:
        pass
    raise AcmeError(f"DNS server '{endpoint}' is not a loopback 'ip:port' (the sandbox never dials outside it)")


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}


def _problem_text(problem: dict[str, Any] | None) -> str:
    if not problem:
        return "no details"
    return f"{problem.get('type', 'unknown problem')}: {problem.get('detail', '')}".strip()


def _first_error(body: dict[str, Any]) -> dict[str, Any] | None:
    """An order or authorization's cause: its own `error`, or the first failed challenge's."""
    if body.get("error"):
        return body["error"]
    return next((c["error"] for c in body.get("challenges", []) if c.get("error")), None)
