"""A real ACME CA for the sandbox: Let's Encrypt's pebble, on loopback only.

One pebble stands for Let's Encrypt production, another for staging; each gets its own directory
`state_dir/<name>/` holding `pebble-config.json`, `pebble.log` and `https/` (a throw-away CA and the
certificate of pebble's own HTTPS listener: the Debian package ships no test certificate). Pebble keeps
all its state in memory and regenerates its roots at every start, so the roots are fetched from its
management interface once it answers.

DNS-01 validation queries go to `dns_server` only (pebble takes a single `-dnsserver`): pass one of the
knot servers of aksid.sandbox.dns. Nothing is written outside `state_dir`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from aksid.sandbox.processes import (
    BIND_ATTEMPTS,
    Daemon,
    Launcher,
    free_ports,
    start_daemons,
    start_on_free_ports,
    stop_process,
)
from aksid.sandbox.tls import SandboxCA

# Let's Encrypt issues 90-day certificates; pebble 2.4 defaults to 5 years.
CERTIFICATE_VALIDITY_SECONDS = 90 * 24 * 3600
LISTEN_HOST = "127.0.0.1"


class PebbleError(RuntimeError):
    """Pebble could not be started or queried; the message says why."""


@dataclass(frozen=True)
class AcmeCA:
    pid: int
    directory_url: str  # https://127.0.0.1:PORT/dir
    https_ca_bundle: Path  # the CA that signs pebble's own HTTPS listener (so clients can verify it)
    roots_pem: str  # the issuing root(s) of this CA (PEM), fetched from pebble's management API
    management_url: str = ""  # https://127.0.0.1:PORT (roots, intermediates, cert status)


# --- public API ---------------------------------------------------------------------------------


def start_pebble(
    state_dir: Path,
    name: str,
    dns_server: str,
    *,
    chain_length: int | None = None,
    alternate_roots: int = 0,
    timeout: float = 15,
) -> AcmeCA:
    """Start one pebble named `name`; return once its directory answers over verified HTTPS."""
    _check_loopback_endpoint(dns_server, "dns_server")
    if chain_length is not None and chain_length < 1:
        raise PebbleError(f"chain_length must be at least 1 (leaf + 1 intermediate), not {chain_length}")
    if alternate_roots < 0:
        raise PebbleError(f"alternate_roots must not be negative, not {alternate_roots}")
    binary = shutil.which("pebble")
    if binary is None:
        raise PebbleError("pebble is not installed: apt-get install pebble")
    directory = state_dir.resolve() / name
    if directory.exists():
        shutil.rmtree(directory)
    bundle, cert, key = _https_identity(directory / "https")
    env = _pebble_env(chain_length, alternate_roots)
    deadline = time.monotonic() + timeout

    def start(ports: list[int], launch: Launcher) -> AcmeCA:
        acme_port, management_port = ports
        config = _write_config(directory, acme_port, management_port, cert, key)
        directory_url = f"https://{LISTEN_HOST}:{acme_port}/dir"
        (process,) = start_daemons(
            Daemon("pebble", [binary, "-config", str(config), "-dnsserver", dns_server, "-strict=false"],
                   log=directory / "pebble.log", ready=lambda: _answers_directory(directory_url, bundle),
                   ready_when=f"{directory_url} answers 200", cwd=directory, env=env,
                   port_taken="address already in use"),
            error=PebbleError, timeout=timeout, deadline=deadline, launch=launch, interval=0.02)
        management_url = f"https://{LISTEN_HOST}:{management_port}"
        roots = _fetch_roots(management_url, bundle, alternate_roots)
        return AcmeCA(process.pid, directory_url, bundle, roots, management_url)

    return start_on_free_ports(lambda: free_ports([LISTEN_HOST], 2), start, error=PebbleError,
                               exhausted=f"pebble could not bind free ports in {BIND_ATTEMPTS} attempts")


def stop_pebble(pid: int) -> None:
    stop_process(pid)


def fetch_issuer(ca: AcmeCA) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """The intermediate that signs pebble's leaves, with its key (pebble's management API serves both; the
    extra intermediates of PEBBLE_CHAIN_LENGTH > 1 sit above it). For leaves pebble cannot make, such as
    an expired one (see aksid.sandbox.web.make_expired_leaf), that still chain to the pebble roots."""
    cert_response = _get(f"{ca.management_url}/intermediates/0", ca.https_ca_bundle, timeout=5)
    key_response = _get(f"{ca.management_url}/intermediate-keys/0", ca.https_ca_bundle, timeout=5)
    if cert_response.status_code != 200 or key_response.status_code != 200:
        raise PebbleError(f"pebble's management API gave no issuing intermediate (HTTP {cert_response.status_code}"
                          f"/{key_response.status_code})")
    cert = x509.load_pem_x509_certificate(cert_response.content)
    key = serialization.load_pem_private_key(key_response.content, password=None)
    return cert, key


# --- configuration ------------------------------------------------------------------------------


def _https_identity(directory: Path) -> tuple[Path, Path, Path]:
    """A fresh CA and a 127.0.0.1/localhost certificate for pebble's listeners (ACME and management)."""
    ca = SandboxCA.create(directory, name="aksid pebble HTTPS CA")
    cert, key = ca.issue_server_cert(directory, "pebble", hosts=(LISTEN_HOST, "localhost"))
    return ca.cert_path, cert, key


def _pebble_env(chain_length: int | None, alternate_roots: int) -> dict[str, str]:
    """A clean environment: no inherited PEBBLE_* (e.g. VA_ALWAYS_VALID would skip the DNS-01 check)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PEBBLE_VA_NOSLEEP": "1",  # validate at once instead of after 0-15 s
        "PEBBLE_WFE_NONCEREJECT": "0",  # never reject a good nonce (default: 5 %)
        # Never reuse a valid authorization: every issuance really goes through DNS-01 (default: 50 %).
        "PEBBLE_AUTHZREUSE": "0",
        "PEBBLE_ALTERNATE_ROOTS": str(alternate_roots),
    }
    if chain_length is not None:
        env["PEBBLE_CHAIN_LENGTH"] = str(chain_length)
    return env


def _write_config(directory: Path, acme_port: int, management_port: int, cert: Path, key: Path) -> Path:
    config = {
        "pebble": {
            "listenAddress": f"{LISTEN_HOST}:{acme_port}",
            "managementListenAddress": f"{LISTEN_HOST}:{management_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            # The ports pebble's VA would dial for HTTP-01 / TLS-ALPN-01; only DNS-01 is used here.
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": CERTIFICATE_VALIDITY_SECONDS,
        }
    }
    path = directory / "pebble-config.json"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


# --- start-up -----------------------------------------------------------------------------------


def _answers_directory(url: str, bundle: Path) -> bool:
    """Whether the ACME directory answers 200 over verified HTTPS (pebble is up and listening)."""
    try:
        return _get(url, bundle, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False  # not listening yet


def _fetch_roots(management_url: str, bundle: Path, alternate_roots: int) -> str:
    """The issuing roots: /roots/0, then the alternates /roots/1..N (regenerated at every start)."""
    pems = []
    for index in range(alternate_roots + 1):
        response = _get(f"{management_url}/roots/{index}", bundle, timeout=5)
        if response.status_code != 200 or "BEGIN CERTIFICATE" not in response.text:
            raise PebbleError(f"pebble's management API gave no root {index} (HTTP {response.status_code})")
        pems.append(response.text if response.text.endswith("\n") else response.text + "\n")
    return "".join(pems)


# --- small helpers ------------------------------------------------------------------------------


def _get(url: str, bundle: Path, timeout: float) -> requests.Response:
    """A GET that trusts only `bundle`: without trust_env=False, REQUESTS_CA_BUNDLE and *_PROXY from the
    environment would apply (a proxy could even carry loopback traffic elsewhere)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, verify=str(bundle), timeout=timeout)


def _check_loopback_endpoint(endpoint: str, what: str) -> None:
    host, _, port = endpoint.rpartition(":")
    try:
        loopback = ipaddress.ip_address(host).is_loopback and 0 < int(port) < 65536
    except ValueError:
        loopback = False
    if not loopback:
        raise PebbleError(f"{what} must be a loopback 'ip:port' (the sandbox never dials outside it), not '{endpoint}'")
