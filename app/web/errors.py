"""Every error is a real page (or a JSON error body under /api), never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.errors import DEFAULTS as API_ERROR_DEFAULTS
from app.errors import Conflict, Forbidden, NotFound, ServiceError, TooManyRequests
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import PERMISSIONS
from app.web.templating import templates

logger = logging.getLogger("marid.web")

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "There is nothing at this address",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


# What the error page says under its title when the handler gave no message of its own.
DEFAULT_MESSAGES = {
    404: "The page may have moved, or the link may be mistyped. If someone sent it to you, ask them for a new one.",
    405: "That address does not take this kind of request.",
}


class WorkspaceForbidden(HTTPException):
    """A member whose role lacks ``permission`` in the workspace they are in: the 403 page keeps the workspace
    around it and names who can help (its owner and admins)."""

    def __init__(self, context: WorkspaceContext, permission: str) -> None:
        super().__init__(403, "Your role in this workspace does not allow this.")
        self.context = context
        self.permission = permission


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


def error_response(
    request: Request, status: int, message: str | None = None, extra: dict[str, Any] | None = None
) -> Response:
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
    context = {"status": status, "title": title, "message": message or DEFAULT_MESSAGES.get(status), **(extra or {})}
    # Inside a workspace (a refusal there), the page keeps the workspace's layout: its sidebar is the way on.
    template = "errors/workspace_error.html" if getattr(request.state, "workspace", None) else "errors/error.html"
    response: Response = templates.TemplateResponse(request, template, context, status_code=status)
    return response


async def _whom_to_ask(request: Request, forbidden: WorkspaceForbidden) -> list[str]:
    """The names of the workspace's owner and admins (those who can change a role), owner first."""
    from app.members.service import list_members

    async with request.app.state.db.public_session() as db:
        members = await list_members(db, forbidden.context.workspace.id)
    helpers = [
        member
        for member in members
        if member.role in ("owner", "admin") and member.user_id != forbidden.context.user.id
    ]
    helpers.sort(key=lambda member: member.role != "owner")
    return [f"{member.display_name or member.email} ({member.role})" for member in helpers[:4]]


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, WorkspaceForbidden) and not request.url.path.startswith("/api/"):
        message = f"Your role in {exc.context.workspace.name} ({exc.context.role}) does not allow this."
        extra = {"ask": await _whom_to_ask(request, exc), "needed": PERMISSIONS.get(exc.permission, ("",))[0]}
        return error_response(request, 403, message, extra)
    # Starlette's own reason phrases ("Not Found") would only repeat the title less clearly.
    phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else ""
    detail = exc.detail if exc.detail and exc.detail not in (TITLES.get(exc.status_code), phrase) else None
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
