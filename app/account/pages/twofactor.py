"""The account security overview and the 2FA pages: enrol, confirm, new recovery codes, turn off.

Every change to 2FA ends the account's other sessions (ASVS 7.4.3) and goes to the account's own security log,
shown on the security page (never to the workspaces' audit logs). Turning 2FA off and replacing recovery codes
always need the password or a code typed in the same form (ASVS 7.5.1); starting enrolment needs the password
unless the user signed in a few minutes ago, so a borrowed session cannot lock the owner out with an
attacker's authenticator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from app.account import twofactor
from app.account.events import record_account_event
from app.account.pages.common import CODE_ATTEMPTS, CODE_WINDOW, WRONG_PROOFS, current_session, member_workspace
from app.auth.models import User
from app.auth.sessions import mark_authenticated, recently_authenticated, revoke_all_sessions
from app.tenants.models import Workspace
from app.web.flash import flash
from app.web.forms import client_ip, rate_limited, read_form, retry_message, user_agent
from app.web.guards import login_required, redirect
from app.web.state import db_of, keyring_of, settings_of
from app.web.templating import render

_MAX_SLUG = 48


def _required_slug(raw: str | None) -> str:
    """The ``required`` workspace slug passed along by the workspace guard (only ever used in our own URLs)."""
    slug = (raw or "").strip()
    return slug if 0 < len(slug) <= _MAX_SLUG else ""


def _twofactor_url(required: str) -> str:
    return "/account/2fa" + (f"?required={quote(required)}" if required else "")


async def _page_context(request: Request, user: User, required: str, errors: dict[str, str]) -> dict[str, Any]:
    """Everything the 2FA page shows for ``user`` as it is now (fresh from the database)."""
    settings = settings_of(request)
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id)
        assert fresh is not None
        remaining = await twofactor.unused_recovery_codes(db, user.id) if fresh.has_2fa else 0
    qr = secret = otpauth_uri = None
    if twofactor.is_enrolling(fresh):
        plain = twofactor.secret_of(keyring_of(request), fresh)
        if plain is not None:
            qr = Markup(twofactor.enrolment_qr(plain, fresh.email))
            secret = twofactor.group_secret(plain)
            # The same otpauth:// address as the QR code, as a link: set up on the phone that reads this page.
            otpauth_uri = twofactor.enrolment_uri(plain, fresh.email)
    workspace = member_workspace(request, required) if required else None
    enforcing = [ws for ws, _role in getattr(request.state, "switcher_workspaces", []) if ws.require_2fa]
    return {
        "user": fresh,
        "errors": errors,
        "required": required if workspace else "",
        "required_workspace": workspace,
        "enforcing_workspaces": enforcing,
        "remaining_codes": remaining,
        "qr": qr,
        "secret": secret,
        "otpauth_uri": otpauth_uri,
        "needs_password": not recently_authenticated(current_session(request), settings),
    }


async def _render_page(
    request: Request, user: User, required: str, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    context = await _page_context(request, user, required, errors or {})
    return render(request, "account/twofactor.html", context, status_code=status_code)


@login_required()
async def twofactor_page(request: Request, user: User) -> Response:
    return await _render_page(request, user, _required_slug(request.query_params.get("required")))


@login_required()
async def start_enrolment(request: Request, user: User) -> Response:
    form = await read_form(request)
    required = _required_slug(form.get("required"))
    settings = settings_of(request)
    session = current_session(request)
    needs_password = not recently_authenticated(session, settings)
    if needs_password:
        if not form.get("password", ""):
            errors = {"password": "Enter your current password to set up two-factor authentication."}
            return await _render_page(request, user, required, errors, 422)
        blocked = await rate_limited(request, ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW))
        if blocked:
            return await _render_page(request, user, required, {"password": retry_message(blocked, WRONG_PROOFS)}, 429)
    outcome = "started"
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id, with_for_update=True)
        assert fresh is not None
        if fresh.has_2fa:
            outcome = "already_on"
        elif needs_password and not await twofactor.prove_identity(
            db, settings, keyring_of(request), fresh, password=form.get("password", ""), code=""
        ):
            outcome = "wrong_password"
        else:
            if needs_password:
                await mark_authenticated(db, session.id)
            twofactor.begin_enrolment(keyring_of(request), fresh)
    if outcome == "wrong_password":
        errors = {"password": "That is not your current password. Nothing was changed."}
        return await _render_page(request, user, required, errors, 401)
    response = redirect(request, _twofactor_url(required))
    if outcome == "already_on":
        flash(request, response, "Two-factor authentication is already on.", "info")
    return response


@login_required()
async def confirm_enrolment(request: Request, user: User) -> Response:
    form = await read_form(request)
    required = _required_slug(form.get("required"))
    code = form.get("code", "").strip()
    if not code:
        return await _render_page(request, user, required, {"code": "Enter the 6-digit code your app shows."}, 422)
    blocked = await rate_limited(request, ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW))
    if blocked:
        return await _render_page(request, user, required, {"code": retry_message(blocked, WRONG_PROOFS)}, 429)
    settings = settings_of(request)
    session = current_session(request)
    try:
        async with db_of(request).public_session() as db:
            fresh = await db.get(User, user.id, with_for_update=True)
            assert fresh is not None
            codes = await twofactor.confirm_enrolment(db, settings, keyring_of(request), fresh, code)
            ended = await revoke_all_sessions(db, user.id, keep=session.id)
            await mark_authenticated(db, session.id)
    except twofactor.TwoFactorError as refused:
        return await _render_page(request, user, required, {"code": str(refused)}, 422)
    await record_account_event(
        db_of(request),
        user.id,
        "auth.2fa_enabled",
        ip=client_ip(request),
        user_agent=user_agent(request),
        details={"sessions_ended": ended},
    )
    workspace = member_workspace(request, required) if required else None
    return _codes_page(request, codes, enabled=True, sessions_ended=ended, workspace=workspace)


def _codes_page(
    request: Request, codes: list[str], *, enabled: bool, sessions_ended: int, workspace: Workspace | None = None
) -> Response:
    """The recovery codes, shown this once (the page is never cached; only their hashes are kept)."""
    context = {
        "codes": codes,
        "codes_text": "Marid recovery codes\nEach code works once.\n\n" + "\n".join(codes) + "\n",
        "enabled": enabled,
        "sessions_ended": sessions_ended,
        "workspace": workspace,
    }
    return render(request, "account/recovery_codes.html", context)


@login_required()
async def regenerate_codes(request: Request, user: User) -> Response:
    return await _with_fresh_proof(request, user, "regenerate")


@login_required()
async def disable_twofactor(request: Request, user: User) -> Response:
    return await _with_fresh_proof(request, user, "disable")


async def _with_fresh_proof(request: Request, user: User, action: str) -> Response:
    """Replace the recovery codes (``regenerate``) or turn 2FA off (``disable``) after a password or code."""
    form = await read_form(request)
    password, code = form.get("password", ""), form.get("code", "").strip()
    if not password and not code:
        errors = {action: "Enter your current password or a code from your authenticator app."}
        return await _render_page(request, user, "", errors, 422)
    blocked = await rate_limited(request, ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW))
    if blocked:
        return await _render_page(request, user, "", {action: retry_message(blocked, WRONG_PROOFS)}, 429)
    settings = settings_of(request)
    session = current_session(request)
    codes: list[str] = []
    ended = 0
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id, with_for_update=True)
        assert fresh is not None
        if not fresh.has_2fa:
            return redirect(request, "/account/2fa")
        proof = await twofactor.prove_identity(db, settings, keyring_of(request), fresh, password=password, code=code)
        if proof is not None:
            if action == "disable":
                twofactor.disable(fresh)
                await twofactor.delete_recovery_codes(db, user.id)
            else:
                codes = await twofactor.replace_recovery_codes(db, settings, user.id)
            ended = await revoke_all_sessions(db, user.id, keep=session.id)
            await mark_authenticated(db, session.id)
    ip, agent = client_ip(request), user_agent(request)
    if proof is None:
        await record_account_event(db_of(request), user.id, "auth.reauth_failed", ip=ip, user_agent=agent)
        errors = {action: "That password or code is not right (each code works only once). Nothing was changed."}
        return await _render_page(request, user, "", errors, 401)
    details = {"proof": proof, "sessions_ended": ended}
    if action == "disable":
        await record_account_event(
            db_of(request), user.id, "auth.2fa_disabled", ip=ip, user_agent=agent, details=details
        )
        response = redirect(request, "/account/2fa")
        flash(request, response, "Two-factor authentication is off. Your other sessions were signed out.")
        return response
    await record_account_event(
        db_of(request), user.id, "auth.recovery_codes_regenerated", ip=ip, user_agent=agent, details=details
    )
    return _codes_page(request, codes, enabled=False, sessions_ended=ended)
