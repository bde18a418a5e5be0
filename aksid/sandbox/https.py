"""Serve a request handler over HTTPS on loopback, in a background thread; the base of the sandbox's keep-alive
HTTP handlers, so that how a response leaves the server is decided in one place."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aksid.config import is_loopback_host


class KeepAliveHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 handler whose responses leave at once, connection after connection.

    http.server writes the headers in one send and the body in another. With Nagle's algorithm on, the second
    (small) send waits for the client's ACK of the first, which the client delays: ~40 ms on every keep-alive
    request, and the server, not the client, sets the pace. So the response is buffered (http.server flushes
    `wfile` once the request is handled: headers and body leave in one send) and Nagle is off (a response larger
    than the buffer still leaves in several sends; the last must not wait). Bytes that must reach the client
    before the request is handled are flushed where they are written: the interim 100 Continue here, half a body
    before a wire fault's stall or hang-up in aksid.sandbox.wire_faults.
    """

    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def handle_expect_100(self) -> bool:
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the client waits for it before it sends the body
        return accepted


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
