"""The demo host's certificate and edge in the sandbox: two pebbles, a real DNS-01 issuance, nginx.

`start_edge` (called by runtime.up once knotd runs) starts two pebbles that validate DNS-01 against knot
server A: "prod" stands for Let's Encrypt production (with an alternate, cross-signed chain, as production
has had) and "staging" for its staging environment. It issues the demo host's certificate from the one that
matches ACME_ISSUER, through the ACME client of acme_client.py, which writes the challenge record to both
knot servers, and serves it with nginx on the ingress load balancer's address. The prod pebble's roots are
the sandbox's "public" trust store (`public-roots.pem`); the staging roots are in no store, as in real life.

`prepare_base` and `translate_acme_urls` make the cluster tell the same story: the Certificate's times, the
CertificateRequest's and Order's certificate and the Secret's tls.crt/tls.key are what was really issued
(applied to the base scenario, before any patch over it, so a scenario that patches those fields explicitly
keeps its values), and Let's Encrypt's directory URLs become the pebbles' (after the patches: a scenario that
points an issuer at Let's Encrypt staging points it at the staging pebble).

A scenario's `tls:` key stages the faults (validated when the scenario is read, see `validate_tls_staging`):
    issuer: prod | staging          issue from this pebble instead of ACME_ISSUER's
    leaf_host: NAME                 issue for another host of the zone, or a wildcard `*.<domain>` (DNS-01 on
                                    `_acme-challenge.<domain>`, as cert-manager issues one; nginx serves it for the
                                    demo host); the scenario's Ingress TLS hosts and Certificate dnsNames say so too
    key_type: ec | rsa              the leaf's key (cert-manager's privateKey.algorithm)
    chain: default | alternate      keep (and serve) the alternate chain, cross-signed by the prod pebble's second root
    expired_leaf: true              an expired leaf, signed by pebble's own intermediate (pebble cannot backdate)
    served_leaf_differs: true       nginx serves a second, separately issued certificate; the cluster holds the first
    serve_intermediates, tls10, redirect, page      nginx's staging, see web.py
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from aksid import hostnames
from aksid.config import LETSENCRYPT_PROD, LETSENCRYPT_STAGING, is_loopback_host
from aksid.sandbox.acme_client import AcmeError, IssuedCertificate, issue_certificate
from aksid.sandbox.dns import ZONE_ADDRESSES, DnsSandbox
from aksid.sandbox.pebble import AcmeCA, PebbleError, fetch_issuer, start_pebble
from aksid.sandbox.web import STAGING_KEYS as WEB_STAGING_KEYS
from aksid.sandbox.web import WebSandboxError, make_expired_leaf, start_nginx
from aksid.sandbox.web import validate_staging as validate_web_staging

PUBLIC_ROOTS = "public-roots.pem"
CAS = ("prod", "staging")
_CERT_KEYS = {"issuer", "leaf_host", "key_type", "chain", "expired_leaf", "served_leaf_differs"}
STAGING_KEYS = _CERT_KEYS | WEB_STAGING_KEYS
_CHOICES = {"issuer": CAS, "key_type": ("ec", "rsa"), "chain": ("default", "alternate")}
INGRESS_LABEL = ("app.kubernetes.io/name", "ingress-nginx")
CERT_MANAGER_GROUPS = ("cert-manager.io/", "acme.cert-manager.io/")


class EdgeError(RuntimeError):
    """The ACME CAs, the issuance or the demo host could not be set up; the message says why."""


@dataclass(frozen=True)
class Held:
    """A certificate chain (leaf first) and its key, as PEM."""

    chain_pem: str
    key_pem: str

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem.encode())


@dataclass(frozen=True)
class Edge:
    directories: dict[str, str]  # "prod"/"staging" -> the pebble's ACME directory URL
    issuer_directory: str  # the directory of the pebble that issued the demo certificate
    public_roots: Path  # the prod pebble's roots: the sandbox's public trust store
    held: Held  # what cert-manager holds (Secret, CertificateRequest, Certificate times)
    served: Held  # what nginx serves
    https_port: int | None  # None: nginx was not started (no load balancer address on loopback)
    http_port: int | None
    not_before_ready: float = 0.0  # time.time() before which the suite must not collect (an expired leaf's end)
    cas: dict[str, AcmeCA] = field(default_factory=dict)  # the pebbles, for the cert-manager model
    nginx: dict[str, Any] | None = None  # {root, pid, address, https_port, http_port}: where new hosts are added


# --- the scenario's `tls:` key ------------------------------------------------------------------


def validate_tls_staging(staging: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the scenario's `tls:` section up front, so a typo fails when the file is read."""
    if staging is None:
        return {}
    if not isinstance(staging, Mapping):
        raise EdgeError("'tls' must be a mapping")
    unknown = sorted(set(staging) - STAGING_KEYS)
    if unknown:
        raise EdgeError(f"unknown key(s) {', '.join(f'tls.{key}' for key in unknown)} (known: {', '.join(sorted(STAGING_KEYS))})")
    for key, choices in _CHOICES.items():
        if key in staging and staging[key] not in choices:
            raise EdgeError(f"tls.{key} must be one of {', '.join(choices)}, not {staging[key]!r}")
    for key in ("expired_leaf", "served_leaf_differs"):
        if key in staging and not isinstance(staging[key], bool):
            raise EdgeError(f"tls.{key} must be true or false, not {staging[key]!r}")
    if "leaf_host" in staging and not _is_dns_name(staging["leaf_host"], wildcard=True):
        raise EdgeError(f"tls.leaf_host must be a DNS name or a wildcard *.NAME, not {staging['leaf_host']!r}")
    try:
        validate_web_staging({key: value for key, value in staging.items() if key in WEB_STAGING_KEYS})
    except WebSandboxError as exc:
        raise EdgeError(str(exc)) from None
    return dict(staging)


def _is_dns_name(value: Any, *, wildcard: bool = False) -> bool:
    """A host name of two labels or more; with `wildcard`, also `*.` over such a name (`*.example.test`: the `*`
    is the whole left-most label, RFC 6125, and covers one label)."""
    if wildcard and isinstance(value, str) and value.startswith("*."):
        value = value[2:]
    labels = str(value).rstrip(".").split(".") if isinstance(value, str) else []
    return len(labels) >= 2 and all(0 < len(label) < 64 and label.replace("-", "").isalnum() for label in labels)


# --- start --------------------------------------------------------------------------------------


def start_edge(
    state_dir: Path,
    target: Mapping[str, Any],
    kube_objects: list[dict[str, Any]],
    staging: Mapping[str, Any],
    dns: DnsSandbox,
    record_pid: Callable[[str, int], None],
) -> Edge:
    """Pebbles, issuance, nginx; `record_pid(name, pid)` is called as soon as each process exists (the caller
    stops them all, by PID, if anything here fails)."""
    domain = str(target["domain"]).rstrip(".")
    host = str(staging.get("leaf_host") or f"{target.get('demo_host', 'hello')}.{domain}")
    proven = host.removeprefix("*.")  # a wildcard's DNS-01 record is _acme-challenge.<the rest>
    if not (proven == domain or proven.endswith("." + domain)):
        raise EdgeError(f"tls.leaf_host {host} is not in the zone {domain}: the sandbox issues through its DNS-01 only")
    servers = sorted(set(dns.server_addresses.values()))
    server_a = next((server for server in servers if server.startswith(ZONE_ADDRESSES["a"] + ":")), servers[0])
    cas = _start_cas(state_dir, server_a, record_pid)
    public_roots = state_dir / PUBLIC_ROOTS
    public_roots.write_text(cas["prod"].roots_pem, encoding="utf-8")

    default_ca = "staging" if str(target.get("acme_issuer", "")).endswith("staging") else "prod"
    ca = cas[str(staging.get("issuer") or default_ca)]
    email = str(target.get("acme_issuer_email") or f"admin@{domain}")

    def issue() -> IssuedCertificate:
        try:
            return issue_certificate(ca, host, dns_servers=servers, update_key=dns.update_key, zone=domain,
                                     email=email, key_type=str(staging.get("key_type") or "ec"))
        except AcmeError as exc:
            raise EdgeError(f"the demo certificate could not be issued by the {ca_name(ca, cas)} pebble: {exc}") from None

    alternate = staging.get("chain") == "alternate"
    issued = issue()
    held = _chain_of(issued, alternate, ca_name(ca, cas))
    ready_after = 0.0
    if staging.get("expired_leaf"):
        held, ready_after = _expired(ca, host, held, str(staging.get("key_type") or "ec"))
    served = _chain_of(issue(), alternate, ca_name(ca, cas)) if staging.get("served_leaf_differs") else held

    address = load_balancer_ip(kube_objects)
    https_port = http_port = None
    nginx: dict[str, Any] | None = None
    if address is not None and is_loopback_host(address):
        web_staging = {key: value for key, value in staging.items() if key in WEB_STAGING_KEYS}
        try:
            web = start_nginx(state_dir, address, f"{target.get('demo_host', 'hello')}.{domain}", served.chain_pem,
                              served.key_pem, staging=web_staging)
        except WebSandboxError as exc:
            raise EdgeError(f"the demo host could not start: {exc}") from None
        record_pid("nginx", web.pid)
        https_port, http_port = web.https_port, web.http_port
        nginx = {"root": str(state_dir.resolve() / "web"), "pid": web.pid, "address": address,
                 "https_port": https_port, "http_port": http_port}
    return Edge({name: cas[name].directory_url for name in CAS}, ca.directory_url, public_roots, held, served,
                https_port, http_port, ready_after, dict(cas), nginx)


def ca_name(ca: AcmeCA, cas: Mapping[str, AcmeCA]) -> str:
    return next(name for name, candidate in cas.items() if candidate is ca)


def _start_cas(state_dir: Path, dns_server: str, record_pid: Callable[[str, int], None]) -> dict[str, AcmeCA]:
    """Both pebbles at once (each takes about half a second to answer)."""
    started: dict[str, AcmeCA] = {}
    failures: dict[str, BaseException] = {}
    lock = threading.Lock()

    def start(name: str) -> None:
        try:
            # Let's Encrypt production has served alternate (cross-signed) chains: so does "prod".
            ca = start_pebble(state_dir, f"pebble-{name}", dns_server, alternate_roots=1 if name == "prod" else 0)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the caller's thread
            failures[name] = exc
            return
        with lock:
            started[name] = ca
            record_pid(f"pebble-{name}", ca.pid)

    threads = [threading.Thread(target=start, args=(name,), name=f"aksid-pebble-{name}") for name in CAS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, exc in failures.items():
        if isinstance(exc, PebbleError):
            raise EdgeError(f"the {name} ACME CA could not start: {exc}")
        raise exc
    return started


def _chain_of(issued: IssuedCertificate, alternate: bool, name: str) -> Held:
    if not alternate:
        return Held(issued.chain_pem, issued.key_pem)
    if not issued.alternate_chains:
        raise EdgeError(f"tls.chain: alternate needs an alternate chain, and the {name} pebble offers none (use the prod one)")
    return Held(issued.alternate_chains[0], issued.key_pem)


def _expired(ca: AcmeCA, host: str, held: Held, key_type: str) -> tuple[Held, float]:
    """A leaf for `host` signed by pebble's issuing intermediate, valid for one second just after that intermediate
    began (so its chain was valid then: only the expiry is wrong); and when it will have expired."""
    try:
        issuer_cert, issuer_key = fetch_issuer(ca)
    except PebbleError as exc:
        raise EdgeError(str(exc)) from None
    not_before = issuer_cert.not_valid_before_utc + dt.timedelta(seconds=1)
    not_after = not_before + dt.timedelta(seconds=1)
    intermediates = "".join(cert.public_bytes(serialization.Encoding.PEM).decode()
                            for cert in x509.load_pem_x509_certificates(held.chain_pem.encode())[1:])
    chain_pem, key_pem = make_expired_leaf(host, issuer_cert, issuer_key, intermediates_pem=intermediates,
                                           window=(not_before, not_after), key_type=key_type)
    # Snapshots time their collection to the second: wait a whole second past the end.
    return Held(chain_pem, key_pem), not_after.timestamp() + 1.0


def wait_until_expired(edge: Edge) -> None:
    delay = edge.not_before_ready - time.time()
    if delay > 0:
        time.sleep(delay)


def load_balancer_ip(kube_objects: list[dict[str, Any]]) -> str | None:
    """The ingress-nginx Service's load balancer address (status.loadBalancer.ingress[].ip), if any."""
    for obj in kube_objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != "Service" or (obj.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        if (meta.get("labels") or {}).get(INGRESS_LABEL[0]) != INGRESS_LABEL[1]:
            continue
        for ingress in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip"):
                return str(ingress["ip"])
    return None


# --- the cluster's record of it -----------------------------------------------------------------


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _find(objects: list[dict[str, Any]], api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return next((obj for obj in objects if obj.get("apiVersion") == api_version and obj.get("kind") == kind
                 and (obj.get("metadata") or {}).get("namespace") == namespace
                 and (obj.get("metadata") or {}).get("name") == name), None)


def prepare_base(objects: list[dict[str, Any]], demo_fqdn: str, held: Held, issuer_directory: str,
                 now: dt.datetime | None = None) -> None:
    """Write what was issued into the base's cert-manager objects for the demo host's Ingress TLS (in place).

    Certificate: status.notBefore/notAfter and renewalTime (two thirds into the lifetime, cert-manager's default),
    Ready=False/Expired when the leaf has expired; CertificateRequest and Order of its revision: the chain, and
    the Order's URLs on the ACME server that really issued it (`issuer_directory`); Secret: tls.crt (chain),
    tls.key, and the name annotations cert-manager derives from the leaf.
    """
    now = now or dt.datetime.now(dt.UTC)
    ingresses = [obj for obj in objects if obj.get("kind") == "Ingress" and obj.get("apiVersion") == "networking.k8s.io/v1"]
    found = hostnames.tls_entry_for(ingresses, demo_fqdn)  # listed, or covered by a wildcard (*.<domain>)
    if found is None:
        return
    namespace, name = found[0]["metadata"]["namespace"], found[1]["secretName"]
    leaf = held.leaf
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    renewal = not_before + (not_after - not_before) * 2 / 3
    certificate = _find(objects, "cert-manager.io/v1", "Certificate", namespace, name)
    revision = None
    if certificate is not None:
        status = certificate.setdefault("status", {})
        status.update(notBefore=_timestamp(not_before), notAfter=_timestamp(not_after), renewalTime=_timestamp(renewal))
        revision = status.get("revision")
        if not_after < now:
            ready = {"type": "Ready", "status": "False", "reason": "Expired",
                     "message": f"Certificate expired on {not_after.strftime('%a, %d %b %Y %H:%M:%S UTC')}",
                     "lastTransitionTime": _timestamp(not_after), "observedGeneration": 1}
            status["conditions"] = [ready, *(c for c in status.get("conditions") or [] if c.get("type") != "Ready")]
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if (obj.get("kind") in ("CertificateRequest", "Order") and (obj.get("metadata") or {}).get("namespace") == namespace
                and annotations.get("cert-manager.io/certificate-name") == name
                and revision is not None and annotations.get("cert-manager.io/certificate-revision") == str(revision)):
            obj.setdefault("status", {})["certificate"] = _b64(held.chain_pem)
            if obj["kind"] == "Order":
                obj["status"] = _on_server(obj["status"], issuer_directory)
    secret = _find(objects, "v1", "Secret", namespace, name)
    if secret is not None:
        secret["data"] = {**(secret.get("data") or {}), "tls.crt": _b64(held.chain_pem), "tls.key": _b64(held.key_pem)}
        annotations = secret.setdefault("metadata", {}).setdefault("annotations", {})
        common = leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        try:
            alt_names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName)
        except x509.ExtensionNotFound:
            alt_names = []
        annotations["cert-manager.io/alt-names"] = ",".join(alt_names)
        annotations["cert-manager.io/common-name"] = str(common[0].value) if common else ""


def _on_server(value: Any, directory: str) -> Any:
    """`value` with every Let's Encrypt URL moved to the ACME server of `directory`, path kept."""
    base = directory.rsplit("/", 1)[0] + "/"
    if isinstance(value, dict):
        return {key: _on_server(item, directory) for key, item in value.items()}
    if isinstance(value, list):
        return [_on_server(item, directory) for item in value]
    if isinstance(value, str):
        for letsencrypt in (LETSENCRYPT_PROD, LETSENCRYPT_STAGING):
            prefix = letsencrypt.rsplit("/", 1)[0] + "/"
            if value.startswith(prefix):
                return base + value[len(prefix):]
    return value


def translate_acme_urls(objects: list[dict[str, Any]], directories: Mapping[str, str]) -> None:
    """Let's Encrypt's URLs in cert-manager's objects become the pebbles' (in place): the directories exactly,
    other URLs on their hosts (account, order, challenge) by their path."""
    mapping = []
    for name, letsencrypt in (("prod", LETSENCRYPT_PROD), ("staging", LETSENCRYPT_STAGING)):
        pebble = directories[name]
        mapping.append((letsencrypt, pebble, letsencrypt.rsplit("/", 1)[0] + "/", pebble.rsplit("/", 1)[0] + "/"))

    def translate(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: translate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [translate(item) for item in value]
        if isinstance(value, str):
            for directory, pebble_directory, prefix, pebble_prefix in mapping:
                if value == directory:
                    return pebble_directory
                if value.startswith(prefix):
                    return pebble_prefix + value[len(prefix):]
        return value

    for index, obj in enumerate(objects):
        if str(obj.get("apiVersion", "")).startswith(CERT_MANAGER_GROUPS):
            objects[index] = translate(obj)
