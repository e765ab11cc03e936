"""What the workspace pages with forms share (members, settings, API keys): showing the page, showing it again
with what was typed and why it was refused, and going back to it with a message after a change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Invalid, ServiceError
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.flash import flash
from app.web.guards import redirect
from app.web.templating import render

# A page's own template context; ``values`` are the submitted form's (None: show the form fresh).
PageData = Callable[[Request, WorkspaceContext, dict[str, str] | None], Awaitable[dict[str, Any]]]


def redirect_with_flash(request: Request, url: str, message: str, kind: str = "success") -> Response:
    """A redirect (``app.web.guards.redirect``) whose target shows ``message`` as a toast."""
    response = redirect(request, url)
    flash(request, response, message, kind)
    return response


@dataclass(frozen=True)
class WorkspacePage:
    """A page at ``/w/<slug>/<path>`` rendered from ``template``, whose forms post back to it."""

    template: str
    path: str
    data: PageData
    # The status of a "not found" refusal (``app.web.errors.page_status``): a page that lists what its forms
    # name shows such a refusal as any refused form (422) unless it says otherwise.
    not_found: int = 422

    def url(self, context: WorkspaceContext) -> str:
        return f"/w/{context.workspace.slug}/{self.path}"

    async def show(
        self,
        request: Request,
        context: WorkspaceContext,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        page = await self.data(request, context, values)
        page["errors"] = errors or {}
        return render(request, self.template, page, status_code=status_code)

    async def refuse(
        self,
        request: Request,
        context: WorkspaceContext,
        refusal: ServiceError | str,
        *,
        field: str = "_form",
        values: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> Response:
        """The page again with why (at ``field``; ``_form``: above the forms) and the typed ``values``.

        A service's refusal brings its status (``page_status``) and, if it is ``Invalid``, its own fields."""
        if isinstance(refusal, str):
            errors, status = {field: refusal}, status_code or 422
        else:
            errors = {field: refusal.message}
            if isinstance(refusal, Invalid):
                errors = {field if key == "_form" else key: text for key, text in refusal.errors.items()}
            status = status_code or page_status(refusal, not_found=self.not_found)
        return await self.show(request, context, values=values, errors=errors, status_code=status)

    def back(self, request: Request, context: WorkspaceContext, message: str, kind: str = "success") -> Response:
        """After a change: back to the page, with ``message`` as a toast."""
        return redirect_with_flash(request, self.url(context), message, kind)
