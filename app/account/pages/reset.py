"""Forgot-password and reset pages (no sign-in needed). See :mod:`app.account.password_reset`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.account.events import record_account_event
from app.account.pages.common import CODE_ATTEMPTS, CODE_WINDOW, WRONG_PROOFS
from app.account.password_reset import ResetLinkInvalid, complete_reset, find_reset, request_reset
from app.auth.login_limits import forget_failures
from app.auth.service import FormErrors, email_problem, normalise_email
from app.mail.jobs import deliver_mail
from app.web.forms import Rule, client_ip, give_back, rate_limited, read_form, retry_message, user_agent
from app.web.guards import redirect
from app.web.state import db_of, keyring_of, settings_of
from app.web.templating import render

HOUR = 3600


async def forgot_page(request: Request) -> Response:
    context = {"values": {}, "errors": {}, "sent": "sent" in request.query_params}
    return render(request, "auth/forgot.html", context)


async def forgot(request: Request) -> Response:
    form = await read_form(request)
    email = normalise_email(form.get("email", ""))
    context = {"values": {"email": email}, "errors": {}, "sent": False}
    if problem := email_problem(email):
        context["errors"] = {"email": problem}
        return render(request, "auth/forgot.html", context, status_code=422)
    blocked = await rate_limited(request, ("reset.ip", client_ip(request), 10, HOUR))
    if blocked:
        context["errors"] = {"_form": retry_message(blocked, "reset links asked for from your network")}
        return render(request, "auth/forgot.html", context, status_code=429)
    # A few links an hour per address at most, so nobody can flood someone's inbox; over the limit the page
    # still says the same, or it would tell who has an account.
    if not await rate_limited(request, ("reset.email", email, 3, HOUR)):
        async with db_of(request).public_session() as db:
            await request_reset(db, settings_of(request), email)
        await request.app.state.jobs.enqueue(deliver_mail)
    return redirect(request, "/password/forgot?sent=1")


def _failed(request: Request, invalid: ResetLinkInvalid) -> Response:
    return render(request, "auth/reset_failed.html", {"message": str(invalid)}, status_code=400)


async def reset_page(request: Request) -> Response:
    token = request.path_params["token"]
    try:
        async with db_of(request).public_session() as db:
            _reset, user = await find_reset(db, token)
    except ResetLinkInvalid as invalid:
        return _failed(request, invalid)
    return render(request, "auth/reset.html", {"token": token, "needs_code": user.has_2fa, "errors": {}})


async def reset(request: Request) -> Response:
    token = request.path_params["token"]
    form = await read_form(request)
    try:
        async with db_of(request).public_session() as db:
            _reset, user = await find_reset(db, token)
    except ResetLinkInvalid as invalid:
        return _failed(request, invalid)
    context = {"token": token, "needs_code": user.has_2fa, "errors": {}}
    if not form.get("password", ""):
        context["errors"] = {"password": "Choose a new password."}
        return render(request, "auth/reset.html", context, status_code=422)
    rules: tuple[Rule, ...] = (
        ("reset.use.ip", client_ip(request), 30, CODE_WINDOW),
        ("account.code", str(user.id), CODE_ATTEMPTS, CODE_WINDOW),
    )
    blocked = await rate_limited(request, *rules)
    if blocked:
        context["errors"] = {"_form": retry_message(blocked, WRONG_PROOFS)}
        return render(request, "auth/reset.html", context, status_code=429)
    try:
        async with db_of(request).public_session() as db:
            outcome = await complete_reset(
                db,
                settings_of(request),
                keyring_of(request),
                token,
                password=form.get("password", ""),
                code=form.get("code", ""),
            )
    except ResetLinkInvalid as invalid:
        return _failed(request, invalid)
    except FormErrors as errors:
        if "code" in errors.errors:
            await record_account_event(
                db_of(request), user.id, "auth.2fa_failed", ip=client_ip(request), user_agent=user_agent(request)
            )
        else:
            await give_back(request, *rules)  # only the new password was refused: not an attempt
        context["errors"] = errors.errors
        return render(request, "auth/reset.html", context, status_code=422)
    await forget_failures(request.app.state.rate_limiter, outcome.email, client_ip(request))
    await record_account_event(
        db_of(request), outcome.user_id, "auth.password_reset", ip=client_ip(request), user_agent=user_agent(request),
        details={"method": outcome.method, "sessions_ended": outcome.sessions_ended},
    )  # fmt: skip
    return redirect(request, "/login?reset=1")
