"""Refuse NUL characters in the URL before any route sees them.

PostgreSQL text cannot hold U+0000, so a ``%00`` in a filter would otherwise fail deep in a query (a 500).
It is never legitimate in a path or query string: answer 400 with a clear error instead.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.errors import error_response


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query or "\x00" in scope["path"]:
                response = error_response(Request(scope), 400, "The address contains a NUL character.")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
