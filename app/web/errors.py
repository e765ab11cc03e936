"""Every error is a real page (or a JSON error body under /api), never a stack trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.errors import DEFAULTS as API_ERROR_DEFAULTS
from app.errors import Conflict, Forbidden, NotFound, ServiceError, TooManyRequests
from app.web.templating import templates

logger = logging.getLogger("marid.web")

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def page_status(error: ServiceError, *, not_found: int = 404) -> int:
    """The status of a page that shows a service's refusal (``app.errors``): the one mapping for pages.

    ``not_found``: a page that lists what was named (the members page) says "not found" as a refused form, 422.
    """
    if isinstance(error, NotFound):
        return not_found
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, TooManyRequests):
        return 429
    if isinstance(error, Conflict):
        return 409
    return 422


def error_response(request: Request, status: int, message: str | None = None) -> Response:
    title = TITLES.get(status, "Error")
    if request.url.path.startswith("/llm/"):
        # The LLM gateway's callers are OpenAI clients: its errors have OpenAI's shape, whoever raised them.
        kind = "invalid_request_error" if status < 500 else "server_error"
        error = {"message": message or title, "type": kind, "param": None, "code": None}
        return JSONResponse({"error": error}, status_code=status)
    if request.url.path.startswith("/api/"):
        # The same codes as the API's own errors (app.api.errors), whoever raised it.
        code = API_ERROR_DEFAULTS.get(status, (title.lower().replace(" ", "_"), ""))[0]
        return JSONResponse({"error": {"code": code, "message": message or title, "details": {}}}, status_code=status)
    context = {"status": status, "title": title, "message": message}
    response: Response = templates.TemplateResponse(request, "errors/error.html", context, status_code=status)
    return response


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail != TITLES.get(exc.status_code) else None
    response = error_response(request, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "The error has been logged. Please try again.")


async def service_unavailable(request: Request, exc: Exception) -> Response:
    """A backing service (PostgreSQL, Redis) could not be reached: say so, and that trying again helps."""
    logger.warning("backing service unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    response = error_response(request, 503, "Marid cannot reach one of its services right now. Try again in a minute.")
    response.headers["Retry-After"] = "30"
    return response
