"""Changing your password while signed in: the current password proves it is you (ASVS 6.2.3, 7.5.1)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.account.events import record_account_event
from app.account.pages.common import CODE_ATTEMPTS, CODE_WINDOW, WRONG_PROOFS, current_session
from app.auth.models import User
from app.auth.sessions import now, revoke_all_sessions
from app.security.passwords import hash_password, password_problem, verify_password
from app.web.flash import flash
from app.web.forms import client_ip, give_back, rate_limited, read_form, retry_message, user_agent
from app.web.guards import login_required, redirect
from app.web.state import db_of
from app.web.templating import render


def _page(request: Request, user: User, errors: dict[str, str], status: int) -> Response:
    return render(request, "account/password.html", {"user": user, "errors": errors}, status_code=status)


@login_required()
async def password_page(request: Request, user: User) -> Response:
    return _page(request, user, {}, 200)


@login_required()
async def change_password(request: Request, user: User) -> Response:
    form = await read_form(request)
    current, new, again = form.get("current_password", ""), form.get("new_password", ""), form.get("confirm", "")
    if user.password_hash is None:
        return _page(
            request, user, {"_form": "Your account signs in through single sign-on and has no password to change."}, 422
        )
    # What was typed for the new password is checked first, and never counted: only a wrong current password is.
    errors: dict[str, str] = {}
    if not current:
        errors["current_password"] = "Enter your current password."
    if problem := password_problem(new, email=user.email):
        errors["new_password"] = problem
    elif new != again:
        errors["confirm"] = "The two new passwords are not the same."
    if errors:
        return _page(request, user, errors, 422)
    rule = ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW)
    blocked = await rate_limited(request, rule)
    if blocked:
        return _page(request, user, {"_form": retry_message(blocked, WRONG_PROOFS)}, 429)
    if not verify_password(user.password_hash, current):
        return _page(
            request, user, {"current_password": "That is not your current password. Nothing was changed."}, 422
        )
    await give_back(request, rule)
    if verify_password(user.password_hash, new):
        return _page(request, user, {"new_password": "Choose a password different from the current one."}, 422)
    session = current_session(request)
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id, with_for_update=True)
        assert fresh is not None
        fresh.password_hash = hash_password(new)
        fresh.password_changed_at = now()
        # Whoever else knew the old password is signed out; this browser stays signed in.
        ended = await revoke_all_sessions(db, user.id, keep=session.id)
    await record_account_event(
        db_of(request),
        user.id,
        "auth.password_changed",
        ip=client_ip(request),
        user_agent=user_agent(request),
        details={"sessions_ended": ended},
    )
    response = redirect(request, "/account/security")
    flash(request, response, "Password changed. Your other sessions were signed out.")
    return response
