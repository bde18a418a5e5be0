"""Failures injected into the fake ARM by a scenario or the sandbox's fault file: a request whose path matches a
fault's regex fails with its status and ARM error (or, with a `kind`, on the wire: see aksid.sandbox.wire_faults).

Specs are checked when they are set, so a typo fails there with the fault's number, not as a fault that never fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aksid.sandbox.arm.responses import ArmError
from aksid.sandbox.wire_faults import WireFault, parse_kind

FAULT_CODES = {
    400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
    409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "GatewayTimeout",
}


@dataclass
class Fault:
    pattern: re.Pattern[str]
    status: int
    code: str
    message: str
    headers: dict[str, str]
    method: str | None
    remaining: int | None  # None: every matching request fails
    wire: WireFault | None = None

    def as_error(self) -> ArmError:
        return ArmError(self.status, self.code, self.message, self.headers)


def compile_faults(faults: list[dict[str, Any]] | None) -> list[Fault]:
    """Every spec compiled, numbered from 1 in the errors."""
    return [compile_fault(fault, number) for number, fault in enumerate(faults or [], start=1)]


def compile_fault(fault: Any, number: int) -> Fault:
    if not isinstance(fault, dict) or not isinstance(fault.get("match"), str):
        raise ValueError(f"ARM fault #{number} needs a string 'match' (a regex)")
    wire = parse_kind(fault, f"ARM fault #{number}")
    if wire is None and not isinstance(fault.get("status"), int):
        raise ValueError(f"ARM fault #{number} needs an integer 'status' (or a 'kind' such as reset)")
    fault = {"status": 599, **fault}
    try:
        pattern = re.compile(fault["match"], re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"ARM fault #{number}: 'match' is not a valid regex ({exc})") from None
    status = fault["status"]
    times = fault.get("times")
    return Fault(
        pattern=pattern,
        status=status,
        code=str(fault.get("code") or FAULT_CODES.get(status, "InjectedFault")),
        message=str(fault.get("message") or f"Injected fault: the sandbox answers {status} for this request."),
        headers={str(name): str(value) for name, value in (fault.get("headers") or {}).items()},
        method=str(fault["method"]).upper() if fault.get("method") else None,
        remaining=int(times) if times is not None else None,
        wire=wire,
    )
