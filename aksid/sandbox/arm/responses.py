"""What the fake ARM answers: a response for the handler to write, and errors shaped as ARM shapes them.

Kept apart from the HTTP handler so the request pipeline (and the RBAC that refuses with 403) can produce
answers without knowing about sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aksid.sandbox.wire_faults import WireFault


class ArmError(Exception):
    """An ARM error response: status, `{"error": {"code", "message"}}` and extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class ArmResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    wire: WireFault | None = None  # delivered by the handler as the fault says (reset, hang, a cut body)


def error_response(error: ArmError) -> ArmResponse:
    return ArmResponse(error.status, {"error": {"code": error.code, "message": error.message}}, dict(error.headers))
