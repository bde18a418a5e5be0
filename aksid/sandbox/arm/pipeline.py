"""One request through the fake ARM, independent of HTTP: authentication, authorization (restricted principals),
api-version, faults, the read-only refusal, then routing. Each step's refusal is an ArmError turned into ARM's
error response here, so the handler only ever writes an ArmResponse."""

from __future__ import annotations

from aksid.sandbox.arm.authn import Restricted, authenticate
from aksid.sandbox.arm.request import ArmRequest
from aksid.sandbox.arm.responses import ArmError, ArmResponse, error_response
from aksid.sandbox.arm.routing import route
from aksid.sandbox.arm.store import ArmStore

READ_METHODS = ("GET", "HEAD")


def answer(store: ArmStore, token: str, request: ArmRequest, authorization: str | None,
           principals: tuple[Restricted, ...] = ()) -> ArmResponse:
    """The whole request pipeline: authentication, authorization (restricted principals), api-version, faults,
    then routing."""
    try:
        principal = authenticate(authorization, token, store.tenant_id, principals)
        if principal is not None:
            principal.authorize(request)
        if not request.param("api-version"):
            raise ArmError(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
            )
        fault = store.take_fault(request.method, request.target)
        if fault is not None and fault.wire is None:
            raise fault.as_error()
        if request.method not in READ_METHODS:
            raise ArmError(
                405, "MethodNotAllowed", f"The sandbox ARM is read-only: {request.method} is not supported.",
                {"Allow": ", ".join(READ_METHODS)},
            )
        response = route(store.index(), request, store.page_size)
        response.wire = fault.wire if fault is not None else None
        return response
    except ArmError as error:
        return error_response(error)
