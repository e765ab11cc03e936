"""Signing sessions out, as the sessions page and the JSON API both do it: the change, then its audit entries.

Sessions are account security, so the entries go to every workspace the user belongs to; they are written
after the change has committed (``app.audit.service.record`` opens its own unit of work per workspace).
"""

from __future__ import annotations

import uuid

from app.audit.service import record_for_user_workspaces
from app.auth.sessions import revoke_all_sessions, revoke_session
from app.db import Database


async def end_session(
    db: Database, user_id: uuid.UUID, session_id: uuid.UUID, *, current_id: uuid.UUID | None, ip: str
) -> bool:
    """Sign one of the user's sessions out (``current_id``: the one acting, if any); False if there was none."""
    async with db.public_session() as session:
        ended = await revoke_session(session, user_id, session_id)
    if ended:
        details = {"session": str(session_id), "own": session_id == current_id}
        await record_for_user_workspaces(db, user_id, "auth.session_revoked", ip=ip, details=details)
    return ended


async def end_other_sessions(db: Database, user_id: uuid.UUID, *, keep: uuid.UUID, ip: str) -> int:
    """Sign every session of the user out but ``keep``; returns how many ended."""
    async with db.public_session() as session:
        ended = await revoke_all_sessions(session, user_id, keep=keep)
    await record_for_user_workspaces(db, user_id, "auth.sessions_revoked", ip=ip, details={"sessions_ended": ended})
    return ended
