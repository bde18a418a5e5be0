"""Failures a scenario injects into the fake API server (`kube_faults`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aksid.sandbox.kube.errors import ApiError
from aksid.sandbox.wire_faults import WireFault, parse_kind

_DEFAULT_MESSAGES: dict[int, str] = {
    403: "forbidden: the request was denied (injected fault)",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


@dataclass
class Fault:
    """A scenario-injected failure: requests whose path (with query) matches answer `status`.

    Keys: match (regex, searched in the raw and the percent-decoded path), status, and optionally
    message, reason, headers (e.g. Retry-After), method (only this HTTP method) and times (only the
    first N matching requests; the fault then stops applying). With `kind` (reset, hang, stall_body,
    truncate_body; see wire_faults.py) and optionally `seconds`, the fault is on the wire, not a status.
    """

    pattern: re.Pattern[str]
    status: int
    message: str
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    times: int | None = None
    wire: WireFault | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec, dict) or "match" not in spec:
            raise ValueError(f"a kube fault needs 'match': {spec!r}")
        wire = parse_kind(spec, "a kube fault")
        if wire is None and "status" not in spec:
            raise ValueError(f"a kube fault needs 'status' (or a 'kind' such as reset): {spec!r}")
        try:
            pattern = re.compile(str(spec["match"]))
        except re.error as exc:
            raise ValueError(f"the kube fault match {spec['match']!r} is not a valid regex: {exc}") from None
        status = int(spec.get("status", 599))
        if not 400 <= status <= 599:
            raise ValueError(f"the kube fault status must be an HTTP error code (4xx/5xx), not {status}")
        times = spec.get("times")
        return cls(
            pattern=pattern, status=status,
            message=str(spec.get("message") or _DEFAULT_MESSAGES.get(status, f"injected fault ({status})")),
            reason=spec.get("reason"), headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            method=str(spec["method"]).upper() if spec.get("method") else None,
            times=None if times is None else int(times), wire=wire,
        )

    def applies(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        return bool(self.pattern.search(path) or self.pattern.search(unquote(path)))

    def error(self) -> ApiError:
        details: dict[str, Any] | None = None
        retry_after = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None)
        if retry_after is not None and retry_after.strip().isdigit():
            details = {"retryAfterSeconds": int(retry_after)}  # as the API server reports throttling
        elif self.status in (429, 503):
            details = {}
        return ApiError(self.status, self.message, self.reason, details, dict(self.headers))
