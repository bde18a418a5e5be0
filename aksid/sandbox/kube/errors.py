"""Error answers shaped like kube-apiserver's: `Status` documents and the ApiError that carries one."""

from __future__ import annotations

from typing import Any

from aksid.sandbox.kube.resources import KubeObject, Resource

_REASONS: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}


def status_document(code: int, message: str, reason: str | None = None,
                    details: dict[str, Any] | None = None) -> KubeObject:
    """A `Status` of Failure with the same fields, in the same order, as kube-apiserver writes them."""
    document: KubeObject = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message}
    reason = _REASONS.get(code, "") if reason is None else reason
    if reason:
        document["reason"] = reason
    if details is not None:
        document["details"] = details
    document["code"] = code
    return document


class ApiError(Exception):
    """An error answer; `document()` is the `Status` body."""

    def __init__(self, code: int, message: str, reason: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.details = details
        self.headers = headers or {}

    def document(self) -> KubeObject:
        return status_document(self.code, self.message, self.reason, self.details)


def error_details(resource: Resource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, f'{resource.qualified_plural} "{name}" not found', details=error_details(resource, name))


# k8s.io/apiserver's storage.OptimisticLockErrorMsg
OPTIMISTIC_LOCK_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(resource: Resource, name: str, why: str = OPTIMISTIC_LOCK_MESSAGE) -> ApiError:
    """409 Conflict, as apierrors.NewConflict words it: a write whose resourceVersion is not the stored one."""
    return ApiError(409, f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": {why}', "Conflict",
                    error_details(resource, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def no_such_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource", details={})


def invalid(kind: str, name: str, field_path: str, problem: str, cause: str) -> ApiError:
    """422 Invalid with one cause, as validation failures come back from the API server."""
    return ApiError(
        422, f'{kind} "{name}" is invalid: {field_path}: {problem}',
        details={"name": name, "kind": kind, "causes": [{"reason": cause, "message": problem, "field": field_path}]},
    )
