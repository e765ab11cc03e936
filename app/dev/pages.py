"""Development-only pages (not mounted in production)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db import Database
from app.mail.models import OutboxMessage
from app.web.templating import render


async def mailbox(request: Request) -> Response:
    db: Database = request.app.state.db
    async with db.public_session() as session:
        messages = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(100)))
    return render(request, "dev/mailbox.html", {"messages": messages})


routes = [Route("/dev/mailbox", mailbox, methods=["GET"])]
