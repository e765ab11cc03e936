"""What the workspace pages with forms share (members, settings, API keys): showing the page, showing it again
with what was typed and why it was refused, and going back to it with a message after a change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.tenants.context import WorkspaceContext
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
        message: str,
        *,
        field: str = "_form",
        values: dict[str, str] | None = None,
        status_code: int = 422,
    ) -> Response:
        """The page again with ``message`` at ``field`` (``_form``: above the forms) and the typed ``values``."""
        return await self.show(request, context, values=values, errors={field: message}, status_code=status_code)

    def back(self, request: Request, context: WorkspaceContext, message: str, kind: str = "success") -> Response:
        """After a change: back to the page, with ``message`` as a toast."""
        return redirect_with_flash(request, self.url(context), message, kind)
