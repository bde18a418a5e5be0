"""The demo host on a real nginx: the edge of the cluster as ingress-nginx presents `hello.<domain>`.

One nginx master in the foreground (`daemon off`), listening on one loopback address (127.0.0.80 in
`healthy`) on two random high ports: HTTPS with the given chain, HSTS and the hello-kubernetes page; HTTP
answering `308 Permanent Redirect` to HTTPS, as ingress-nginx does for an Ingress with TLS.

Layout under `state_dir/web/`: `nginx.conf`, `tls/` (chain and key), `html/` (the page), `logs/`, `run/`
(pid file), `temp/` (nginx's temp paths). The compiled-in paths (`/var/lib/nginx`, `/var/log/nginx`,
`/run/nginx.pid`, `/etc/nginx`) are all overridden, so nothing is written outside `state_dir`.

A scenario's `tls:` section stages the edge faults (see `STAGING_KEYS`); the certificate faults are the
caller's choice of `chain_pem`/`key_pem` (a staging chain, another host's leaf, an expired leaf from
`make_expired_leaf`, a leaf other than the Certificate secret's).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aksid.config import is_loopback_host
from aksid.sandbox.processes import (
    BIND_ATTEMPTS,
    Daemon,
    Launcher,
    alive,
    free_ports,
    start_daemons,
    start_on_free_ports,
    stop_process,
)

HSTS = "max-age=31536000; includeSubDomains"  # ingress-nginx's default (older releases: 15724800)
# ingress-nginx's default ssl-ciphers for TLS 1.2 (ECDHE only: no dhparam is configured).
INGRESS_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
# OpenSSL 3 refuses TLS 1.0/1.1 at the default security level (their handshake signs with SHA-1/MD5).
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"
POD_NAME = "hello-kubernetes-7d9b8c6f5b-x2k4m"
NODE_NAME = "aks-nodepool1-31718369-vmss000000"

_LEAF_KEY_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                encipher_only=False, decipher_only=False)
STAGING_KEYS = {"tls10", "redirect", "serve_intermediates", "page"}
_PAGES = {"demo", "other"}


class WebSandboxError(RuntimeError):
    """The demo host could not be configured or started; the message says why."""


@dataclass(frozen=True)
class DemoWeb:
    pid: int
    address: str  # "127.0.0.80"
    https_port: int
    http_port: int


@dataclass(frozen=True)
class _Staging:
    tls10: bool = False  # also accept TLS 1.0 and 1.1
    redirect: bool = True  # HTTP -> 308 HTTPS; False: HTTP serves the page with 200
    serve_intermediates: bool = True  # False: the leaf only
    page: str = "demo"  # "other": nginx's default page instead of the demo app


# --- public API ---------------------------------------------------------------------------------


def start_nginx(
    state_dir: Path,
    address: str,
    host: str,
    chain_pem: str,
    key_pem: str,
    *,
    staging: dict[str, Any] | None = None,
    timeout: float = 10,
    name: str = "web",
) -> DemoWeb:
    """Start nginx for `host` on `address` in `state_dir/<name>/`; return once it answers HTTP."""
    staged = validate_staging(staging)
    _check_loopback(address)
    served_chain = _served_chain(chain_pem, key_pem, staged.serve_intermediates)
    binary = _find_nginx()
    root = state_dir.resolve() / name
    _refuse_if_running(root)
    _prepare(root, served_chain, key_pem, staged.page)
    deadline = time.monotonic() + timeout

    def start(ports: list[int], launch: Launcher) -> DemoWeb:
        https_port, http_port = ports
        conf = root / "nginx.conf"
        conf.write_text(_nginx_conf(root, address, host, https_port, http_port, staged), encoding="utf-8")
        logs = root / "logs"
        (process,) = start_daemons(
            Daemon(
                # -e: the error log from the very start (the compiled-in default is stderr / /var/log/nginx).
                "nginx", [binary, "-p", f"{root}/", "-c", str(conf), "-e", str(logs / "error.log")],
                log=logs / "nginx.out", cwd=root, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                # The master binds before it forks workers: ready once a worker answers.
                ready=lambda: _answers_http(address, http_port), ready_when=f"a worker answers HTTP on {address}:{http_port}",
                port_taken="Address already in use", logs=(logs / "error.log", logs / "nginx.out"), cause=_first_error,
            ),
            error=WebSandboxError, timeout=timeout, deadline=deadline, launch=launch)
        return DemoWeb(process.pid, address, https_port, http_port)

    return start_on_free_ports(lambda: free_ports([address], 2), start, error=WebSandboxError,
                               exhausted=f"nginx could not bind free ports on {address} in {BIND_ATTEMPTS} attempts")


def stop_nginx(pid: int) -> None:
    # SIGTERM is nginx's fast shutdown: the master stops its workers, removes its pid file and exits.
    stop_process(pid)


def make_expired_leaf(
    host: str,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKeyTypes,
    *,
    intermediates_pem: str = "",
    expired_days_ago: int = 1,
    validity_days: int = 90,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    key_type: str = "ec",
) -> tuple[str, str]:
    """A chain (leaf + `intermediates_pem`) whose leaf for `host` expired `expired_days_ago` days ago, and its key.

    Pebble cannot backdate, so sign with pebble's own issuing intermediate (aksid.sandbox.pebble.fetch_issuer)
    and pass the intermediates of a chain pebble issued: the leaf then chains to the pebble root exactly
    like a real one, and only its validity is wrong. `window` (not before, not after) replaces the default:
    a window inside the intermediate's own lifetime (which begins when pebble starts) makes a leaf that was
    trusted at some moment, so only its expiry is wrong; the window may end a moment from now (the caller
    waits until it has passed).
    """
    if not isinstance(issuer_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise WebSandboxError(f"the issuer key must be EC or RSA, not {type(issuer_key).__name__}")
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048))
    if window is None:
        not_after = dt.datetime.now(dt.UTC) - dt.timedelta(days=expired_days_ago)
        window = (not_after - dt.timedelta(days=validity_days), not_after)
    not_before, not_after = window
    if not not_before < not_after:
        raise WebSandboxError(f"the leaf's window must end after it begins, not {not_before} .. {not_after}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode() + intermediates_pem, key_pem.decode()


# --- staging and input checks -------------------------------------------------------------------


def validate_staging(staging: Mapping[str, Any] | None) -> _Staging:
    """Check the scenario's `tls:` section up front, so a typo fails here and not as an ignored key."""
    if staging is None:
        return _Staging()
    if not isinstance(staging, Mapping):
        raise WebSandboxError(f"tls: must be a mapping, not {type(staging).__name__}")
    unknown = sorted(set(staging) - STAGING_KEYS)
    if unknown:
        raise WebSandboxError(
            f"tls: unknown key(s) {', '.join(map(str, unknown))}; supported: {', '.join(sorted(STAGING_KEYS))}"
        )
    for key in ("tls10", "redirect", "serve_intermediates"):
        if key in staging and not isinstance(staging[key], bool):
            raise WebSandboxError(f"tls.{key} must be true or false, not {staging[key]!r}")
    page = staging.get("page", "demo")
    if page not in _PAGES:
        raise WebSandboxError(f"tls.page must be one of {', '.join(sorted(_PAGES))}, not {page!r}")
    return _Staging(tls10=staging.get("tls10", False), redirect=staging.get("redirect", True),
                    serve_intermediates=staging.get("serve_intermediates", True), page=page)


def _check_loopback(address: str) -> None:
    if not is_loopback_host(address):
        raise WebSandboxError(f"the demo host must listen on a loopback address (127.0.0.0/8), not '{address}'")


def _served_chain(chain_pem: str, key_pem: str, serve_intermediates: bool) -> str:
    """The PEM nginx serves; checks the key matches the leaf (else nginx would refuse to start, less clearly)."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except ValueError as exc:
        raise WebSandboxError(f"the certificate chain or key is not valid PEM: {exc}") from None
    if key.public_key() != certs[0].public_key():
        raise WebSandboxError(f"the private key does not belong to the leaf certificate {certs[0].subject.rfc4514_string()}")
    served = certs if serve_intermediates else certs[:1]
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in served)


def _refuse_if_running(root: Path) -> None:
    """Never wipe the directory of a live nginx (two demo hosts in one state dir need two names)."""
    try:
        pid = int((root / "run" / "nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return
    if not alive(pid):
        return  # stale pid file of a killed nginx
    raise WebSandboxError(f"an nginx (PID {pid}) still runs from {root}: stop it, or start this one with another name")


def _find_nginx() -> str:
    # /usr/sbin is often missing from PATH for non-root users; Debian installs nginx there.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    binary = shutil.which("nginx", path=path)
    if binary is None:
        raise WebSandboxError("nginx is not installed: apt-get install nginx-light (or nginx)")
    return binary


# --- files --------------------------------------------------------------------------------------


def _prepare(root: Path, chain: str, key_pem: str, page: str) -> None:
    if any(c in str(root) for c in ';{}"\'\n\\ $#'):
        raise WebSandboxError(f"the state directory {root} contains characters nginx.conf cannot hold unquoted")
    if root.exists():
        shutil.rmtree(root)
    for sub in ("tls", "html", "logs", "run", "temp"):
        (root / sub).mkdir(parents=True)
    (root / "tls" / "tls.crt").write_text(chain, encoding="utf-8")
    key_path = root / "tls" / "tls.key"
    key_path.write_text(key_pem, encoding="utf-8")
    key_path.chmod(0o600)
    (root / "html" / "index.html").write_text(_demo_page() if page == "demo" else _default_nginx_page(), encoding="utf-8")


def _demo_page() -> str:
    """hello-kubernetes 1.10's page (views/home.handlebars) as the app renders it in namespace `hello`."""
    rows = [("namespace", "hello"), ("pod", POD_NAME), ("node", f"{NODE_NAME} (Linux 5.15.0-1057-azure)")]
    table = "\n".join(
        f"    <tr>\n      <th>{name}:</th>\n      <td>{html.escape(value)}</td>\n    </tr>" for name, value in rows
    )
    return f"""<!DOCTYPE html>
<html>
<head>
    <title>Hello Kubernetes!</title>
    <link rel="stylesheet" type="text/css" href="/css/main.css">
</head>
<body>

  <div class="main">
    <img src="/images/kubernetes.png"/>
    <div class="content">
      <div id="message">
  Hello world!
</div>
<div id="info">
  <table>
{table}
  </table>
</div>
    </div>
  </div>

</body>
</html>
"""


def _default_nginx_page() -> str:
    """Debian's nginx welcome page: what a host shows when the Ingress does not route to the app."""
    return """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


def _nginx_conf(root: Path, address: str, host: str, https_port: int, http_port: int, staged: _Staging) -> str:
    protocols = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3" if staged.tls10 else "TLSv1.2 TLSv1.3"
    ciphers = LEGACY_CIPHERS if staged.tls10 else INGRESS_CIPHERS
    # ingress-nginx answers with the app's headers (Express) behind its own; HSTS only on HTTPS.
    app_headers = '        add_header X-Powered-By "Express" always;' if staged.page == "demo" else ""
    http_body = (
        "        return 308 https://$host$request_uri;" if staged.redirect
        else f"        root {root}/html;\n        index index.html;\n{app_headers}"
    )
    return f"""# aksid demo host: {host} on {address} (generated; see aksid/sandbox/web.py)
{_user_directive()}
daemon off;
master_process on;
worker_processes 1;
pid {root}/run/nginx.pid;
lock_file {root}/run/nginx.lock;
error_log {root}/logs/error.log notice;

events {{
    worker_connections 256;
}}

http {{
    default_type text/html;
    charset utf-8;
    server_tokens off;
    access_log {root}/logs/access.log;
    # Every compiled-in temp path points at /var/lib/nginx: keep them all in the state dir.
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    # Hosts the cert-manager model adds in provision mode (controllers/edge_hosts.py), reloaded by SIGHUP.
    include {root}/hosts/*.conf;

    server {{
        listen {address}:{https_port} ssl http2;
        server_name {host};
        ssl_certificate {root}/tls/tls.crt;
        ssl_certificate_key {root}/tls/tls.key;
        ssl_protocols {protocols};
        ssl_ciphers {ciphers};
        ssl_prefer_server_ciphers on;
        ssl_session_cache shared:SSL:1m;
        add_header Strict-Transport-Security "{HSTS}" always;
        root {root}/html;
        index index.html;
{app_headers}
    }}

    server {{
        listen {address}:{http_port};
        server_name {host};
{http_body}
    }}
}}
"""


def _user_directive() -> str:
    """As root, nginx would run its workers as `nobody`, who cannot read a private state dir (pytest's
    tmp_path is 0700) and so could not serve the page; the sandbox is loopback-only and throw-away, so
    workers run as root too. As another user, nginx cannot switch users: no directive."""
    return "user root;" if os.geteuid() == 0 else ""


# --- start-up -----------------------------------------------------------------------------------


def _answers_http(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            sock.sendall(b"HEAD / HTTP/1.0\r\nHost: probe\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def _first_error(log: str) -> str:
    """nginx's first [emerg]/[crit]/[alert] line: the cause of a failed start; "" if none."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return next((line for line in lines if "[emerg]" in line or "[crit]" in line or "[alert]" in line), "")
