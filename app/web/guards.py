"""Route decorators: who may reach a handler. Every page and fragment goes through one of these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.auth.middleware import signed_in
from app.auth.models import User
from app.auth.principal import Principal
from app.sso.enforcement import needs_step_up
from app.tenants.context import MemberOf, WorkspaceContext, access_from, remember_workspace
from app.tenants.models import Workspace
from app.web.errors import WorkspaceForbidden
from app.web.forms import client_ip
from app.web.redirects import header_safe
from app.web.templating import is_htmx

Handler = Callable[[Request], Awaitable[Response]]
UserHandler = Callable[[Request, User], Awaitable[Response]]
WorkspaceHandler = Callable[[Request, WorkspaceContext], Awaitable[Response]]


def redirect(request: Request, url: str, status_code: int = 303) -> Response:
    """A redirect that also works for htmx requests (which follow ``HX-Redirect`` with a full load).

    A target that comes from the request must be a :func:`app.web.redirects.local_path` first; both headers are
    percent-encoded the same way here, so neither can ever hold what a header cannot.
    """
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": header_safe(url)})
    return RedirectResponse(header_safe(url), status_code=status_code)


def _target(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _to_login(request: Request) -> Response:
    return redirect(request, f"/login?next={quote(_target(request), safe='')}")


def _to_sso(request: Request, slug: str) -> Response:
    """To the workspace's single sign-on, then back here (a form's target is not a page: back to the workspace)."""
    target = _target(request) if request.method in ("GET", "HEAD") else f"/w/{slug}"
    return redirect(request, f"/sso?workspace={quote(slug, safe='')}&next={quote(target, safe='')}")


def switcher(memberships: list[MemberOf]) -> list[tuple[Workspace, str]]:
    """The workspace switcher's entries: every workspace of the person, with their role."""
    return [(entry.workspace, entry.membership.role) for entry in memberships]


def _requires_sso(memberships: list[MemberOf], workspace_id: str) -> bool:
    return any(entry.requires_sso for entry in memberships if entry.workspace.id == workspace_id)


def login_required(*, verified: bool = True) -> Callable[[UserHandler], Handler]:
    """Signed-in users only; with ``verified`` their e-mail address must be confirmed too."""

    def decorate(handler: UserHandler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            current = signed_in(request)
            if current is None:
                return _to_login(request)
            if verified and current.user.email_verified_at is None:
                return redirect(request, "/verify-email")
            request.state.switcher_workspaces = switcher(current.memberships)
            return await handler(request, current.user)

        return guarded

    return decorate


def workspace_required(permission: str = "workspace.view") -> Callable[[WorkspaceHandler], Handler]:
    """Members of the workspace named by the ``slug`` path parameter only; 404 for everyone else.

    A workspace that requires single sign-on sends a member whose session has not done its single sign-on
    there first (the step-up); their other workspaces never see that requirement.
    """

    def decorate(handler: WorkspaceHandler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            current = signed_in(request)
            if current is None:
                return _to_login(request)
            if current.user.email_verified_at is None:
                return redirect(request, "/verify-email")
            principal = Principal.session(current.user)
            slug = request.path_params["slug"]
            # The same resolution as the JSON API's (app.tenants.context), from the workspaces the authentication
            # middleware loaded with the session: no query of its own.
            access = access_from(current.memberships, principal, slug, ip=client_ip(request))
            request.state.switcher_workspaces = switcher(current.memberships)
            if access is None:
                raise HTTPException(404)
            context = access.context  # a session always has its person
            if _requires_sso(current.memberships, access.workspace.id):
                async with request.app.state.db.public_session() as db:
                    step_up = await needs_step_up(
                        db, workspace_id=access.workspace.id, role=access.role, session_id=current.session.id
                    )
                if step_up:
                    return _to_sso(request, context.workspace.slug)
            if access.needs_2fa:
                return redirect(request, f"/account/2fa?required={quote(context.workspace.slug)}")
            if current.user.last_workspace_id != access.workspace.id:
                # Signing in goes back to the workspace used last (app.tenants.context.start_page_for). Written only
                # when the person switches workspace: an ordinary page view costs no extra transaction.
                async with request.app.state.db.public_session() as db:
                    await remember_workspace(db, current.user, access.workspace.id)
            # Set before the permission check: a refusal still shows the workspace around it (and whom to ask).
            request.state.workspace = context
            if not context.can(permission):
                raise WorkspaceForbidden(context, permission)
            return await handler(request, context)

        # The route table test reads this to know which routes are workspace-scoped.
        guarded.workspace_scoped = True  # type: ignore[attr-defined]
        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate
