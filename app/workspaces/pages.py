"""Workspace pages: the start page, the list and "new workspace" (onboarding), the dashboard, and the settings
page (name, the 2FA requirement, and the danger zone: transfer, leave, delete)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.auth.middleware import signed_in
from app.auth.models import User
from app.db import Database
from app.errors import ServiceError
from app.llm.demo import offer_demo_model
from app.members.service import list_members, transfer_ownership
from app.onboarding import checklist
from app.onboarding.steps import STEPS, next_step
from app.tenants.context import MemberOf, WorkspaceContext, person_actor, start_page_for, workspaces_of
from app.tenants.permissions import permissions_of
from app.web.forms import client_ip, give_back, rate_limited, read_form, retry_message
from app.web.guards import login_required, redirect, workspace_required
from app.web.idempotency import submit_once
from app.web.pages import WorkspacePage, redirect_with_flash
from app.web.state import bus_of, changes, db_of
from app.web.templating import is_htmx, render
from app.web.timezones import zone_of
from app.workspaces import service
from app.workspaces.live import activity_cursor, feed_and_checks
from app.workspaces.service import MAX_NAME, WorkspaceError, create_workspace


def suggest_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-")


async def home(request: Request) -> Response:

    current = signed_in(request)
    if current is not None:
        async with db_of(request).public_session() as db:
            return redirect(request, await start_page_for(db, current.user))
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
async def slug_preview(request: Request, user: User) -> Response:
    """The form's live preview of the URL name (htmx, as the name or URL name is typed): where the workspace
    will live, or why it cannot, with a free alternative when it is taken."""
    if not is_htmx(request):
        return redirect(request, "/workspaces/new")  # a fragment of that form, nothing to see on its own
    params = request.query_params
    typed = params.get("slug", "").strip().lower()[:64]
    slug = typed or suggest_slug(params.get("name", "")[:200])
    context: dict[str, object] = {"slug": slug, "typed": bool(typed), "problem": "", "alternative": "", "refused": ""}
    if slug:
        try:
            service.validate_slug(slug)
        except WorkspaceError as invalid:
            context["problem"] = invalid.message
        else:
            async with db_of(request).public_session() as db:
                if await service.slug_taken(db, slug):
                    context["problem"] = f"“{slug}” is taken."
                    context["alternative"] = await service.free_slug(db, slug)
    return render(request, "workspaces/_slug_preview.html", context, block=None)


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
    rule = ("workspace.create", str(user.id), 20, 3600)

    async def act() -> Response:
        blocked = await rate_limited(request, rule)
        if blocked:
            context = _form_context(values, {"_form": retry_message(blocked, "new workspaces")}, onboarding)
            return render(request, "workspaces/new.html", context, status_code=429)
        try:
            async with changes(request) as session:
                workspace = await create_workspace(
                    session,
                    name=values["name"],
                    slug=values["slug"],
                    owner_id=user.id,
                    actor=person_actor(user, client_ip(request)),
                )
        except WorkspaceError as invalid:
            await give_back(request, rule)  # a refused name or URL name is not a workspace created
            return render(
                request, "workspaces/new.html", _form_context(values, invalid.errors, onboarding), status_code=422
            )
        await offer_demo_model(db_of(request), bus_of(request), request.app.state.settings, workspace.id)
        return redirect(request, next_step("workspace", workspace.slug) if onboarding else f"/w/{workspace.slug}")

    return await submit_once(request, form, scope=f"workspace:{user.id}", act=act)


@workspace_required()
async def dashboard(request: Request, context: WorkspaceContext) -> Response:
    permissions = permissions_of(context.role)
    zone = zone_of(request, context.user.time_zone)
    # The feed alone when it asks for itself again (marid.js, after its stream reconnected).
    block = "activity" if is_htmx(request) and request.headers.get("HX-Target") == "activity" else "content"
    db = db_of(request)
    cursor = activity_cursor()
    # The feed and the checklist's checks of the workspace's own tables: one statement, one round trip.
    probes = checklist.workspace_probes() if block == "content" else ()
    async with db.direct(context.workspace.id) as connection:
        items, answered = await feed_and_checks(connection, permissions, probes, zone=zone)
    steps: list[checklist.ItemState] = []
    if block == "content":
        # Items registered as functions (none today) still get a tenant session of their own.
        steps = await checklist.progress(
            db, context.workspace, permissions, member=_member_of(request, context), answered=answered
        )
    open_steps = [step for step in steps if step.available and not step.done]
    return render(
        request,
        "workspaces/dashboard.html",
        {
            "role_summary": ROLE_SUMMARIES.get(context.role, ""),
            "activity_items": items,
            "activity_cursor": cursor,
            "checklist": steps if open_steps else [],
            "checklist_done": sum(1 for step in steps if step.done),
            "checklist_total": sum(1 for step in steps if step.available),
        },
        block=block,
    )


def _member_of(request: Request, context: WorkspaceContext) -> MemberOf | None:
    """The viewer's membership of the workspace, as the authentication middleware loaded it."""
    current = signed_in(request)
    memberships = current.memberships if current is not None else []
    return next((entry for entry in memberships if entry.workspace.id == context.workspace.id), None)


# How the dashboard says the reader's role, in a sentence of its own (the members page has the full table).
ROLE_SUMMARIES = {
    "owner": "You own this workspace: you can do everything here, including deleting it.",
    "admin": "You are an admin: you manage members, settings and the audit log, and run agents.",
    "member": "You are a member: you create and run agents, pipelines and swarms.",
    "viewer": "You are a viewer: you can see everything here, and change nothing.",
}


async def _data(request: Request, context: WorkspaceContext, values: dict[str, str] | None) -> dict[str, Any]:
    others: list[Any] = []
    if context.can("ownership.transfer"):
        async with db_of(request).public_session() as db:
            others = [m for m in await list_members(db, context.workspace.id) if m.user_id != context.user.id]
    return {"values": values or {"name": context.workspace.name}, "others": others, "max_name": MAX_NAME}


SETTINGS_PAGE = WorkspacePage("settings/index.html", "settings", _data)


@workspace_required("workspace.view")
async def settings_page(request: Request, context: WorkspaceContext) -> Response:
    return await SETTINGS_PAGE.show(request, context)


@workspace_required("settings.edit")
async def save_settings(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"name": form.get("name", ""), "require_2fa": form.get("require_2fa", "")}
    try:
        async with changes(request) as session:
            _, changed = await service.save_settings(
                session,
                workspace_id=context.workspace.id,
                actor=context.actor,
                name=values["name"],
                require_2fa=values["require_2fa"] in {"on", "true", "1", "yes"},
            )
    except ServiceError as refused:
        return await SETTINGS_PAGE.refuse(request, context, refused, values=values)
    if not changed:
        return SETTINGS_PAGE.back(request, context, "Nothing to save: the settings were already like this.", "info")
    return SETTINGS_PAGE.back(request, context, "Settings saved.")


@workspace_required("ownership.transfer")
async def transfer(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with changes(request) as session:
            await transfer_ownership(
                session, workspace_id=context.workspace.id, actor=context.actor, target_id=form.get("member", "")
            )
    except ServiceError as refused:
        return await SETTINGS_PAGE.refuse(request, context, refused, field="transfer")
    return SETTINGS_PAGE.back(request, context, "Ownership transferred. You are now an admin.")


@workspace_required("workspace.delete")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with changes(request) as session:
            workspace = await service.delete_with_confirmation(
                session,
                workspace_id=context.workspace.id,
                actor=context.actor,
                confirmation=form.get("confirm_name", ""),
            )
    except ServiceError as refused:
        return await SETTINGS_PAGE.refuse(request, context, refused, field="delete")
    return redirect_with_flash(request, "/workspaces", f"The workspace {workspace.name} was deleted.")


routes: list[BaseRoute] = [
    Route("/", home, methods=["GET"]),
    Route("/workspaces", workspace_list, methods=["GET"]),
    Route("/workspaces/new", new_workspace_page, methods=["GET"]),
    Route("/workspaces/new", create_workspace_view, methods=["POST"]),
    Route("/workspaces/slug-preview", slug_preview, methods=["GET"]),
    Route("/onboarding", new_workspace_page, methods=["GET"]),
    Route("/onboarding", create_workspace_view, methods=["POST"]),
    Route("/w/{slug}", dashboard, methods=["GET"]),
    Route("/w/{slug}/settings", settings_page, methods=["GET"]),
    Route("/w/{slug}/settings", save_settings, methods=["POST"]),
    Route("/w/{slug}/settings/transfer", transfer, methods=["POST"]),
    Route("/w/{slug}/settings/delete", delete, methods=["POST"]),
]
