"""CSRF protection for every unsafe browser request (ASVS 3.5).

Double-submit with a random token: the token lives in its own cookie (SameSite=Lax, ``__Host-`` in
production) and every POST/PUT/PATCH/DELETE must echo it, in the ``X-CSRF-Token`` header (htmx sends it for
every request, see ``hx-headers`` in base.html) or a ``csrf_token`` form field (plain forms). A cross-site page
can neither read the cookie nor set the header. ``Origin``, when the browser sends it, must be our own.

Requests authenticated with ``Authorization: Bearer`` (API keys) carry no ambient credential and are exempt.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.security.tokens import constant_time_equals, new_token
from app.web.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Forms are small; anything bigger must come through htmx with the header.
MAX_FORM_BYTES = 1 << 20


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, *, cookie_name: str, secure: bool) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token = Request(scope).cookies.get(self.cookie_name, "")
        fresh = not _TOKEN_SHAPE.match(token)
        if fresh:
            token = new_token()
        scope.setdefault("state", {})["csrf_token"] = token

        if scope["method"] not in SAFE_METHODS and not headers.get("authorization", "").startswith("Bearer "):
            problem, receive = await self._check(scope, headers, receive, token, fresh)
            if problem is not None:
                response = error_response(Request(scope), 403, problem)
                await response(scope, receive, self._with_cookie(send, token, fresh))
                return
        await self.app(scope, receive, self._with_cookie(send, token, fresh))

    async def _check(
        self, scope: Scope, headers: Headers, receive: Receive, token: str, fresh: bool
    ) -> tuple[str | None, Receive]:
        origin = headers.get("origin")
        if origin and origin != _own_origin(scope, headers):
            return "This request came from another site and was refused.", receive
        supplied = headers.get(HEADER)
        if supplied is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body, receive = await _buffer_body(receive)
            if body is None:
                return "The form is too large.", receive
            supplied = parse_qs(body.decode("latin-1")).get(FIELD, [None])[0]
        if fresh or not supplied or not constant_time_equals(supplied, token):
            return "Your form expired or came from elsewhere. Reload the page and try again.", receive
        return None, receive

    def _with_cookie(self, send: Send, token: str, fresh: bool) -> Send:
        if not fresh:
            return send

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{self.cookie_name}={token}; Path=/; HttpOnly; SameSite=Lax"
                if self.secure:
                    cookie += "; Secure"
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return send_with_cookie


def _own_origin(scope: Scope, headers: Headers) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"


async def _buffer_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the whole body (bounded) and hand back a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def csrf_token(request: Request) -> str:
    token: str = request.state.csrf_token
    return token
