"""Account pages: security overview, 2FA, sessions, and the password-reset pages (which need no sign-in)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.account.pages import password as password_pages
from app.account.pages import profile as profile_pages
from app.account.pages import reset as reset_pages
from app.account.pages import security as security_pages
from app.account.pages import sessions as session_pages
from app.account.pages import twofactor as twofactor_pages
from app.web.guards import redirect


async def account_home(request: Request) -> Response:
    return redirect(request, "/account/security")


routes: list[BaseRoute] = [
    Route("/account", account_home, methods=["GET"]),
    Route("/account/security", security_pages.security_page, methods=["GET"]),
    Route("/account/profile", profile_pages.profile_page, methods=["GET"]),
    Route("/account/profile", profile_pages.save, methods=["POST"]),
    Route("/account/profile/email", profile_pages.change_email, methods=["POST"]),
    Route("/account/email/{token}", profile_pages.confirm_email, methods=["GET"]),
    Route("/account/identities/{identity_id}/unlink", security_pages.unlink, methods=["POST"]),
    Route("/account/2fa", twofactor_pages.twofactor_page, methods=["GET"]),
    Route("/account/2fa/start", twofactor_pages.start_enrolment, methods=["POST"]),
    Route("/account/2fa/confirm", twofactor_pages.confirm_enrolment, methods=["POST"]),
    Route("/account/2fa/recovery-codes", twofactor_pages.regenerate_codes, methods=["POST"]),
    Route("/account/2fa/disable", twofactor_pages.disable_twofactor, methods=["POST"]),
    Route("/account/password", password_pages.password_page, methods=["GET"]),
    Route("/account/password", password_pages.change_password, methods=["POST"]),
    Route("/account/sessions", session_pages.sessions_page, methods=["GET"]),
    Route("/account/sessions/revoke-others", session_pages.revoke_others, methods=["POST"]),
    Route("/account/sessions/{session_id}/revoke", session_pages.revoke, methods=["POST"]),
    Route("/password/forgot", reset_pages.forgot_page, methods=["GET"]),
    Route("/password/forgot", reset_pages.forgot, methods=["POST"]),
    Route("/password/reset/{token}", reset_pages.reset_page, methods=["GET"]),
    Route("/password/reset/{token}", reset_pages.reset, methods=["POST"]),
]
