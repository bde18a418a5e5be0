"""Live TLS evidence: what a browser receives from the demo host.

The served chain comes from the handshake itself. Python 3.11 has no public peer-chain API, so we
use `SSLSocket._sslobj.get_unverified_chain()` (present in 3.11, public from 3.13) and fall back to
the leaf alone; the chain is judged later with `cryptography.x509.verification`, never here. The
handshake accepts any certificate on purpose: collecting evidence must not depend on trusting it.

Four entries, collected in parallel (each bounded by `timeout`): `handshake` (TLS 1.2+ as a browser
offers it: protocol, cipher, the certificates sent), `legacy` (whether TLS 1.0 / 1.1 handshakes still
complete), `http` (the plain-HTTP answer, redirect not followed) and `page` (the HTTPS page).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aksid.collect.budget import Budget, GaveUp, retrying
from aksid.config import is_loopback_host
from aksid.snapshot import error, ok

PAGE_LIMIT = 64 * 1024  # enough for the demo page; a huge body is not evidence we need
ENTRIES = ("handshake", "legacy", "http", "page")
USER_AGENT = "aksid/0.1"


class _CannotProbe(Exception):
    """This client cannot test what was asked (e.g. its OpenSSL has no TLS 1.0 at all): not the server's answer."""


def collect_tls(host: str, address: str, *, https_port: int = 443, http_port: int = 80,
                loopback_only: bool, timeout: float = 5.0, address_origin: str = "",
                budget: Budget | None = None) -> dict[str, dict[str, Any]]:
    """Entries `handshake` (chain, protocol), `legacy` (TLS 1.0/1.1 accepted?), `http` (redirect), `page`.

    `address_origin` (e.g. "A record served by the zone's name servers") goes into error reasons. A connection
    reset or timed out is tried again within `budget`; a refused one (nothing listening) is not."""
    budget = budget or Budget.for_probes(timeout)
    origin = f" ({address_origin})" if address_origin else ""
    if loopback_only and not is_loopback_host(address):
        reason = f"{host} is at {address}{origin}, which is outside the sandbox (network is loopback-only): not connected"
        return unavailable(reason)
    fetches: dict[str, tuple[Callable[[], Any], int]] = {
        "handshake": (lambda: _handshake(host, address, https_port, budget.timeout(timeout)), https_port),
        "legacy": (lambda: _legacy(host, address, https_port, budget.timeout(timeout)), https_port),
        "http": (lambda: _http(host, address, http_port, budget.timeout(timeout)), http_port),
        "page": (lambda: _page(host, address, https_port, budget.timeout(timeout)), https_port),
    }
    with ThreadPoolExecutor(max_workers=len(fetches), thread_name_prefix="aksid-tls") as pool:
        futures = {key: pool.submit(_entry, fetch, host, address, port, origin, budget)
                   for key, (fetch, port) in fetches.items()}
        return {key: future.result() for key, future in futures.items()}


def unavailable(reason: str) -> dict[str, dict[str, Any]]:
    """The TLS section when there is nothing to connect to; every entry says why."""
    return {key: error(reason) for key in ENTRIES}


def _transient(exc: BaseException) -> str | None:
    """Faults worth a second try: the connection reset or cut short, or no answer in time."""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)):
        return "reset"
    if isinstance(exc, http.client.IncompleteRead):
        return "truncated body"
    return None


def _entry(fetch: Callable[[], Any], host: str, address: str, port: int, origin: str, budget: Budget) -> dict[str, Any]:
    try:
        return ok(retrying(fetch, budget=budget, family="tls", endpoint=_endpoint(address, port), cause_of=_transient))
    except GaveUp as exc:
        return error(f"{host} at {_endpoint(address, port)}{origin}: {_describe(exc.last)} (after {exc.attempts} attempts)")
    except (OSError, http.client.HTTPException, _CannotProbe) as exc:
        return error(f"{host} at {_endpoint(address, port)}{origin}: {_describe(exc)}")


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    return str(exc) or type(exc).__name__


def _permissive_context(minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                        maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # evidence first; trust is TLS-001's judgement
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 / TLSv1_1 are deprecated names
        context.minimum_version, context.maximum_version = minimum, maximum
    return context


def _connect(host: str, address: str, port: int, timeout: float, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def _handshake(host: str, address: str, port: int, timeout: float) -> dict[str, Any]:
    with _connect(host, address, port, timeout, _permissive_context()) as tls:
        sslobj = getattr(tls, "_sslobj", None)
        chain_getter = getattr(tls, "get_unverified_chain", None) or getattr(sslobj, "get_unverified_chain", None)
        if chain_getter is not None:
            ders = [_der(cert) for cert in chain_getter() or []]
        else:
            leaf = tls.getpeercert(binary_form=True)
            ders = [leaf] if leaf else []
        return {"address": address, "port": port, "server_name": host, "protocol": tls.version(),
                "cipher": (tls.cipher() or ("", "", 0))[0], "chain": [ssl.DER_cert_to_PEM_cert(der) for der in ders]}


def _der(cert: Any) -> bytes:
    if isinstance(cert, bytes):
        return cert
    return cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]


def _legacy(host: str, address: str, port: int, timeout: float) -> dict[str, bool]:
    """Whether the server still completes a TLS 1.0 / 1.1 handshake (lowest security level on our side).

    A refusal is a TLS alert, or a reset of the connection; a client that cannot offer the version at
    all is not an answer from the server, so it makes the entry an error instead of a "refused"."""
    accepted = {}
    for name, version in (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1)):
        context = _permissive_context(version, version)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            with _connect(host, address, port, timeout, context):
                accepted[name] = True
        except ssl.SSLError as exc:
            if exc.reason == "NO_PROTOCOLS_AVAILABLE":
                raise _CannotProbe(f"this client's OpenSSL cannot offer {name}, so it cannot tell whether the "
                                   "server accepts it") from None
            accepted[name] = False  # an alert, or the connection closed mid-handshake (SSLEOFError)
        except ConnectionResetError:
            accepted[name] = False
    return accepted


def _request(sock: socket.socket, host: str) -> http.client.HTTPResponse:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response


def _http(host: str, address: str, port: int, timeout: float) -> dict[str, Any]:
    """One plain-HTTP request, redirects not followed: we want to see the redirect itself."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        response = _request(sock, host)
        return {"address": address, "port": port, "status": response.status, "location": response.getheader("Location"),
                "body_excerpt": response.read(PAGE_LIMIT).decode("utf-8", "replace")[:2000]}


def _page(host: str, address: str, port: int, timeout: float) -> dict[str, Any]:
    with _connect(host, address, port, timeout, _permissive_context()) as tls:
        response = _request(tls, host)
        return {"status": response.status, "hsts": response.getheader("Strict-Transport-Security"),
                "body": response.read(PAGE_LIMIT).decode("utf-8", "replace")}
