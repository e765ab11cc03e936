"""Signing sessions out, as the sessions page and the JSON API both do it: the change, then its account event.

Sessions are account security, so the entries go to the person's own security log (never to the workspaces'
audit logs); they are written after the change has committed (``record_account_event`` is its own unit of work).
"""

from __future__ import annotations

import uuid

from app.account.events import record_account_event
from app.auth.sessions import revoke_all_sessions, revoke_session
from app.db import Database


async def end_session(
    db: Database,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    current_id: uuid.UUID | None,
    ip: str,
    user_agent: str = "",
) -> bool:
    """Sign one of the user's sessions out (``current_id``: the one acting, if any); False if there was none."""
    async with db.public_session() as session:
        ended = await revoke_session(session, user_id, session_id)
    if ended:
        details = {"session": str(session_id), "own": session_id == current_id}
        await record_account_event(db, user_id, "auth.session_revoked", ip=ip, user_agent=user_agent, details=details)
    return ended


async def end_other_sessions(
    db: Database, user_id: uuid.UUID, *, keep: uuid.UUID, ip: str, user_agent: str = ""
) -> int:
    """Sign every session of the user out but ``keep``; returns how many ended."""
    async with db.public_session() as session:
        ended = await revoke_all_sessions(session, user_id, keep=keep)
    details = {"sessions_ended": ended}
    await record_account_event(db, user_id, "auth.sessions_revoked", ip=ip, user_agent=user_agent, details=details)
    return ended
