"""Your sessions: every signed-in browser (device, IP, last seen), with revoke and "sign out everywhere else".

Revoking deletes the session's row, so the next request with that browser's cookie is anonymous (ASVS 7.4.x,
7.5.2). Queries are always scoped to the signed-in user: another account's session id is simply not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.account.devices import device_name, relative_time, utc_label
from app.account.web import current_session
from app.audit.service import record_for_user_workspaces
from app.auth.middleware import clear_session_cookie
from app.auth.models import User, UserSession
from app.auth.sessions import list_sessions, now, revoke_all_sessions, revoke_session
from app.web.flash import flash
from app.web.forms import client_ip
from app.web.guards import login_required, redirect
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
        ended = await revoke_session(db, user.id, session_id)
    if ended:
        await record_for_user_workspaces(
            db_of(request), user.id, "auth.session_revoked", ip=client_ip(request),
            details={"session": str(session_id), "own": session_id == mine.id},
        )  # fmt: skip
    if session_id == mine.id:
        # Revoking this browser's own session is signing out.
        response = redirect(request, "/login")
        clear_session_cookie(response, settings_of(request))
        return response
    response = redirect(request, "/account/sessions")
    if ended:
        flash(request, response, "That session is signed out.")
    else:
        flash(request, response, "That session had already ended.", "info")
    return response


@login_required()
async def revoke_others(request: Request, user: User) -> Response:
    mine = current_session(request)
    async with db_of(request).public_session() as db:
        ended = await revoke_all_sessions(db, user.id, keep=mine.id)
    await record_for_user_workspaces(
        db_of(request), user.id, "auth.sessions_revoked", ip=client_ip(request), details={"sessions_ended": ended}
    )
    response = redirect(request, "/account/sessions")
    if ended:
        flash(request, response, f"Signed out of {ended} other session{'' if ended == 1 else 's'}.")
    else:
        flash(request, response, "There were no other sessions.", "info")
    return response
