"""Development-only pages (not mounted in production): the mailbox, with each mail's text and HTML parts."""

from __future__ import annotations

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.db import Database
from app.mail.models import OutboxMessage
from app.web.templating import render

# A mail's HTML part, shown in the mailbox's frame: its inline styles only, nothing it could load or run.
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


async def mailbox(request: Request) -> Response:
    db: Database = request.app.state.db
    async with db.public_session() as session:
        messages = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(100)))
    return render(request, "dev/mailbox.html", {"messages": messages})


async def mail_html(request: Request) -> Response:
    raw = request.path_params["message_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise HTTPException(404)
    db: Database = request.app.state.db
    async with db.public_session() as session:
        message = await session.get(OutboxMessage, int(raw))
    if message is None or not message.body_html:
        raise HTTPException(404)
    headers = {"Content-Security-Policy": MAIL_CSP, "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store"}
    return HTMLResponse(message.body_html, headers=headers)


routes = [
    Route("/dev/mailbox", mailbox, methods=["GET"]),
    Route("/dev/mailbox/{message_id}.html", mail_html, methods=["GET"]),
]
