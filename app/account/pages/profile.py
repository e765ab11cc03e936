"""The profile page: your name, your time zone (every time Marid shows you is in it), and your e-mail address
(changed once the new address confirms it)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.account.events import record_account_event
from app.account.pages.common import CODE_ATTEMPTS, CODE_WINDOW, WRONG_PROOFS, current_session
from app.account.profile import ProfileError, confirm_email_change, request_email_change, save_profile
from app.auth.middleware import signed_in
from app.auth.models import User
from app.auth.sessions import recently_authenticated
from app.mail.jobs import deliver_mail
from app.security.passwords import verify_password
from app.security.tokens import BadToken
from app.web.forms import client_ip, give_back, rate_limited, read_form, retry_message, user_agent
from app.web.guards import login_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, settings_of
from app.web.templating import render
from app.web.timezones import zone_label, zone_names, zone_of


def _context(request: Request, user: User, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "user": user,
        "values": values,
        "errors": errors,
        "zones": zone_names(),
        "browser_zone": zone_label(zone_of(request)),
        "needs_password": not recently_authenticated(current_session(request), settings_of(request)),
    }


def _page(request: Request, user: User, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    return render(request, "account/profile.html", _context(request, user, values, errors), status_code=status)


@login_required()
async def profile_page(request: Request, user: User) -> Response:
    values = {"display_name": user.display_name, "time_zone": user.time_zone, "email": ""}
    return _page(request, user, values, {})


@login_required()
async def save(request: Request, user: User) -> Response:
    form = await read_form(request)
    values = {"display_name": form.get("display_name", ""), "time_zone": form.get("time_zone", ""), "email": ""}
    try:
        async with db_of(request).public_session() as db:
            fresh = await db.get(User, user.id, with_for_update=True)
            assert fresh is not None
            changed = save_profile(
                fresh,
                display_name=values["display_name"],
                time_zone=values["time_zone"],
                known_zones=frozenset(zone_names()),
            )
    except ProfileError as refused:
        return _page(request, user, values, refused.errors, 422)
    if not changed:
        return redirect_with_flash(
            request, "/account/profile", "Nothing to save: your profile was already like this.", "info"
        )
    return redirect_with_flash(request, "/account/profile", "Profile saved.")


@login_required()
async def change_email(request: Request, user: User) -> Response:
    form = await read_form(request)
    values = {"display_name": user.display_name, "time_zone": user.time_zone, "email": form.get("email", "")}
    settings = settings_of(request)
    if not values["email"].strip():
        return _page(request, user, values, {"email": "Enter the new address."}, 422)
    if not recently_authenticated(current_session(request), settings):
        # Moving the account to another mailbox moves its password resets there: prove it is you.
        password = form.get("password", "")
        if not password:
            return _page(
                request, user, values, {"password": "Enter your current password to change your address."}, 422
            )
        rule = ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW)
        blocked = await rate_limited(request, rule)
        if blocked:
            return _page(request, user, values, {"password": retry_message(blocked, WRONG_PROOFS)}, 429)
        if user.password_hash is None or not verify_password(user.password_hash, password):
            return _page(request, user, values, {"password": "That is not your current password."}, 401)
        await give_back(request, rule)
    try:
        async with db_of(request).public_session() as db:
            address = await request_email_change(db, settings, user, values["email"])
    except ProfileError as refused:
        return _page(request, user, values, refused.errors, 422)
    await request.app.state.jobs.enqueue(deliver_mail)
    message = f"We sent a link to {address}. Open it to use that address; until then nothing changes."
    return redirect_with_flash(request, "/account/profile", message, "info")


async def confirm_email(request: Request) -> Response:
    try:
        async with db_of(request).public_session() as db:
            changed = await confirm_email_change(db, settings_of(request), request.path_params["token"])
    except BadToken as bad:
        return render(request, "auth/verify_failed.html", {"message": str(bad)}, status_code=400)
    await request.app.state.jobs.enqueue(deliver_mail)
    await record_account_event(
        db_of(request), changed.user_id, "account.email_changed", ip=client_ip(request), user_agent=user_agent(request),
        details={"from": changed.old, "to": changed.new},
    )  # fmt: skip
    target = "/account/profile" if signed_in(request) is not None else "/login"
    return redirect_with_flash(request, target, f"Your address is now {changed.new}.")
