"""One error body for the whole JSON API: ``{"error": {"code", "message", "details"}}``.

Handlers raise :class:`ApiError`, and services their refusals (``app.errors``); the operation wrapper
(``app.api.operations``) turns either into the body, services' through :func:`api_error_of`, the one mapping.
Errors raised before an operation runs (unknown path, wrong method, the CSRF check) come from
``app.web.errors.error_response``, which answers with the same shape for every path under ``/api/``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from app.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, TooManyRequests

# status -> (code, message) used when a handler does not say more.
DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed."),
    401: ("authentication_required", "Sign in, or send an API key as “Authorization: Bearer …”."),
    403: ("forbidden", "Your role in this workspace does not allow this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the request body as application/json."),
    422: ("validation_error", "The request is not valid."),
    429: ("rate_limited", "Too many requests."),
    500: ("internal_error", "Something went wrong. The error has been logged; please try again."),
    503: ("service_unavailable", "A backing service cannot be reached right now; try again shortly."),
}


class ApiError(Exception):
    """An answer other than success; ``details`` is a JSON object with machine-readable specifics."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_message = DEFAULTS.get(status, ("error", "Error."))
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_json(error: ApiError) -> Response:
    response = JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status)
    response.headers.update(error.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def validation_error(errors: list[dict[str, str]], message: str = "The request is not valid.") -> ApiError:
    """422 with ``details.errors``: one ``{field, message}`` per problem."""
    return ApiError(422, message, code="validation_error", details={"errors": errors})


def from_pydantic(error: ValidationError) -> ApiError:
    """A pydantic failure as a 422 naming each field by its dotted location (``emails.0``; ``body`` for the
    whole body, e.g. when it is not JSON)."""
    items = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(part) for part in problem["loc"])
        items.append({"field": location or "body", "message": problem["msg"]})
    return validation_error(items)


def api_error_of(error: ServiceError) -> ApiError:
    """A service's refusal as the API answers it: the one mapping from ``app.errors`` to statuses and codes."""
    message = error.message or None
    if isinstance(error, NotFound):
        return ApiError(404, message, code=error.code)
    if isinstance(error, Forbidden):
        return ApiError(403, message, code=error.code)
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return ApiError(429, message, code=error.code, headers=headers)
    if isinstance(error, Conflict):
        return ApiError(409, message, code=error.code)
    if isinstance(error, Invalid) and error.code is None and set(error.errors) != {"_form"}:
        items = [{"field": field, "message": text} for field, text in error.errors.items()]
        return validation_error(items)
    # Refused, Invalid for the whole form, and any other refusal: a business rule said no.
    return ApiError(422, message, code=error.code or "invalid_request")
