"""Loads the signed-in user (if any) for every request, HTTP and SSE alike, before any route runs."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.sessions import SignedIn, load_session
from app.config import Settings
from app.db import Database
from app.security.tokens import BadToken, sign, unsign

SKIP_PREFIXES = ("/static/", "/healthz", "/readyz")
PURPOSE = "session"


def session_cookie_value(settings: Settings, token: str) -> str:
    return sign(settings.secret_key.get_secret_value(), PURPOSE, token)


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        settings.session_cookie,
        session_cookie_value(settings, token),
        max_age=settings.session_absolute_days * 86400,
        path="/",
        httponly=True,
        secure=settings.is_production,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(settings.session_cookie, path="/", secure=settings.is_production, httponly=True)


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        settings: Settings = request.app.state.settings
        cookie = request.cookies.get(settings.session_cookie)
        signed_in: SignedIn | None = None
        if cookie:
            signed_in = await self._load(request.app.state.db, settings, cookie)
        scope.setdefault("state", {})["signed_in"] = signed_in
        if cookie and signed_in is None:
            send = _clearing_cookie(send, settings)
        await self.app(scope, receive, send)

    async def _load(self, db: Database, settings: Settings, cookie: str) -> SignedIn | None:
        try:
            token = unsign(
                settings.secret_key.get_secret_value(), PURPOSE, cookie, settings.session_absolute_days * 86400
            )
        except BadToken:
            return None
        if not isinstance(token, str):
            return None
        # One Core statement for the session, its person and their workspaces (no ORM loading): this runs before
        # every signed-in request. Nothing is cached: a revoked session or a removed membership counts from the
        # very next request.
        async with db.direct() as connection:
            return await load_session(connection, settings, token)


def _clearing_cookie(send: Send, settings: Settings) -> Send:
    async def send_clearing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            if "set-cookie" not in {key.decode().lower() for key, _ in message.get("headers", [])}:
                secure = "; Secure" if settings.is_production else ""
                headers.append(
                    "set-cookie",
                    f"{settings.session_cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}",
                )
        await send(message)

    return send_clearing


def signed_in(request: Request) -> SignedIn | None:
    value: SignedIn | None = getattr(request.state, "signed_in", None)
    return value
