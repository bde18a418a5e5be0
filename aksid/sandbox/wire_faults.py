"""Faults below HTTP status codes, for the fake Kubernetes API and fake ARM (a fault's `kind`).

    status         answer `status` (the default; see kube/faults.py and armapi.py)
    reset          close the connection with a TCP RST before any answer (a load balancer dropping it)
    hang           accept the request and never answer (a stuck server; the connection stays open `seconds`)
    stall_body     send the headers and half of the body, wait `seconds`, then the rest (a slow body)
    truncate_body  send the headers (with the full Content-Length) and half of the body, then hang up

What a client sees is real: an ECONNRESET, a read timeout, an IncompleteRead, JSON cut in the middle.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

WIRE_KINDS = ("reset", "hang", "stall_body", "truncate_body")
KINDS = ("status", *WIRE_KINDS)
DEFAULT_SECONDS = 3600.0  # hang / stall: longer than any client waits


@dataclass(frozen=True)
class WireFault:
    kind: str
    seconds: float = DEFAULT_SECONDS


def parse_kind(spec: dict[str, Any], where: str) -> WireFault | None:
    """The wire fault of a fault spec, or None for a status fault; ValueError names what is wrong."""
    kind = str(spec.get("kind") or "status")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "status":
        return None
    try:
        seconds = float(spec.get("seconds", DEFAULT_SECONDS))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: seconds must be a number") from None
    return WireFault(kind, seconds)


def before_answer(handler: BaseHTTPRequestHandler, fault: WireFault) -> bool:
    """Act on a fault that leaves no answer at all; True when the request is done with (nothing to write)."""
    if fault.kind == "reset":
        abort_on_close(handler.connection)
        handler.close_connection = True
        return True
    if fault.kind == "hang":
        _sleep(fault.seconds)
        handler.close_connection = True
        return True
    return False


def abort_on_close(connection: socket.socket) -> None:
    """Closing the socket then sends a TCP RST, not a FIN: the peer sees ECONNRESET (SO_LINGER on, 0 s)."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def write_body(handler: BaseHTTPRequestHandler, fault: WireFault | None, body: bytes) -> None:
    """Write a response body (headers already sent), staged by a body fault."""
    if fault is None or fault.kind not in ("stall_body", "truncate_body") or len(body) < 2:
        handler.wfile.write(body)
        return
    half = len(body) // 2
    handler.wfile.write(body[:half])
    handler.wfile.flush()
    if fault.kind == "truncate_body":
        handler.close_connection = True
        return
    _sleep(fault.seconds)
    handler.wfile.write(body[half:])


def _sleep(seconds: float) -> None:
    # The server's handler threads are daemons: a sandbox stopped by PID does not wait for this.
    time.sleep(max(0.0, seconds))
