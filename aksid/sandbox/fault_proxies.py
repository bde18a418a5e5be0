"""Fault-injecting proxies in front of the sandbox's real servers (knotd for DNS, nginx for TLS/HTTP).

knotd and nginx are real and cannot be told to fail once; a proxy on another loopback port can. A profile
that points one name server (or the demo host's port) at a proxy sees that server fail as staged:

    DnsFaultProxy  UDP and TCP;  kinds: drop (no answer: a timeout), servfail, refused
    TcpFaultProxy  any TCP;      kinds: reset (RST at once), hang (accept, never answer)

Each fault applies to the next `times` queries/connections (None: all); the rest pass through. The proxies
listen on 127.0.0.0/8 only, forward only to the loopback upstream they were given, and stop with `close()`.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.message
import dns.rcode

from aksid.sandbox.wire_faults import abort_on_close

_DNS_KINDS = ("drop", "servfail", "refused")
_TCP_KINDS = ("reset", "hang")


@dataclass
class ProxyFault:
    kind: str
    times: int | None = None


class _Faults:
    def __init__(self, kinds: tuple[str, ...]) -> None:
        self._kinds = kinds
        self._lock = threading.Lock()
        self._faults: list[ProxyFault] = []
        self.applied = 0

    def set(self, faults: list[dict[str, Any]]) -> None:
        parsed = []
        for spec in faults:
            if spec.get("kind") not in self._kinds:
                raise ValueError(f"a proxy fault's kind must be one of {', '.join(self._kinds)}: {spec!r}")
            parsed.append(ProxyFault(str(spec["kind"]), spec.get("times")))
        with self._lock:
            self._faults = parsed

    def take(self) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.times is None or fault.times > 0:
                    if fault.times is not None:
                        fault.times -= 1
                    self.applied += 1
                    return fault.kind
        return None


def _loopback(address: tuple[str, int]) -> tuple[str, int]:
    if not address[0].startswith("127."):
        raise ValueError(f"the sandbox's proxies forward to loopback only, not {address[0]}")
    return address


class DnsFaultProxy:
    def __init__(self, upstream: tuple[str, int], listen: str = "127.0.0.1") -> None:
        self.upstream = _loopback(upstream)
        self.faults = _Faults(_DNS_KINDS)
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((_loopback((listen, 0))[0], 0))
        self.address: tuple[str, int] = self._udp.getsockname()
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(self.address)  # the same port over TCP, as a DNS server listens
        self._tcp.listen(16)
        self._closed = threading.Event()
        threading.Thread(target=self._serve_udp, daemon=True, name="aksid-dns-proxy").start()
        _accept_in_background(self._tcp, self._closed, self._reply_tcp, "aksid-dns-proxy")

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.faults.set(faults)

    def _answer(self, wire: bytes, over_tcp: bool) -> bytes | None:
        kind = self.faults.take()
        if kind == "drop":
            return None
        if kind in ("servfail", "refused"):
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL if kind == "servfail" else dns.rcode.REFUSED)
            return response.to_wire()
        return self._forward(wire, over_tcp)

    def _forward(self, wire: bytes, over_tcp: bool) -> bytes | None:
        try:
            if over_tcp:
                with socket.create_connection(self.upstream, timeout=5) as upstream:
                    upstream.sendall(struct.pack("!H", len(wire)) + wire)
                    length = struct.unpack("!H", _recv_exactly(upstream, 2))[0]
                    return _recv_exactly(upstream, length)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
                upstream.settimeout(5)
                upstream.sendto(wire, self.upstream)
                return upstream.recv(65535)
        except OSError:
            return None  # the upstream is down: the client sees what it would see, no answer

    def _serve_udp(self) -> None:
        while not self._closed.is_set():
            try:
                wire, client = self._udp.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self._reply_udp, args=(wire, client), daemon=True).start()

    def _reply_udp(self, wire: bytes, client: Any) -> None:
        answer = self._answer(wire, over_tcp=False)
        if answer is not None:
            try:
                self._udp.sendto(answer, client)
            except OSError:
                pass

    def _reply_tcp(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(10)
                length = struct.unpack("!H", _recv_exactly(connection, 2))[0]
                answer = self._answer(_recv_exactly(connection, length), over_tcp=True)
                if answer is not None:
                    connection.sendall(struct.pack("!H", len(answer)) + answer)
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        for sock in (self._udp, self._tcp):
            sock.close()


class TcpFaultProxy:
    """`spare_legacy_tls`: connections opening with a TLS 1.0/1.1 ClientHello (the suite's legacy-protocol probe,
    for which a reset is the server's answer, not a fault) pass through without taking a fault."""

    def __init__(self, upstream: tuple[str, int], listen: str = "127.0.0.1", spare_legacy_tls: bool = False) -> None:
        self.upstream = _loopback(upstream)
        self.spare_legacy_tls = spare_legacy_tls
        self.faults = _Faults(_TCP_KINDS)
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((_loopback((listen, 0))[0], 0))
        self._server.listen(32)
        self.address: tuple[str, int] = self._server.getsockname()
        self._closed = threading.Event()
        _accept_in_background(self._server, self._closed, self._handle, "aksid-tcp-proxy")

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.faults.set(faults)

    def _handle(self, connection: socket.socket) -> None:
        kind = None if self.spare_legacy_tls and _legacy_client_hello(connection) else self.faults.take()
        if kind == "reset":
            abort_on_close(connection)
            connection.close()
            return
        if kind == "hang":
            self._closed.wait(3600)
            connection.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            connection.close()
            return
        upstream.settimeout(None)
        for sock in (connection, upstream):
            # A relay forwards whatever one recv got: with Nagle on, a small piece behind unacknowledged bytes
            # waits for the peer's delayed ACK (~40 ms a TLS handshake or a response cut in two).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pipe, args=(upstream, connection), daemon=True).start()
        _pipe(connection, upstream)
        connection.close()
        upstream.close()

    def close(self) -> None:
        self._closed.set()
        self._server.close()


def _accept_in_background(server: socket.socket, closed: threading.Event,
                          handle: Callable[[socket.socket], None], name: str) -> None:
    """Accept connections until the server socket is closed, each handled on its own daemon thread."""
    def accept() -> None:
        while not closed.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()
    threading.Thread(target=accept, daemon=True, name=name).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _legacy_client_hello(connection: socket.socket) -> bool:
    """Peek at the first record: a handshake (22) whose ClientHello offers at most TLS 1.1 (0x0302)."""
    connection.settimeout(5)
    try:
        head = connection.recv(11, socket.MSG_PEEK | socket.MSG_WAITALL)
    except OSError:
        return False
    finally:
        connection.settimeout(None)
    return len(head) == 11 and head[0] == 22 and head[5] == 1 and (head[9], head[10]) in ((3, 1), (3, 2))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the peer closed the connection")
        data += chunk
    return data
