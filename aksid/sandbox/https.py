"""Serve a request handler over HTTPS on loopback, in a background thread."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aksid.config import is_loopback_host


class LoopbackHTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    # Clients (kubectl, urllib3) open several connections at once.
    request_queue_size = 64


def start_https_server(
    handler_cls: type[BaseHTTPRequestHandler],
    cert_path: Path,
    key_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
) -> LoopbackHTTPSServer:
    """Start serving; the caller stops it with `.shutdown()` and `.server_close()`."""
    if not is_loopback_host(host):
        raise ValueError(f"the sandbox listens on loopback only, not on {host}")
    server = LoopbackHTTPSServer((host, port), handler_cls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    # The handshake happens on first read, in the request's own thread: a client that connects and
    # stays silent must not stall the accepting thread for everyone else.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    # A short poll interval: shutdown() waits for it, and `sandbox down` should not take seconds.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"https-{handler_cls.__name__}", daemon=True)
    thread.start()
    return server
