"""A read-only fake Azure Resource Manager that the real azure-mgmt-* clients accept.

Resources are ARM JSON documents (`id`, `name`, `type`, usually `properties`) exactly as ARM
returns them; everything the server answers is derived from their ids:

* GET by id (paths are matched case-insensitively, responses keep the stored casing);
* collections: a URL lists the resources whose id minus its last segment equals it, plus the
  subscription-wide form `/subscriptions/<s>/providers/<ns>/<type>` and the DNS `/all` and
  `/recordsets` record-set lists;
* Microsoft.Authorization: role assignments with ARM's scope semantics (`principalId eq`,
  `assignedTo()`, `atScope()`), role definitions that are global (found by GUID from any scope);
* paging with an absolute `nextLink` back to this server, at `page_size` items a page;
* ARM's error bodies and status codes; writes are refused with 405;
* fault injection: a fault whose regex matches the request makes it fail with a chosen status.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode

from aksid.sandbox.wire_faults import WireFault, before_answer, parse_kind, write_body

Key = tuple[str, ...]
"""A resource id or request path as lowercased, percent-decoded segments."""

DEFAULT_PAGE_SIZE = 2
_MAX_BODY_BYTES = 1 << 20
_READ_METHODS = ("GET", "HEAD")
_AUTHORIZATION_NS = "microsoft.authorization"
_ROLE_ASSIGNMENTS = "roleassignments"
_ROLE_DEFINITIONS = "roledefinitions"
_ROLE_DEFINITION_TYPE = f"{_AUTHORIZATION_NS}/{_ROLE_DEFINITIONS}"
_ROLE_ASSIGNMENT_TYPE = f"{_AUTHORIZATION_NS}/{_ROLE_ASSIGNMENTS}"
_DNS_ZONE_TYPES = ("dnszones", "privatednszones")
_RECORD_SET_LISTS = ("all", "recordsets")
_NOT_FOUND_HELP = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"

_FAULT_CODES = {
    400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
    409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "GatewayTimeout",
}

# OData string literal: quotes inside are doubled.
_ODATA_STRING = r"'((?:[^']|'')*)'"
_ASSIGNMENT_CLAUSE = re.compile(
    rf"^(?:(?P<at>atScope\(\))|principalId\s+eq\s+{_ODATA_STRING}|assignedTo\({_ODATA_STRING}\))$", re.IGNORECASE
)
_DEFINITION_FILTER = re.compile(rf"^\s*(roleName|type)\s+eq\s+{_ODATA_STRING}\s*$", re.IGNORECASE)


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


def _error_response(error: ArmError) -> ArmResponse:
    return ArmResponse(error.status, {"error": {"code": error.code, "message": error.message}}, dict(error.headers))


# --------------------------------------------------------------------------- ids and paths


def id_key(resource_id: str) -> Key:
    """The lookup key of a stored id; empty segments (`//`) are ignored as ARM does."""
    return tuple(part.lower() for part in resource_id.split("/") if part)


def _path_segments(path: str) -> tuple[str, ...]:
    # Decode per segment so an encoded slash can never split one (the SDKs quote names, e.g. `@`).
    return tuple(unquote(part) for part in path.split("/") if part)


def _last_providers(key: Key) -> int | None:
    """Index of the last `providers` segment; what follows it is `<namespace>/<type>/<name>/...`."""
    for index in range(len(key) - 1, -1, -1):
        if key[index] == "providers":
            return index
    return None


def _is_collection(key: Key) -> bool:
    """ARM paths alternate type/name: an odd number of segments after the namespace is a list."""
    providers = _last_providers(key)
    if providers is None:  # /subscriptions, /subscriptions/<s>/resourceGroups
        return len(key) % 2 == 1
    after_namespace = len(key) - providers - 2
    return after_namespace > 0 and after_namespace % 2 == 1


def _is_at_or_above(scope: Key, target: Key) -> bool:
    return target[: len(scope)] == scope


def _is_record_set_list(key: Key) -> bool:
    return len(key) >= 3 and key[-3] in _DNS_ZONE_TYPES and key[-1] in _RECORD_SET_LISTS


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class _Stored:
    key: Key
    type: str  # lowercased
    raw: dict[str, Any]


@dataclass
class _Fault:
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


class _Index:
    """One immutable generation of resources; `ArmStore.reset` swaps in a new one atomically."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.items: list[_Stored] = []
        self.by_key: dict[Key, _Stored] = {}
        self.subscriptions: set[str] = set()
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}  # (sub, rg) -> implied resource group
        for number, resource in enumerate(resources, start=1):
            self._add(_validated(resource, number))

    def _add(self, resource: dict[str, Any]) -> None:
        key = id_key(resource["id"])
        if key in self.by_key:
            raise ValueError(f"ARM resource id {resource['id']} is stored twice (ids are case-insensitive)")
        stored = _Stored(key, resource["type"].lower(), resource)
        self.items.append(stored)
        self.by_key[key] = stored
        if len(key) >= 2 and key[0] == "subscriptions":
            self.subscriptions.add(key[1])
        if len(key) >= 4 and key[0] == "subscriptions" and key[2] == "resourcegroups":
            self.groups.setdefault((key[1], key[3]), _implied_group(resource))

    def of_type(self, resource_type: str) -> list[_Stored]:
        return [item for item in self.items if item.type == resource_type]


def _validated(resource: Any, number: int) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise ValueError(f"ARM resource #{number} is not a mapping")
    for name in ("id", "name", "type"):
        if not isinstance(resource.get(name), str) or not resource[name]:
            raise ValueError(f"ARM resource #{number} ({resource.get('id', '?')}) needs a non-empty string '{name}'")
    if not resource["id"].startswith("/"):
        raise ValueError(f"ARM resource id {resource['id']} must start with '/'")
    # A JSON round trip copies the document (callers may keep mutating theirs) and proves it serialisable.
    return json.loads(json.dumps(resource))


def _implied_group(member: dict[str, Any]) -> dict[str, Any]:
    """The resource group a member lives in, for GETs of a group nobody stored explicitly."""
    parts = [part for part in member["id"].split("/") if part][:4]
    document: dict[str, Any] = {
        "id": "/" + "/".join(parts),
        "name": parts[3],
        "type": "Microsoft.Resources/resourceGroups",
        "properties": {"provisioningState": "Succeeded"},
    }
    if isinstance(member.get("location"), str):
        document["location"] = member["location"]
    return document


def _compiled_fault(fault: Any, number: int) -> _Fault:
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
    return _Fault(
        pattern=pattern,
        status=status,
        code=str(fault.get("code") or _FAULT_CODES.get(status, "InjectedFault")),
        message=str(fault.get("message") or f"Injected fault: the sandbox answers {status} for this request."),
        headers={str(name): str(value) for name, value in (fault.get("headers") or {}).items()},
        method=str(fault["method"]).upper() if fault.get("method") else None,
        remaining=int(times) if times is not None else None,
        wire=wire,
    )


def _tenant_of(resources: Iterable[dict[str, Any]]) -> str | None:
    """The first tenantId the resources mention (identities and clusters carry one)."""
    for resource in resources:
        for holder in (resource.get("properties"), resource.get("identity")):
            if isinstance(holder, dict) and isinstance(holder.get("tenantId"), str):
                return holder["tenantId"]
    return None


class ArmStore:
    """Thread-safe store of ARM resources (dicts with at least `id`, `name`, `type`).

    `faults` are dicts `{"match": regex, "status": int, "code"?, "message"?, "headers"?, "method"?,
    "times"?}`: a request whose path (with query, raw or percent-decoded) matches the regex, and whose
    method matches if given, fails with that ARM error; `times` limits how many requests fail.
    """

    def __init__(
        self,
        resources: list[dict[str, Any]],
        faults: list[dict[str, Any]] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        tenant_id: str | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self._tenant_id = tenant_id
        self._lock = threading.Lock()
        self._index = _Index([])
        self._faults: list[_Fault] = []
        self.tenant_id = "common"
        self.reset(resources, faults)

    def reset(self, resources: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None) -> None:
        """Replace every resource and fault; requests in flight finish against the old generation."""
        index = _Index(resources)
        compiled = [_compiled_fault(fault, number) for number, fault in enumerate(faults or [], start=1)]
        with self._lock:
            self._index = index
            self._faults = compiled
            self.tenant_id = self._tenant_id or _tenant_of(resources) or "common"

    def index(self) -> _Index:
        with self._lock:
            return self._index

    # What the controller models (external-dns writing record sets) use; each swaps in a new generation.

    def resources(self) -> list[dict[str, Any]]:
        """Copies of every stored resource."""
        with self._lock:
            return [copy.deepcopy(item.raw) for item in self._index.items]

    def put(self, resource: dict[str, Any]) -> None:
        """Create or replace one resource (by id, compared as ARM compares ids)."""
        key = id_key(resource["id"])
        with self._lock:
            kept = [item.raw for item in self._index.items if item.key != key]
            self._index = _Index([*kept, copy.deepcopy(resource)])

    def remove(self, resource_id: str) -> None:
        """Delete one resource and what lives under it; a missing one is no error."""
        key = id_key(resource_id)
        with self._lock:
            self._index = _Index([item.raw for item in self._index.items if item.key[:len(key)] != key])

    def set_faults(self, faults: list[dict[str, Any]] | None) -> None:
        """Replace the faults only (the sandbox's fault file, see aksid.sandbox.fault_control)."""
        compiled = [_compiled_fault(fault, number) for number, fault in enumerate(faults or [], start=1)]
        with self._lock:
            self._faults = compiled

    def take_fault(self, method: str, path: str) -> _Fault | None:
        """The first fault matching this request, counting down its `times`."""
        candidates = (path, unquote(path))
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != method:
                    continue
                if not any(fault.pattern.search(text) for text in candidates):
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                return fault
        return None


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ArmRequest:
    method: str
    target: str  # path with query, as received
    path: str
    segments: tuple[str, ...]  # percent-decoded, original casing
    key: Key
    query: list[tuple[str, str]]
    base_url: str  # https://host:port of this server, for nextLinks

    @classmethod
    def parse(cls, method: str, target: str, base_url: str) -> ArmRequest:
        # Not urlsplit: it would read a `//subscriptions/...` path (a scope with a leading slash) as a host.
        path, _, query = target.partition("#")[0].partition("?")
        segments = _path_segments(path)
        return cls(
            method=method.upper(),
            target=target,
            path=path,
            segments=segments,
            key=tuple(part.lower() for part in segments),
            query=parse_qsl(query, keep_blank_values=True),
            base_url=base_url,
        )

    def param(self, name: str) -> str | None:
        """A query parameter, its name matched case-insensitively as ARM does."""
        for key, value in self.query:
            if key.lower() == name.lower():
                return value
        return None


class Restricted(Protocol):
    """A principal whose requests are authorized (aksid.sandbox.arm_authz.ArmPrincipal)."""

    token: str
    user: str  # logged with each of its requests

    def authorize(self, request: ArmRequest) -> None: ...


def answer(store: ArmStore, token: str, request: ArmRequest, authorization: str | None,
           principals: tuple[Restricted, ...] = ()) -> ArmResponse:
    """The whole request pipeline: authentication, authorization (restricted principals), api-version, faults,
    then routing."""
    try:
        principal = _authenticate(authorization, token, store.tenant_id, principals)
        if principal is not None:
            principal.authorize(request)
        if not request.param("api-version"):
            raise ArmError(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
            )
        fault = store.take_fault(request.method, request.target)
        if fault is not None and fault.wire is None:
            raise fault.as_error()
        if request.method not in _READ_METHODS:
            raise ArmError(
                405, "MethodNotAllowed", f"The sandbox ARM is read-only: {request.method} is not supported.",
                {"Allow": ", ".join(_READ_METHODS)},
            )
        response = _route(store.index(), request, store.page_size)
        response.wire = fault.wire if fault is not None else None
        return response
    except ArmError as error:
        return _error_response(error)


def _authenticate(authorization: str | None, token: str, tenant: str,
                  principals: tuple[Restricted, ...] = ()) -> Restricted | None:
    """None for the sandbox's own token (allowed everything); the principal a restricted token belongs to."""
    if not authorization:
        raise _unauthenticated(
            tenant, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthenticated(
            tenant, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            "The authentication failed because of an invalid 'Authorization' header.",
        )
    offered = presented.strip().encode()
    if hmac.compare_digest(offered, token.encode()):
        return None
    for principal in principals:
        if hmac.compare_digest(offered, principal.token.encode()):
            return principal
    invalid = "The access token is invalid."
    raise _unauthenticated(tenant, "InvalidAuthenticationToken", invalid, invalid)


def _restricted_user(authorization: str | None, principals: tuple[Restricted, ...]) -> str | None:
    """The user of the restricted principal a request came from, for the request log."""
    offered = (authorization or "").strip().partition(" ")[2].strip().encode()
    return next((p.user for p in principals if offered and hmac.compare_digest(offered, p.token.encode())), None)


def _unauthenticated(tenant: str, code: str, message: str, description: str) -> ArmError:
    # error="invalid_token" (not "insufficient_claims") makes azure-core's challenge policy give up
    # at once and surface the 401 instead of asking the credential again.
    challenge = (
        f'Bearer authorization_uri="https://login.microsoftonline.com/{tenant}", '
        f'error="invalid_token", error_description="{description}"'
    )
    return ArmError(401, code, message, {"WWW-Authenticate": challenge})


# --------------------------------------------------------------------------- routing


def _route(index: _Index, request: ArmRequest, page_size: int) -> ArmResponse:
    authorization = _authorization_route(request.key)
    if authorization is not None:
        providers, kind = authorization
        if kind == _ROLE_DEFINITIONS:
            return _role_definitions(index, request, providers, page_size)
        return _role_assignments(index, request, providers, page_size)
    return _resource_or_collection(index, request, page_size)


def _authorization_route(key: Key) -> tuple[int, str] | None:
    """(index of `providers`, kind) when the path is Microsoft.Authorization's, below any scope."""
    providers = _last_providers(key)
    if providers is None or len(key) - providers not in (3, 4) or key[providers + 1] != _AUTHORIZATION_NS:
        return None
    kind = key[providers + 2]
    return (providers, kind) if kind in (_ROLE_ASSIGNMENTS, _ROLE_DEFINITIONS) else None


def _resource_or_collection(index: _Index, request: ArmRequest, page_size: int) -> ArmResponse:
    key = request.key
    if key in index.by_key:
        return ArmResponse(200, index.by_key[key].raw)
    _require_containers(index, request)
    if len(key) == 4 and key[0] == "subscriptions" and key[2] == "resourcegroups":
        return ArmResponse(200, index.groups[(key[1], key[3])])  # implied by its members
    if _is_collection(key):
        return _paged(request, [item.raw for item in _collection(index, key)], page_size)
    raise _resource_not_found(request)


def _require_containers(index: _Index, request: ArmRequest) -> None:
    """404 for the outermost missing container, with the code ARM uses for it."""
    key, segments = request.key, request.segments
    if len(key) >= 2 and key[0] == "subscriptions":
        if key[1] not in index.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segments[1]}' could not be found.")
        if len(key) >= 4 and key[2] == "resourcegroups" and (key[1], key[3]) not in index.groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{segments[3]}' could not be found.")
    providers = _last_providers(key)
    # A nested type (dnsZones/<zone>/A, .../all) needs its top-level parent to exist first.
    if providers is not None and len(key) - providers - 2 >= 3 and key[: providers + 4] not in index.by_key:
        raise ArmError(
            404, "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource '{segments[providers + 3]}' not found.",
        )


def _resource_not_found(request: ArmRequest) -> ArmError:
    key, segments = request.key, request.segments
    providers = _last_providers(key)
    if providers is not None and len(key) - providers == 6 and key[providers + 2] in _DNS_ZONE_TYPES:
        # A record set: Azure DNS answers with its own code and wording, not ARM's.
        return ArmError(
            404, "NotFound",
            f"The resource record '{segments[-1]}' does not exist in resource group '{segments[3]}' "
            f"of subscription '{segments[1]}'.",
        )
    resource = "/".join(segments[providers + 1:]) if providers is not None else "/".join(segments)
    where = f" under resource group '{segments[3]}'" if len(key) >= 4 and key[2] == "resourcegroups" else ""
    return ArmError(404, "ResourceNotFound", f"The Resource '{resource}'{where} was not found. {_NOT_FOUND_HELP}")


def _collection(index: _Index, key: Key) -> list[_Stored]:
    if _is_record_set_list(key):  # every record set of the zone, whatever its type
        zone = key[:-1]
        return [item for item in index.items if len(item.key) == len(zone) + 2 and item.key[: len(zone)] == zone]
    if len(key) == 3 and key[0] == "subscriptions" and key[2] == "resourcegroups":
        return _resource_groups(index, key[1])
    if len(key) == 5 and key[0] == "subscriptions" and key[2] == "providers":  # list_by_subscription
        resource_type = f"{key[3]}/{key[4]}"
        return [item for item in index.items if item.key[:2] == key[:2] and item.type == resource_type]
    return [item for item in index.items if item.key[:-1] == key]


def _resource_groups(index: _Index, subscription: str) -> list[_Stored]:
    """Stored resource groups, then those only implied by the resources inside them."""
    listed = {(key[1], key[3]): item for key, item in index.by_key.items() if len(key) == 4 and key[2] == "resourcegroups"}
    for (sub, group), implied in index.groups.items():
        if (sub, group) not in listed:
            key = id_key(implied["id"])
            listed[(sub, group)] = _Stored(key, implied["type"].lower(), implied)
    return [item for (sub, _group), item in listed.items() if sub == subscription]


# --------------------------------------------------------------------------- Microsoft.Authorization


def _role_definitions(index: _Index, request: ArmRequest, providers: int, page_size: int) -> ArmResponse:
    definitions = index.of_type(_ROLE_DEFINITION_TYPE)
    if len(request.key) == providers + 4:
        # Role definitions are tenant-global: the GUID alone identifies one, whatever the scope asked.
        wanted = request.key[-1]
        for item in definitions:
            if item.key[-1] == wanted:
                return ArmResponse(200, item.raw)
        raise ArmError(
            404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{request.segments[-1]}' does not exist."
        )
    keep = _definition_filter(request.param("$filter"))
    return _paged(request, [item.raw for item in definitions if keep(item.raw)], page_size)


def _definition_filter(expression: str | None) -> Callable[[dict[str, Any]], bool]:
    if not expression or not expression.strip():
        return lambda _definition: True
    match = _DEFINITION_FILTER.match(expression)
    if match is None:
        raise _unsupported_filter(expression, "'roleName eq '{value}'' or 'type eq '{value}''")
    field_name = "roleName" if match.group(1).lower() == "rolename" else "type"
    wanted = match.group(2).replace("''", "'").lower()
    return lambda definition: str((definition.get("properties") or {}).get(field_name, "")).lower() == wanted


@dataclass(frozen=True)
class _AssignmentFilter:
    at_scope_only: bool = False
    principal: str | None = None


def _assignment_filter(expression: str | None) -> _AssignmentFilter:
    if not expression or not expression.strip():
        return _AssignmentFilter()
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
    return _AssignmentFilter(at_scope, principals.pop() if principals else None)


def _unsupported_filter(expression: str, supported: str) -> ArmError:
    return ArmError(400, "UnsupportedQuery", f"The filter '{expression}' is not supported. Supported filters are {supported}.")


def _role_assignments(index: _Index, request: ArmRequest, providers: int, page_size: int) -> ArmResponse:
    if len(request.key) == providers + 4:
        if request.key in index.by_key:
            return ArmResponse(200, index.by_key[request.key].raw)
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{request.segments[-1]}' is not found.")
    scope = request.key[:providers]
    wanted = _assignment_filter(request.param("$filter"))
    chosen = [item.raw for item in index.of_type(_ROLE_ASSIGNMENT_TYPE) if _assignment_matches(item, scope, wanted)]
    return _paged(request, chosen, page_size)


def _assignment_matches(item: _Stored, scope: Key, wanted: _AssignmentFilter) -> bool:
    properties = item.raw.get("properties") or {}
    if wanted.principal is not None and str(properties.get("principalId", "")).lower() != wanted.principal:
        return False
    assigned_at = _assignment_scope(item)
    if _is_at_or_above(assigned_at, scope):
        return True
    # ARM also returns assignments below the scope unless atScope() asked for at-or-above only.
    return not wanted.at_scope_only and _is_at_or_above(scope, assigned_at)


def _assignment_scope(item: _Stored) -> Key:
    scope = (item.raw.get("properties") or {}).get("scope")
    if isinstance(scope, str):
        return id_key(scope)
    providers = _last_providers(item.key)
    return item.key[:providers] if providers is not None else ()


# --------------------------------------------------------------------------- paging


def _paged(request: ArmRequest, items: list[dict[str, Any]], page_size: int) -> ArmResponse:
    token = request.param("$skiptoken") or "0"
    if not token.isdigit():
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.")
    start = int(token)
    body: dict[str, Any] = {"value": items[start : start + page_size]}
    if start + page_size < len(items):
        body["nextLink"] = _next_link(request, start + page_size)
    return ArmResponse(200, body)


def _next_link(request: ArmRequest, start: int) -> str:
    # Keep every parameter ($filter above all): the SDKs replay the link, only swapping api-version.
    params = [(name, value) for name, value in request.query if name.lower() != "$skiptoken"]
    params.append(("$skiptoken", str(start)))
    path = re.sub("/{2,}", "/", request.path)
    return f"{request.base_url}{path}?{urlencode(params, quote_via=quote, safe='')}"


# --------------------------------------------------------------------------- HTTP


class _ArmHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
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
            response = _error_response(ArmError(500, "InternalServerError", "The sandbox ARM failed on this request."))
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
        user = _restricted_user(self.headers.get("Authorization"), self.principals)
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
    return type("ArmHandler", (_ArmHandler,), {"store": store, "token": token, "log": staticmethod(log),
                                               "principals": tuple(principals)})
