"""Your sessions: every signed-in browser (device, IP, last seen), with revoke and "sign out everywhere else".

Revoking deletes the session's row, so the next request with that browser's cookie is anonymous (ASVS 7.4.x,
7.5.2). Queries are always scoped to the signed-in user: another account's session id is simply not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.account.devices import device_name, relative_time, utc_label
from app.account.pages.common import current_session
from app.account.service import end_other_sessions, end_session
from app.auth.middleware import clear_session_cookie
from app.auth.models import User, UserSession
from app.auth.sessions import list_sessions, now
from app.tenants.context import person_actor
from app.web.forms import client_ip, user_agent
from app.web.guards import login_required, redirect
from app.web.pages import redirect_with_flash
from app.web.state import db_of, settings_of
from app.web.templating import render


@dataclass(frozen=True)
class SessionRow:
    id: uuid.UUID
    device: str
    ip: str
    user_agent: str
    last_seen: str
    last_seen_utc: str
    last_seen_iso: str
    started_utc: str
    current: bool
    last_seen_at: datetime
    created_at: datetime


def _row(session: UserSession, current: bool) -> SessionRow:
    return SessionRow(
        id=session.id,
        device=device_name(session.user_agent),
        ip=session.ip or "unknown",
        user_agent=session.user_agent,
        last_seen=relative_time(session.last_seen_at, now()),
        last_seen_utc=utc_label(session.last_seen_at),
        last_seen_iso=session.last_seen_at.isoformat(),
        started_utc=utc_label(session.created_at),
        current=current,
        last_seen_at=session.last_seen_at,
        created_at=session.created_at,
    )


@login_required()
async def sessions_page(request: Request, user: User) -> Response:
    mine = current_session(request)
    async with db_of(request).public_session() as db:
        sessions = await list_sessions(db, user.id)
    rows = [_row(session, session.id == mine.id) for session in sessions]
    # This browser first, then the others by last activity.
    rows.sort(key=lambda row: not row.current)
    return render(request, "account/sessions.html", {"sessions": rows})


@login_required()
async def revoke(request: Request, user: User) -> Response:
    try:
        session_id = uuid.UUID(request.path_params["session_id"])
    except ValueError as error:
        raise HTTPException(404) from error
    mine = current_session(request)
    async with db_of(request).public_session() as db:
        ended = await end_session(
            db,
            actor=person_actor(user, client_ip(request)),
            session_id=session_id,
            current_id=mine.id,
            user_agent=user_agent(request),
        )
    if session_id == mine.id:
        # Revoking this browser's own session is signing out.
        response = redirect(request, "/login")
        clear_session_cookie(response, settings_of(request))
        return response
    if ended:
        return redirect_with_flash(request, "/account/sessions", "That session is signed out.")
    return redirect_with_flash(request, "/account/sessions", "That session had already ended.", "info")


@login_required()
async def revoke_others(request: Request, user: User) -> Response:
    async with db_of(request).public_session() as db:
        ended = await end_other_sessions(
            db,
            actor=person_actor(user, client_ip(request)),
            keep=current_session(request).id,
            user_agent=user_agent(request),
        )
    if ended:
        message = f"Signed out of {ended} other session{'' if ended == 1 else 's'}."
        return redirect_with_flash(request, "/account/sessions", message)
    return redirect_with_flash(request, "/account/sessions", "There were no other sessions.", "info")
