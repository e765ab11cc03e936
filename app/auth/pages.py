"""Sign-up, e-mail confirmation, sign-in (with the 2FA step) and sign-out pages."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.account.events import record_account_event
from app.account.twofactor import totp_aad
from app.audit.service import record
from app.auth.login_limits import forgive, login_rules
from app.auth.middleware import clear_session_cookie, set_session_cookie, signed_in
from app.auth.models import RecoveryCode, User
from app.auth.service import (
    VERIFY_MAX_AGE,
    Confirmation,
    FormErrors,
    check_password,
    confirm_email,
    email_problem,
    normalise_email,
    register,
    send_verification,
)
from app.auth.sessions import now, revoke_session, start_session
from app.errors import ServiceError
from app.mail.jobs import deliver_mail
from app.members.invitations import InvitationView, accept, proven_invitation
from app.security.tokens import BadToken, constant_time_equals, new_token, sign, token_hash, unsign
from app.security.totp import match_recovery_code, verify_totp
from app.sso.enforcement import managing_workspaces, password_login_blocked
from app.tenants.context import person_actor, start_page_for
from app.web.flash import flash
from app.web.forms import Rule, client_ip, give_back, rate_limited, read_form, retry_message, user_agent
from app.web.guards import login_required, redirect
from app.web.redirects import local_path
from app.web.state import changes, db_of, keyring_of, settings_of
from app.web.templating import render

TWO_FACTOR_COOKIE = "marid_2fa"
# Set by sign-up (new address or taken alike): a secret the new account's confirmation link is bound to.
SIGNUP_COOKIE = "marid_signup"
TWO_FACTOR_PURPOSE = "login-2fa"
TWO_FACTOR_MAX_AGE = 300
HOUR = 3600


def safe_next(target: str | None) -> str:
    """Only local paths (see :func:`app.web.redirects.local_path`, the one normaliser of ``next``)."""
    return local_path(target)


async def _invited(request: Request, token: str, proof: str) -> InvitationView | None:
    """The invitation a sign-up comes through, when its mailed link proved the address (else None)."""
    if not token:
        return None
    async with db_of(request).public_session() as db:
        return await proven_invitation(db, settings_of(request), token[:128], proof[:64])


def _signup_context(
    values: dict[str, str], errors: dict[str, str], target: str, invited: InvitationView | None, token: str, proof: str
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "next": target,
        "invited": invited,
        "invitation_token": token if invited else "",
        "invitation_proof": proof if invited else "",
    }


async def signup_page(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if signed_in(request):
        return redirect(request, target)
    token, proof = request.query_params.get("invitation", ""), request.query_params.get("m", "")
    invited = await _invited(request, token, proof)
    values = {"email": invited.invitation.email} if invited else {}
    return render(request, "auth/signup.html", _signup_context(values, {}, target, invited, token, proof))


async def signup(request: Request) -> Response:
    form = await read_form(request)
    values = {"email": form.get("email", ""), "display_name": form.get("display_name", "")}
    target = safe_next(form.get("next"))
    token, proof = form.get("invitation", ""), form.get("m", "")
    invited = await _invited(request, token, proof)
    # The invited address, as the mailed link proved it: confirmed at once (another address takes the usual way).
    proven = invited is not None and normalise_email(values["email"]) == normalise_email(invited.invitation.email)
    rules = (
        ("signup.ip", client_ip(request), 10, HOUR),
        # Per address too: nobody gets to flood someone's inbox with confirmation mail.
        ("signup.email", normalise_email(form.get("email", "")) or "-", 3, HOUR),
    )
    # Only a sign-up that sends mail counts: one refused for what was typed is given back below.
    blocked = await rate_limited(request, *rules)
    if blocked:
        reason = "sign-ups from your network" if blocked.scope == "signup.ip" else "messages sent to this address"
        context = _signup_context(values, {"_form": retry_message(blocked, reason)}, target, invited, token, proof)
        return render(request, "auth/signup.html", context, status_code=429)
    # The same answer whether or not the address has an account (register() does the same work either way):
    # no session, and a secret cookie that only a new account's confirmation link will ever match.
    browser_secret = new_token()
    try:
        async with db_of(request).public_session() as db:
            user = await register(
                db,
                settings_of(request),
                email=form.get("email", ""),
                password=form.get("password", ""),
                display_name=form.get("display_name", ""),
                next_path="" if target == "/" else target,
                browser=token_hash(browser_secret),
                verified=proven,
            )
    except FormErrors as invalid:
        await give_back(request, *rules)
        context = _signup_context(values, invalid.errors, target, invited, token, proof)
        return render(request, "auth/signup.html", context, status_code=422)
    if proven and user is not None:
        return await _join_invited(request, user, token)
    await request.app.state.jobs.enqueue(deliver_mail)
    response = redirect(request, "/verify-email?sent=1" + _next_query(target))
    response.set_cookie(
        SIGNUP_COOKIE, browser_secret, max_age=VERIFY_MAX_AGE, path="/verify-email", httponly=True, samesite="lax",
        secure=settings_of(request).is_production,
    )  # fmt: skip
    return response


async def _join_invited(request: Request, user: User, token: str) -> Response:
    """A new account made through a proven invitation: signed in, and straight into the workspace."""
    try:
        async with changes(request) as session:
            joined, membership, _ = await accept(
                session, token=token, user=user, actor=person_actor(user, client_ip(request))
            )
    except ServiceError:
        # The invitation was withdrawn meanwhile: the account exists, its invitation page says why.
        return await _complete_login(request, user, f"/invite/{token}", method="invitation")
    response = await _complete_login(request, user, f"/w/{joined.workspace.slug}", method="invitation")
    welcome = f"Welcome to {joined.workspace.name}. You joined as {membership.role}."
    flash(request, response, welcome)
    return response


def _next_query(target: str) -> str:
    return "" if target == "/" else f"&next={quote(target, safe='')}"


async def verify_notice(request: Request) -> Response:
    """ "Check your inbox": for a signed-in, unconfirmed account, and right after sign-up (no session then)."""
    if signed_in(request) is None and "sent" in request.query_params:
        # It names no address and offers no resend: it must read the same for a taken address.
        context = {"email": "", "sent": False, "next": safe_next(request.query_params.get("next"))}
        return render(request, "auth/verify_notice.html", context)
    return await _verify_notice(request)


@login_required(verified=False)
async def _verify_notice(request: Request, user: User) -> Response:
    target = safe_next(request.query_params.get("next"))
    if user.email_verified_at is not None:
        return redirect(request, target)
    context = {"email": user.email, "sent": "resent" in request.query_params, "next": target}
    return render(request, "auth/verify_notice.html", context)


@login_required(verified=False)
async def resend_verification(request: Request, user: User) -> Response:
    target = safe_next((await read_form(request)).get("next"))
    blocked = await rate_limited(request, ("verify.resend", str(user.id), 5, HOUR))
    if blocked:
        context = {"email": user.email, "sent": False, "error": retry_message(blocked, "links sent"), "next": target}
        return render(request, "auth/verify_notice.html", context, status_code=429)
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id)
        if fresh is not None and fresh.email_verified_at is None:
            await send_verification(db, settings_of(request), fresh, next_path="" if target == "/" else target)
    await request.app.state.jobs.enqueue(deliver_mail)
    # "resent": the notice then says a new link is on its way (a sign-up's own notice never does).
    return redirect(request, "/verify-email?resent=1" + _next_query(target))


async def verify_email(request: Request) -> Response:
    try:
        async with db_of(request).public_session() as db:
            confirmation = await confirm_email(db, settings_of(request), request.path_params["token"])
    except BadToken as bad:
        return render(request, "auth/verify_failed.html", {"message": str(bad)}, status_code=400)
    # Where the user was going when they signed up (an invitation, say); otherwise onboarding.
    target = safe_next(confirmation.next_path) if confirmation.next_path else "/onboarding"
    if signed_in(request) is not None:
        return redirect(request, target)
    if _signed_up_here(request, confirmation):
        response = await _complete_login(request, confirmation.user, target, method="email_link")
        response.delete_cookie(SIGNUP_COOKIE, path="/verify-email")
        return response
    return redirect(request, f"/login?verified=1&next={quote(target, safe='')}")


def _signed_up_here(request: Request, confirmation: Confirmation) -> bool:
    """The link's first use, in the browser that signed up (it holds the secret the link was bound to): the
    person who chose the password and the owner of the mailbox are the same, so no password is asked again."""
    secret = request.cookies.get(SIGNUP_COOKIE, "")
    return (
        confirmation.first_use
        and bool(confirmation.browser)
        and bool(secret)
        and constant_time_equals(token_hash(secret), confirmation.browser)
        and not confirmation.user.has_2fa
    )


async def login_page(request: Request) -> Response:
    if signed_in(request):
        return redirect(request, safe_next(request.query_params.get("next")))
    email = request.query_params.get("email", "")[:320]
    context = {
        "values": {"email": email} if email and not email_problem(normalise_email(email)) else {},
        "errors": {},
        "next": safe_next(request.query_params.get("next")),
        "verified": "verified" in request.query_params,
        "reset": "reset" in request.query_params,
    }
    return render(request, "auth/login.html", context)


async def login(request: Request) -> Response:
    form = await read_form(request)
    email = normalise_email(form.get("email", ""))
    target = safe_next(form.get("next"))
    context = {"values": {"email": email}, "errors": {}, "next": target, "verified": False, "reset": False}
    # A form with an empty field is not an attempt: nothing is counted.
    missing = {}
    if not email:
        missing["email"] = "Enter your e-mail address."
    if not form.get("password", ""):
        missing["password"] = "Enter your password."
    if missing:
        context["errors"] = missing
        return render(request, "auth/login.html", context, status_code=422)
    blocked = await rate_limited(request, *login_rules(email, client_ip(request)))
    if blocked:
        context["errors"] = {"_form": retry_message(blocked, "failed sign-ins")}
        return render(request, "auth/login.html", context, status_code=429)
    async with db_of(request).public_session() as db:
        user = await check_password(db, email, form.get("password", ""))
    if user is not None:
        await forgive(request.app.state.rate_limiter, email, client_ip(request))
    if user is None:
        async with db_of(request).public_session() as db:
            known = await db.scalar(select(User.id).where(User.email == email))
        if known is not None:
            await record_account_event(
                db_of(request), known, "auth.login_failed", ip=client_ip(request), user_agent=user_agent(request)
            )
        context["errors"] = {"_form": "That e-mail and password do not match an account."}
        return render(request, "auth/login.html", context, status_code=401)
    async with db_of(request).public_session() as db:
        sso_required = await password_login_blocked(db, user)
        managing = [workspace.id for workspace in await managing_workspaces(db, user)] if sso_required else []
    if sso_required is not None:
        await record_account_event(
            db_of(request), user.id, "sso.password_login_blocked", ip=client_ip(request), user_agent=user_agent(request)
        )
        # The refusal is also the managing workspaces' own business (their policy did it), but not where from:
        # no IP there, and nothing in the member's other workspaces.
        async with changes(request) as session:
            for workspace_id in managing:
                record(session, workspace_id, "sso.password_login_blocked", person_actor(user))
        context["errors"] = {"_form": sso_required}
        return render(request, "auth/login.html", context, status_code=403)
    if user.has_2fa:
        pending = sign(_secret(request), TWO_FACTOR_PURPOSE, {"u": str(user.id), "n": target})
        response = redirect(request, "/login/2fa")
        response.set_cookie(
            TWO_FACTOR_COOKIE, pending, max_age=TWO_FACTOR_MAX_AGE, httponly=True, samesite="lax",
            secure=settings_of(request).is_production, path="/login",
        )  # fmt: skip
        return response
    return await _complete_login(request, user, target, method="password")


def _secret(request: Request) -> str:
    return settings_of(request).secret_key.get_secret_value()


def _pending_user_id(request: Request) -> tuple[uuid.UUID, str] | None:
    raw = request.cookies.get(TWO_FACTOR_COOKIE)
    if not raw:
        return None
    try:
        value = unsign(_secret(request), TWO_FACTOR_PURPOSE, raw, TWO_FACTOR_MAX_AGE)
        if isinstance(value, dict):
            return uuid.UUID(str(value["u"])), safe_next(str(value.get("n", "/")))
    except (BadToken, KeyError, ValueError):
        return None
    return None


async def two_factor_page(request: Request) -> Response:
    if _pending_user_id(request) is None:
        return redirect(request, "/login")
    return render(request, "auth/login_2fa.html", {"errors": {}, "recovery": False})


async def two_factor(request: Request) -> Response:
    pending = _pending_user_id(request)
    if pending is None:
        return redirect(request, "/login")
    user_id, target = pending
    form = await read_form(request)
    recovery = bool(form.get("recovery"))
    code = form.get("code", "").strip()
    if not code:
        errors = {"code": "Enter the code." if not recovery else "Enter one of your recovery codes."}
        return render(request, "auth/login_2fa.html", {"errors": errors, "recovery": recovery}, status_code=422)
    rules: tuple[Rule, ...] = (("login.2fa.ip", client_ip(request), 30, 900), ("login.2fa", str(user_id), 10, 900))
    blocked = await rate_limited(request, *rules)
    if blocked:
        context = {"errors": {"_form": retry_message(blocked, "wrong codes")}, "recovery": recovery}
        return render(request, "auth/login_2fa.html", context, status_code=429)
    accepted_with: str | None = None
    async with db_of(request).public_session() as db:
        user = await db.get(User, user_id, with_for_update=True)
        if user is None or not user.has_2fa or user.totp_secret_enc is None:
            return redirect(request, "/login")
        if code.replace(" ", "").isdigit():
            secret = keyring_of(request).decrypt(user.totp_secret_enc, aad=totp_aad(user.id)).decode()
            step = verify_totp(secret, code, last_used_step=user.totp_last_step)
            if step is not None:
                user.totp_last_step = step
                accepted_with = "totp"
        else:
            unused = list(
                await db.scalars(
                    select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
                )
            )
            index = match_recovery_code(code, [row.code_hash for row in unused], _secret(request))
            if index is not None:
                unused[index].used_at = now()
                accepted_with = "recovery_code"
    if accepted_with is None:
        await record_account_event(
            db_of(request), user_id, "auth.2fa_failed", ip=client_ip(request), user_agent=user_agent(request)
        )
        return render(
            request,
            "auth/login_2fa.html",
            {
                "errors": {"code": "That code is not right, or was already used. Try the newest one."},
                "recovery": recovery,
            },
            status_code=401,
        )
    await give_back(request, *rules)  # only wrong codes add up
    response = await _complete_login(request, user, target, method=f"password+{accepted_with}")
    response.delete_cookie(TWO_FACTOR_COOKIE, path="/login")
    return response


async def _complete_login(request: Request, user: User, target: str, *, method: str) -> Response:
    """A new session (a new id: no fixation) and its cookie; the old session of this browser, if any, ends."""
    settings = settings_of(request)
    previous = signed_in(request)
    async with db_of(request).public_session() as db:
        if previous is not None:
            await revoke_session(db, previous.user.id, previous.session.id)
        token, _ = await start_session(db, settings, user, ip=client_ip(request), user_agent=user_agent(request))
    await record_account_event(
        db_of(request),
        user.id,
        "auth.login",
        ip=client_ip(request),
        user_agent=user_agent(request),
        details={"method": method},
    )
    if user.email_verified_at is None:
        target = "/verify-email" + ("" if target == "/" else f"?next={quote(target, safe='')}")
    elif target == "/":
        async with db_of(request).public_session() as db:
            target = await start_page_for(db, user)
    response = redirect(request, target)
    set_session_cookie(response, settings, token)
    return response


async def logout(request: Request) -> Response:
    form = await read_form(request)
    current = signed_in(request)
    if current is not None:
        async with db_of(request).public_session() as db:
            session = await db.get(type(current.session), current.session.id)
            if session is not None:
                await db.delete(session)
        await record_account_event(
            db_of(request), current.user.id, "auth.logout", ip=client_ip(request), user_agent=user_agent(request)
        )
    # Back where the form said (the invitation page's "Sign out", to sign in with the invited address), else to
    # the sign-in page; either way with a word that it worked.
    target = safe_next(form.get("next"))
    response = redirect(request, target if target != "/" else "/login")
    flash(request, response, "You are signed out." if current is not None else "You were already signed out.", "info")
    clear_session_cookie(response, settings_of(request))
    # Ask the browser to drop anything it kept of this account (ASVS 14.3.1).
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def login_redirect_for(path: str) -> str:
    return f"/login?next={quote(path, safe='')}"


routes = [
    Route("/signup", signup_page, methods=["GET"]),
    Route("/signup", signup, methods=["POST"]),
    Route("/verify-email", verify_notice, methods=["GET"]),
    Route("/verify-email/resend", resend_verification, methods=["POST"]),
    Route("/verify-email/{token}", verify_email, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/2fa", two_factor_page, methods=["GET"]),
    Route("/login/2fa", two_factor, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
