"""The OData `$filter` expressions the Authorization SDK sends, parsed exactly as far as ARM supports them.

Role definitions: `roleName eq '<name>'` or `type eq '<type>'`. Role assignments: `atScope()`,
`principalId eq '<id>'` and `assignedTo('<id>')`, joined by `and`. Anything else is refused with ARM's 400
UnsupportedQuery rather than ignored: an ignored filter would list more than the client asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aksid.sandbox.arm.responses import ArmError

# OData string literal: quotes inside are doubled.
_ODATA_STRING = r"'((?:[^']|'')*)'"
_ASSIGNMENT_CLAUSE = re.compile(
    rf"^(?:(?P<at>atScope\(\))|principalId\s+eq\s+{_ODATA_STRING}|assignedTo\({_ODATA_STRING}\))$", re.IGNORECASE
)
_DEFINITION_FILTER = re.compile(rf"^\s*(roleName|type)\s+eq\s+{_ODATA_STRING}\s*$", re.IGNORECASE)


def definition_filter(expression: str | None) -> Callable[[dict[str, Any]], bool]:
    if not expression or not expression.strip():
        return lambda _definition: True
    match = _DEFINITION_FILTER.match(expression)
    if match is None:
        raise _unsupported_filter(expression, "'roleName eq '{value}'' or 'type eq '{value}''")
    field_name = "roleName" if match.group(1).lower() == "rolename" else "type"
    wanted = match.group(2).replace("''", "'").lower()
    return lambda definition: str((definition.get("properties") or {}).get(field_name, "")).lower() == wanted


@dataclass(frozen=True)
class AssignmentFilter:
    at_scope_only: bool = False
    principal: str | None = None


def assignment_filter(expression: str | None) -> AssignmentFilter:
    if not expression or not expression.strip():
        return AssignmentFilter()
    at_scope, principals = False, set()
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        match = _ASSIGNMENT_CLAUSE.match(clause.strip())
        if match is None:
            raise _unsupported_filter(expression, "'atScope()', 'principalId eq '{value}'' or 'assignedTo('{value}')'")
        if match.group("at"):
            at_scope = True
        else:
            # assignedTo() also covers the principal's groups; the sandbox has no group membership.
            principals.add((match.group(2) or match.group(3) or "").replace("''", "'").lower())
    if len(principals) > 1:
        raise _unsupported_filter(expression, "a single principal")
    return AssignmentFilter(at_scope, principals.pop() if principals else None)


def _unsupported_filter(expression: str, supported: str) -> ArmError:
    return ArmError(400, "UnsupportedQuery", f"The filter '{expression}' is not supported. Supported filters are {supported}.")
