"""Sending invitations (members page and onboarding step 2) and the invitation link an invitee opens."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth.middleware import signed_in
from app.auth.models import User
from app.errors import ServiceError
from app.mail.jobs import deliver_mail
from app.members.invitations import (
    INVITATION_DAYS,
    MAX_INVITES_AT_ONCE,
    InvitationView,
    accept,
    address_has_account,
    find_invitation,
    proves_mailbox,
    send_invitations,
    split_addresses,
)
from app.members.service import MemberError
from app.onboarding.steps import STEPS, next_step
from app.tenants.context import WorkspaceContext, person_actor, workspaces_of
from app.tenants.permissions import assignable_roles
from app.web.errors import page_status
from app.web.forms import client_ip, rate_limited, read_form, retry_message
from app.web.guards import login_required, workspace_required
from app.web.idempotency import submit_once
from app.web.pages import redirect_with_flash
from app.web.state import changes, db_of, limiter_of, settings_of
from app.web.templating import render


async def send(request: Request, context: WorkspaceContext, emails: str, role: str) -> int:
    """Invite the addresses typed in ``emails`` as ``role``; returns how many were sent (a refusal raises)."""
    async with changes(request) as session:
        created = await send_invitations(
            session,
            settings_of(request),
            limiter_of(request),
            workspace_id=context.workspace.id,
            actor=context.actor,
            addresses=split_addresses(emails),
            role=role,
        )
    await request.app.state.jobs.enqueue(deliver_mail)
    return len(created)


def sent_message(count: int) -> str:
    return "Invitation sent." if count == 1 else f"{count} invitations sent."


# --- onboarding step 2 ---------------------------------------------------------------------------------------


def _onboarding_context(context: WorkspaceContext, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "steps": STEPS,
        "current_step": "invite",
        "values": values,
        "errors": errors,
        "roles": assignable_roles(context.role),
        "max_invites": MAX_INVITES_AT_ONCE,
        "skip_url": next_step("invite", context.workspace.slug),
    }


@workspace_required("members.invite")
async def onboarding_invite_page(request: Request, context: WorkspaceContext) -> Response:
    return render(request, "onboarding/invite.html", _onboarding_context(context, {"role": "member"}, {}))


@workspace_required("members.invite")
async def onboarding_invite(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"emails": form.get("emails", ""), "role": form.get("role", "member")}

    async def act() -> Response:
        try:
            count = await send(request, context, values["emails"], values["role"])
        except ServiceError as refused:
            page = _onboarding_context(context, values, {"emails": refused.message})
            return render(request, "onboarding/invite.html", page, status_code=page_status(refused))
        return redirect_with_flash(request, next_step("invite", context.workspace.slug), sent_message(count))

    return await submit_once(request, form, scope=f"invite:{context.workspace.id}:{context.user.id}", act=act)


# --- the invitation link -------------------------------------------------------------------------------------


def _page(
    request: Request,
    view: InvitationView | None,
    token: str,
    error: str | None,
    status_code: int = 200,
    *,
    proof: str = "",
    has_account: bool | None = None,
) -> Response:
    current = signed_in(request)
    user = current.user if current else None
    mismatch = bool(
        user and view and not view.problem and user.email.lower() != view.invitation.email.lower() and not error
    )
    target = quote(f"/invite/{token}", safe="")
    signup_url = f"/signup?next={target}"
    if view is not None and proof:
        # The mailed link proved the address: sign-up through it needs no confirmation mail.
        signup_url += f"&invitation={quote(token, safe='')}&m={quote(proof, safe='')}"
    login_url = f"/login?next={target}"
    if view is not None and has_account:
        login_url += f"&email={quote(view.invitation.email, safe='')}"
    context = {
        "view": view,
        "token": token,
        "error": error,
        "mismatch": mismatch,
        "days": INVITATION_DAYS,
        "login_url": login_url,
        "signup_url": signup_url,
        # Known only through the mailed link (whoever holds it reads that mailbox); None: not said.
        "has_account": has_account,
    }
    return render(request, "members/invitation.html", context, status_code=status_code)


async def _load(request: Request, token: str) -> tuple[InvitationView | None, str | None]:
    current = signed_in(request)
    if current is not None:
        # Its own unit of work: a refused lookup below rolls back, and a rollback expires what it loaded.
        async with db_of(request).public_session() as db:
            request.state.switcher_workspaces = await workspaces_of(db, current.user)
    try:
        async with db_of(request).public_session() as db:
            view = await find_invitation(db, token)
    except MemberError as unknown:
        return None, unknown.message
    return view, None


async def invitation_page(request: Request) -> Response:
    """Anyone holding the link may see where it leads; accepting needs the invited, confirmed account."""
    token = request.path_params["token"]
    blocked = await rate_limited(request, ("invite.view", client_ip(request), 60, 300))
    if blocked:
        return _page(
            request, None, token, retry_message(blocked, "invitation links opened from your network"), status_code=429
        )
    view, error = await _load(request, token)
    if view is None:
        return _page(request, None, token, error, status_code=404)
    proof = request.query_params.get("m", "")[:64]
    has_account: bool | None = None
    if not view.problem and proves_mailbox(settings_of(request), token, proof):
        async with db_of(request).public_session() as db:
            has_account = await address_has_account(db, view.invitation.email)
    else:
        proof = ""
    status = 410 if view.problem else 200
    return _page(request, view, token, None, status, proof=proof, has_account=has_account)


@login_required()
async def accept_invitation(request: Request, user: User) -> Response:
    token = request.path_params["token"]
    blocked = await rate_limited(request, ("invite.accept", str(user.id), 20, 3600))
    if blocked:
        view, _ = await _load(request, token)
        return _page(request, view, token, retry_message(blocked, "invitations accepted"), status_code=429)
    try:
        async with changes(request) as session:
            actor = person_actor(user, client_ip(request))
            joined, membership, created = await accept(session, token=token, user=user, actor=actor)
    except MemberError as refused:
        view, _ = await _load(request, token)
        status = 404 if view is None else 410 if view.problem else 403
        return _page(request, view, token, refused.message, status_code=status)
    url, name, role = f"/w/{joined.workspace.slug}", joined.workspace.name, membership.role
    if created:
        return redirect_with_flash(request, url, f"Welcome to {name}. You joined as {role}.")
    return redirect_with_flash(request, url, f"You already are a member of {name} (as {role}).", "info")


routes = [
    Route("/w/{slug}/onboarding/invite", onboarding_invite_page, methods=["GET"]),
    Route("/w/{slug}/onboarding/invite", onboarding_invite, methods=["POST"]),
    Route("/invite/{token}", invitation_page, methods=["GET"]),
    Route("/invite/{token}", accept_invitation, methods=["POST"]),
]
