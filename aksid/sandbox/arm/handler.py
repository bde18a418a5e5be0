"""The HTTP side of the fake ARM: the keep-alive handler `start_https_server` runs, and make_arm_handler.

It reads a request, drains its body (a write is refused, but the connection stays usable), logs one record per
request before the answer leaves, and writes the ArmResponse the pipeline decided, staged by a wire fault. How
the bytes leave (one send, Nagle off) is aksid.sandbox.https.KeepAliveHandler's.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from aksid.sandbox.arm.authn import Restricted, restricted_user
from aksid.sandbox.arm.pipeline import answer
from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse, error_response
from aksid.sandbox.arm.store import ArmStore
from aksid.sandbox.https import KeepAliveHandler
from aksid.sandbox.wire_faults import before_answer, write_body

_MAX_BODY_BYTES = 1 << 20


class ArmRequestHandler(KeepAliveHandler):
    """Serves one ArmStore; `make_arm_handler` binds the store, token, log and principals."""

    server_version = "aksid-sandbox-arm"
    timeout = 30  # an idle keep-alive connection releases its thread after this
    store: ArmStore
    token: str
    principals: tuple[Restricted, ...] = ()
    log: Callable[[dict[str, Any]], None]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: every request goes to the log callable instead, without headers."""

    def _serve(self) -> None:
        self._drain_body()
        request = ArmRequest.parse(self.command, self.path, self._base_url())
        failure: str | None = None
        try:
            response = answer(self.store, self.token, request, self.headers.get("Authorization"), self.principals)
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer, never hang the client
            failure = "".join(traceback.format_exception_only(exc)).strip()
            response = error_response(ArmError(500, "InternalServerError", "The sandbox ARM failed on this request."))
        record: dict[str, Any] = {
            "server": "arm",
            "method": self.command,
            "path": self.path,  # the token travels in a header only, never logged
            "status": response.status,
            "user_agent": self.headers.get("User-Agent", ""),
        }
        if failure:
            record["error"] = failure
        if response.wire is not None:
            record["fault"] = response.wire.kind
        user = restricted_user(self.headers.get("Authorization"), self.principals)
        if user:
            record["user"] = user
        self.log(record)  # before the answer leaves: a client holding it finds the request logged already
        if response.wire is None or not before_answer(self, response.wire):
            self._send(response)

    do_GET = do_HEAD = do_PUT = do_PATCH = do_POST = do_DELETE = do_OPTIONS = _serve

    def _base_url(self) -> str:
        # The server's own address, not the Host header: a nextLink must never send the token elsewhere.
        host, port = self.server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else str(host)
        return f"https://{host}:{port}"

    def _drain_body(self) -> None:
        """Read a request body so the next request on this connection starts at a request line."""
        length = self.headers.get("Content-Length", "0")
        if self.headers.get("Transfer-Encoding") or not length.isdigit() or int(length) > _MAX_BODY_BYTES:
            self.close_connection = True  # cannot skip it safely; answer, then hang up
            return
        if int(length):
            self.rfile.read(int(length))

    def _send(self, response: ArmResponse) -> None:
        body = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        request_id = str(uuid.uuid4())
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", request_id)
        self.send_header("x-ms-correlation-request-id", request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            write_body(self, response.wire, body)


def make_arm_handler(
    store: ArmStore, token: str, log: Callable[[dict[str, Any]], None], principals: tuple[Restricted, ...] = ()
) -> type[BaseHTTPRequestHandler]:
    """A handler class for `start_https_server`, accepting `Authorization: Bearer <token>` (allowed everything)
    and the tokens of `principals` (each request authorized by the principal's roles: 403 otherwise)."""
    if not token:
        raise ValueError("the ARM sandbox needs a non-empty bearer token")
    return type("ArmHandler", (ArmRequestHandler,), {"store": store, "token": token, "log": staticmethod(log),
                                                     "principals": tuple(principals)})
