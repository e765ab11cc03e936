"""Signing sessions out, as the sessions page and the JSON API both do it: the change and its account event,
in the caller's transaction.

Sessions are account security, so the entries go to the person's own security log (never to the workspaces'
audit logs).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.account.events import add_account_event
from app.audit.actor import Actor
from app.auth.sessions import revoke_all_sessions, revoke_session


def _person(actor: Actor) -> uuid.UUID:
    if actor.user_id is None:
        raise ValueError("only a person has sessions")
    return actor.user_id


async def end_session(
    db: AsyncSession, *, actor: Actor, session_id: uuid.UUID, current_id: uuid.UUID | None, user_agent: str = ""
) -> bool:
    """Sign one of the actor's sessions out (``current_id``: the one acting, if any); False if there was none."""
    user_id = _person(actor)
    ended = await revoke_session(db, user_id, session_id)
    if ended:
        details = {"session": str(session_id), "own": session_id == current_id}
        add_account_event(db, user_id, "auth.session_revoked", ip=actor.ip, user_agent=user_agent, details=details)
    return ended


async def end_other_sessions(db: AsyncSession, *, actor: Actor, keep: uuid.UUID, user_agent: str = "") -> int:
    """Sign every session of the actor out but ``keep``; returns how many ended."""
    user_id = _person(actor)
    ended = await revoke_all_sessions(db, user_id, keep=keep)
    details = {"sessions_ended": ended}
    add_account_event(db, user_id, "auth.sessions_revoked", ip=actor.ip, user_agent=user_agent, details=details)
    return ended
