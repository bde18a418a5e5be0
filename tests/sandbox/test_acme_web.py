"""The ACME and edge sandbox: real pebble (two: prod and staging), real knot, real nginx, real TLS clients.

A certificate for hello.example.test is issued by the "prod" pebble through DNS-01 (the TXT record written
by RFC 2136 to both knot servers), served by nginx on 127.0.0.80, and checked as a browser would.
Self-contained: its fixtures live here (no conftest), so it runs with `--noconftest`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from aksid.sandbox.acme_client import AcmeError, IssuedCertificate, issue_certificate
from aksid.sandbox.dns import DnsSandbox, start_dns, stop_dns
from aksid.sandbox.pebble import AcmeCA, PebbleError, fetch_issuer, start_pebble, stop_pebble
from aksid.sandbox.processes import child_pids
from aksid.sandbox.web import DemoWeb, WebSandboxError, make_expired_leaf, start_nginx, stop_nginx

ZONE = "example.test"
HOST = "hello.example.test"
ADDRESS = "127.0.0.80"
SUBSCRIPTION = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
NAME_SERVERS = ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."]
EMAIL = "admin@example.test"
# Paths the Debian nginx would write to by default: the sandbox must leave them alone.
NGINX_DEFAULT_PATHS = [Path("/var/lib/nginx"), Path("/var/log/nginx"), Path("/run/nginx.pid"), Path("/var/lock/nginx.lock")]


def zone_record_sets() -> list[dict[str, Any]]:
    """A small zone as the fake ARM lists it: the demo host's A record (SOA and NS are defaulted by start_dns)."""
    zone_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/{ZONE}"
    return [{"id": f"{zone_id}/A/hello", "name": "hello", "type": "Microsoft.Network/dnszones/A",
             "properties": {"TTL": 300, "fqdn": f"{HOST}.", "ARecords": [{"ipv4Address": ADDRESS}]}}]


@dataclass(frozen=True)
class World:
    state_dir: Path
    dns: DnsSandbox
    servers: list[str]  # both knot copies of the zone, "ip:port"
    prod: AcmeCA
    staging: AcmeCA
    ec_cert: IssuedCertificate
    rsa_cert: IssuedCertificate


def issue(ca: AcmeCA, sandbox: DnsSandbox, servers: list[str], key_type: str = "ec") -> IssuedCertificate:
    return issue_certificate(ca, HOST, dns_servers=servers, update_key=sandbox.update_key, zone=ZONE,
                             email=EMAIL, key_type=key_type)


def zone_servers(sandbox: DnsSandbox) -> list[str]:
    return sorted(set(sandbox.server_addresses.values()))  # 127.0.0.54 (A) first, then 127.0.0.55 (B)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """DNS, two pebbles and two certificates, shared by the module; every process stopped by PID at the end."""
    state_dir = tmp_path_factory.mktemp("acme-web")
    pids: list[int] = []
    sandbox = start_dns(state_dir, ZONE, zone_record_sets(), NAME_SERVERS)
    try:
        servers = zone_servers(sandbox)
        # Let's Encrypt production has served alternate (cross-signed) chains: so does "prod".
        prod = start_pebble(state_dir, "prod", servers[0], alternate_roots=1)
        pids.append(prod.pid)
        staging = start_pebble(state_dir, "staging", servers[0])
        pids.append(staging.pid)
        ec_cert, rsa_cert = issue(prod, sandbox, servers), issue(prod, sandbox, servers, "rsa")
        yield World(state_dir, sandbox, servers, prod, staging, ec_cert, rsa_cert)
    finally:
        for pid in pids:
            stop_pebble(pid)
        stop_dns(sandbox.pids)
    for pid in [*pids, *sandbox.pids]:
        assert not alive(pid), f"process {pid} survived its stop"


_WEB_NAMES = itertools.count()


@pytest.fixture
def web_for(world: World) -> Iterator[Callable[..., DemoWeb]]:
    """Start demo hosts on demand (each in its own directory); stopped by PID at teardown, then checked dead."""
    started: list[DemoWeb] = []

    def start(chain_pem: str | None = None, key_pem: str | None = None, staging: dict[str, Any] | None = None) -> DemoWeb:
        web = start_nginx(world.state_dir, ADDRESS, HOST, chain_pem or world.ec_cert.chain_pem,
                          key_pem or world.ec_cert.key_pem, staging=staging, name=f"web-{next(_WEB_NAMES)}")
        started.append(web)
        return web

    yield start
    for web in started:
        stop_nginx(web.pid)
    for web in started:
        assert not alive(web.pid)


# --- clients ------------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pem_certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def client_context(*, cadata: str | None = None, legacy: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A verifying context when `cadata` is given, else one that only collects what the server sends.
    `legacy` pins TLS 1.0/1.1, which OpenSSL 3 allows only at security level 0."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cadata is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=cadata)
    if legacy is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1/TLSv1_1 are deprecated names
            context.minimum_version = context.maximum_version = legacy
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def served_chain(web: DemoWeb, context: ssl.SSLContext | None = None) -> tuple[str, list[x509.Certificate]]:
    """The TLS version and the certificates the server sent (leaf first), unverified, with SNI = HOST.

    Python 3.11 has no public API for the peer's chain, but its C socket object already has
    `get_unverified_chain()` (public on SSLSocket from 3.13): it returns `_ssl.Certificate` objects."""
    with socket.create_connection((web.address, web.https_port), timeout=5) as raw, \
            (context or client_context()).wrap_socket(raw, server_hostname=HOST) as tls:
        chain = tls._sslobj.get_unverified_chain()  # type: ignore[union-attr]
        version = tls.version()
    ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
    assert version is not None
    return version, [x509.load_der_x509_certificate(der) for der in ders]


def verify(chain: list[x509.Certificate], roots_pem: str, at: Any = None) -> list[x509.Certificate]:
    """The path cryptography builds from the served chain to one of `roots_pem`, or VerificationError."""
    builder = PolicyBuilder().store(Store(pem_certs(roots_pem)))
    if at is not None:
        builder = builder.time(at)
    return builder.build_server_verifier(x509.DNSName(HOST)).verify(chain[0], chain[1:])


def http_get(web: DemoWeb, path: str = "/", *, tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
    """One HTTP/1.1 GET with Host (and SNI) = HOST, over TLS when a context is given; (status, headers, body)."""
    port = web.https_port if tls else web.http_port
    with socket.create_connection((web.address, port), timeout=5) as raw:
        sock = tls.wrap_socket(raw, server_hostname=HOST) if tls else raw
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8", errors="replace").partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def txt_records(server: str, name: str) -> list[str]:
    ip, port = server.split(":")
    query = dns.message.make_query(name, "TXT")
    query.flags &= ~dns.flags.RD
    response = dns.query.udp(query, ip, port=int(port), timeout=2)
    return [rdata.to_text() for rrset in response.answer for rdata in rrset]


# --- issuance -----------------------------------------------------------------------------------


def test_issued_chain_is_leaf_and_intermediate_for_the_host(world: World) -> None:
    leaf, *intermediates = pem_certs(world.ec_cert.chain_pem)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [HOST]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert [c.subject.rfc4514_string().split(" CA ")[0] for c in intermediates] == ["CN=Pebble Intermediate"]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (89, 90)  # Let's Encrypt's 90 days
    key = serialization.load_pem_private_key(world.ec_cert.key_pem.encode(), password=None)
    assert key.public_key() == leaf.public_key()


def test_challenge_record_is_removed_from_both_servers(world: World) -> None:
    for server in world.servers:
        assert txt_records(server, f"_acme-challenge.{HOST}") == []


def test_dns01_is_really_validated_by_pebble(world: World) -> None:
    """Pebble asks server A: a TXT record published on B only must fail the challenge."""
    with pytest.raises(AcmeError, match="became invalid.*TXT"):
        issue(world.prod, world.dns, world.servers[1:])


def test_pebble_refuses_a_dns_server_off_loopback(world: World) -> None:
    with pytest.raises(PebbleError, match="loopback"):
        start_pebble(world.state_dir, "nowhere", "192.0.2.1:53")


def test_alternate_chain_is_the_same_leaf_cross_signed_by_the_alternate_root(world: World) -> None:
    root0, root1 = (cert.public_bytes(serialization.Encoding.PEM).decode() for cert in pem_certs(world.prod.roots_pem))
    [alternate] = world.ec_cert.alternate_chains
    default_chain, alternate_chain = pem_certs(world.ec_cert.chain_pem), pem_certs(alternate)
    assert alternate_chain[0] == default_chain[0]
    assert alternate_chain[1].subject == default_chain[1].subject and alternate_chain[1].issuer != default_chain[1].issuer
    assert verify(alternate_chain, root1)[-1].subject == pem_certs(root1)[0].subject
    with pytest.raises(VerificationError):
        verify(alternate_chain, root0)
    with pytest.raises(VerificationError):
        verify(default_chain, root1)


# --- the served chain ---------------------------------------------------------------------------


def test_served_chain_validates_against_prod_roots_only(world: World, web_for: Callable[..., DemoWeb]) -> None:
    web = web_for()
    _, chain = served_chain(web)
    assert chain == pem_certs(world.ec_cert.chain_pem)
    path = verify(chain, world.prod.roots_pem)
    assert [c.subject for c in path] == [chain[0].subject, chain[1].subject, pem_certs(world.prod.roots_pem)[0].subject]
    with pytest.raises(VerificationError):
        verify(chain, world.staging.roots_pem)


def test_python_ssl_verifies_host_and_chain_with_prod_roots(world: World, web_for: Callable[..., DemoWeb]) -> None:
    web = web_for()
    status, _, _ = http_get(web, tls=client_context(cadata=world.prod.roots_pem))
    assert status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        http_get(web, tls=client_context(cadata=world.staging.roots_pem))


def test_serve_intermediates_false_serves_the_leaf_only(world: World, web_for: Callable[..., DemoWeb]) -> None:
    _, chain = served_chain(web_for(staging={"serve_intermediates": False}))
    assert chain == pem_certs(world.ec_cert.chain_pem)[:1]
    with pytest.raises(VerificationError):
        verify(chain, world.prod.roots_pem)


def test_rsa_leaf_is_served_and_validates(world: World, web_for: Callable[..., DemoWeb]) -> None:
    web = web_for(world.rsa_cert.chain_pem, world.rsa_cert.key_pem)
    _, chain = served_chain(web)
    assert isinstance(chain[0].public_key(), rsa.RSAPublicKey) and chain[0].public_key().key_size == 2048
    verify(chain, world.prod.roots_pem)


def test_expired_leaf_from_pebbles_own_intermediate(world: World, web_for: Callable[..., DemoWeb]) -> None:
    """Pebble cannot backdate: sign with its issuing intermediate; only the validity is wrong."""
    issuer_cert, issuer_key = fetch_issuer(world.prod)
    intermediates = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in pem_certs(world.ec_cert.chain_pem)[1:])
    chain_pem, key_pem = make_expired_leaf(HOST, issuer_cert, issuer_key, intermediates_pem=intermediates)
    _, chain = served_chain(web_for(chain_pem, key_pem))
    with pytest.raises(VerificationError, match="not valid|expired|validity"):
        verify(chain, world.prod.roots_pem)
    # Otherwise sound: signed by the real issuing intermediate, which validates to the prod root. (No
    # time makes the whole path valid: pebble's intermediate was born at start-up, after the leaf expired.)
    chain[0].verify_directly_issued_by(chain[1])
    assert chain[1:] == pem_certs(world.ec_cert.chain_pem)[1:]
    assert chain[0].not_valid_after_utc < dt.datetime.now(dt.UTC)


def test_key_that_is_not_the_leafs_is_refused(world: World) -> None:
    with pytest.raises(WebSandboxError, match="does not belong"):
        start_nginx(world.state_dir, ADDRESS, HOST, world.ec_cert.chain_pem, world.rsa_cert.key_pem, name="mismatch")


# --- protocols ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls12_and_tls13_are_accepted(web_for: Callable[..., DemoWeb], version: ssl.TLSVersion) -> None:
    context = client_context()
    context.minimum_version = context.maximum_version = version
    assert served_chain(web_for(), context)[0] == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_legacy_tls_refused_by_default(web_for: Callable[..., DemoWeb], version: str) -> None:
    web = web_for()
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|unsupported protocol|no protocols available"):
        served_chain(web, client_context(legacy=getattr(ssl.TLSVersion, version)))


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_legacy_tls_accepted_when_staged(web_for: Callable[..., DemoWeb], version: str) -> None:
    web = web_for(staging={"tls10": True})
    negotiated, chain = served_chain(web, client_context(legacy=getattr(ssl.TLSVersion, version)))
    assert negotiated == version.replace("_", ".")
    assert len(chain) == 2
    assert served_chain(web)[0] == "TLSv1.3"  # modern clients still get TLS 1.3


# --- HTTP ---------------------------------------------------------------------------------------


def test_http_redirects_308_to_https(web_for: Callable[..., DemoWeb]) -> None:
    web = web_for()
    status, headers, _ = http_get(web)
    assert (status, headers["location"]) == (308, f"https://{HOST}/")
    status, headers, _ = http_get(web, "/path?x=1")
    assert (status, headers["location"]) == (308, f"https://{HOST}/path?x=1")


def test_https_serves_the_demo_page_with_hsts(web_for: Callable[..., DemoWeb]) -> None:
    status, headers, body = http_get(web_for(), tls=client_context())
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "<title>Hello Kubernetes!</title>" in body and "Hello world!" in body
    assert "<th>namespace:</th>\n      <td>hello</td>" in body
    assert "<td>hello-kubernetes-" in body and "<td>aks-nodepool1-" in body


def test_redirect_false_serves_the_page_over_http(web_for: Callable[..., DemoWeb]) -> None:
    status, headers, body = http_get(web_for(staging={"redirect": False}))
    assert status == 200 and "location" not in headers and "Hello Kubernetes!" in body


def test_page_other_serves_nginx_default_page(web_for: Callable[..., DemoWeb]) -> None:
    status, _, body = http_get(web_for(staging={"page": "other"}), tls=client_context())
    assert status == 200 and "Welcome to nginx!" in body and "Hello Kubernetes!" not in body


@pytest.mark.parametrize(("staging", "message"), [
    ({"tls11": True}, "unknown key.*tls11"),
    ({"tls10": "yes"}, "tls.tls10 must be true or false"),
    ({"page": "blank"}, "tls.page must be one of"),
])
def test_bad_staging_is_refused_up_front(world: World, staging: dict[str, Any], message: str) -> None:
    with pytest.raises(WebSandboxError, match=message):
        start_nginx(world.state_dir, ADDRESS, HOST, world.ec_cert.chain_pem, world.ec_cert.key_pem, staging=staging, name="bad")


def test_nginx_refuses_an_address_off_loopback(world: World) -> None:
    with pytest.raises(WebSandboxError, match="loopback"):
        start_nginx(world.state_dir, "192.0.2.80", HOST, world.ec_cert.chain_pem, world.ec_cert.key_pem, name="off")


def test_two_demo_hosts_run_at_once_on_distinct_ports(web_for: Callable[..., DemoWeb]) -> None:
    first, second = web_for(), web_for(staging={"redirect": False})
    assert {first.https_port, first.http_port}.isdisjoint({second.https_port, second.http_port})
    assert http_get(first)[0] == 308 and http_get(second)[0] == 200


# --- lifecycle ----------------------------------------------------------------------------------


# the same /proc walk `aksid sandbox down` uses to find nginx's workers
children_of = child_pids


def open_paths(pid: int) -> list[str]:
    """Every file (not socket, pipe or /dev node) the process holds open."""
    paths = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/") and not target.startswith("/dev/"):
            paths.append(target)
    return paths


def snapshot(paths: list[Path]) -> dict[str, float]:
    found = {}
    for path in paths:
        for entry in [path, *(path.rglob("*") if path.is_dir() else [])]:
            if entry.exists():
                found[str(entry)] = entry.stat().st_mtime
    return found


def test_everything_stops_by_pid_and_stays_in_state_dir(tmp_path: Path) -> None:
    before = snapshot(NGINX_DEFAULT_PATHS)
    state_dir = (tmp_path / "state").resolve()
    sandbox = start_dns(state_dir, ZONE, zone_record_sets(), NAME_SERVERS)
    pids: list[int] = list(sandbox.pids)
    try:
        ca = start_pebble(state_dir, "prod", zone_servers(sandbox)[0])
        pids.append(ca.pid)
        cert = issue(ca, sandbox, zone_servers(sandbox))
        web = start_nginx(state_dir, ADDRESS, HOST, cert.chain_pem, cert.key_pem)
        pids.append(web.pid)
        workers = children_of(web.pid)
        assert workers, "nginx started no worker"
        pids += workers
        for pid in (ca.pid, web.pid, *workers):
            assert Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(state_dir)
            assert all(Path(path).is_relative_to(state_dir) for path in open_paths(pid)), open_paths(pid)
        stop_nginx(web.pid)
        stop_pebble(ca.pid)
    finally:
        stop_dns(sandbox.pids)
        for pid in pids:  # whatever failed above: nothing outlives the test
            if alive(pid):
                os.kill(pid, 9)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert snapshot(NGINX_DEFAULT_PATHS) == before
