"""Workspace list, creation (also the first onboarding step), and the workspace dashboard."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit.service import record
from app.auth.models import User
from app.db import Database
from app.onboarding.steps import STEPS, next_step
from app.tenants.context import WorkspaceContext, workspaces_of
from app.tenants.permissions import ROLE_DESCRIPTIONS, permissions_of
from app.tenants.service import WorkspaceError, create_workspace
from app.web.forms import client_ip, rate_limited, read_form, retry_message
from app.web.guards import login_required, redirect, workspace_required
from app.web.templating import render
from app.workspaces.live import recent_activity


def suggest_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-")


async def home(request: Request) -> Response:
    from app.auth.middleware import signed_in

    if signed_in(request) is not None:
        return redirect(request, "/workspaces")
    return render(request, "home.html")


@login_required()
async def workspace_list(request: Request, user: User) -> Response:
    db: Database = request.app.state.db
    async with db.public_session() as session:
        workspaces = await workspaces_of(session, user)
    if not workspaces:
        return redirect(request, "/onboarding")
    return render(request, "workspaces/list.html", {"workspaces": workspaces})


def _form_context(values: dict[str, str], errors: dict[str, str], onboarding: bool) -> dict[str, object]:
    return {"values": values, "errors": errors, "onboarding": onboarding, "steps": STEPS, "current_step": "workspace"}


@login_required()
async def new_workspace_page(request: Request, user: User) -> Response:
    onboarding = request.url.path == "/onboarding"
    return render(request, "workspaces/new.html", _form_context({}, {}, onboarding))


@login_required()
async def create_workspace_view(request: Request, user: User) -> Response:
    onboarding = request.url.path == "/onboarding"
    form = await read_form(request)
    values = {"name": form.get("name", "").strip(), "slug": form.get("slug", "").strip().lower()}
    if not values["slug"]:
        values["slug"] = suggest_slug(values["name"])
    blocked = await rate_limited(request, ("workspace.create", str(user.id), 20, 3600))
    if blocked:
        context = _form_context(values, {"_form": retry_message(blocked)}, onboarding)
        return render(request, "workspaces/new.html", context, status_code=429)
    db: Database = request.app.state.db
    try:
        async with db.public_session() as session:
            workspace = await create_workspace(session, name=values["name"], slug=values["slug"], owner_id=user.id)
    except WorkspaceError as invalid:
        message = str(invalid)
        errors = {"slug" if "URL name" in message else "name": message}
        return render(request, "workspaces/new.html", _form_context(values, errors, onboarding), status_code=422)
    await record(db, workspace.id, "workspace.created", actor_id=user.id, ip=client_ip(request),
                 details={"name": workspace.name, "slug": workspace.slug})  # fmt: skip
    return redirect(request, next_step("workspace", workspace.slug) if onboarding else f"/w/{workspace.slug}")


@workspace_required()
async def dashboard(request: Request, context: WorkspaceContext) -> Response:
    items, cursor = await recent_activity(request.app.state.bus, context.workspace.id, permissions_of(context.role))
    return render(
        request,
        "workspaces/dashboard.html",
        {"roles": ROLE_DESCRIPTIONS, "activity_items": items, "activity_cursor": cursor},
    )


routes = [
    Route("/", home, methods=["GET"]),
    Route("/workspaces", workspace_list, methods=["GET"]),
    Route("/workspaces/new", new_workspace_page, methods=["GET"]),
    Route("/workspaces/new", create_workspace_view, methods=["POST"]),
    Route("/onboarding", new_workspace_page, methods=["GET"]),
    Route("/onboarding", create_workspace_view, methods=["POST"]),
    Route("/w/{slug}", dashboard, methods=["GET"]),
]
