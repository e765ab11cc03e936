"""Server-side sessions: a random token in a signed cookie, only its hash in the database (ASVS 7.x).

A session ends after ``session_idle_minutes`` without a request and, whatever the activity, after
``session_absolute_days``. Every login creates a new session (a new id), and revoking one deletes its row, so
the next request with that cookie is anonymous.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User, UserSession
from app.config import Settings
from app.db.direct import DirectConnection, DirectQuery
from app.db.rows import detached, shape_of
from app.security.tokens import new_token, token_hash
from app.tenants.context import MEMBER_OF_COLUMNS, member_of_row
from app.tenants.models import Membership, Workspace

# Writing last_seen_at on every request would turn each page view into a write; once a minute is plenty.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass
class SignedIn:
    user: User
    session: UserSession
    # The person's workspaces (``app.tenants.context.MemberOf``), loaded with the session in one transaction by
    # the authentication middleware: the switcher and the workspace guard need no query of their own.
    memberships: list[Any] = field(default_factory=list)


def now() -> datetime:
    return datetime.now(UTC)


async def start_session(
    db: AsyncSession, settings: Settings, user: User, *, ip: str, user_agent: str, method: str = "password"
) -> tuple[str, UserSession]:
    """Create a session for ``user``; returns the cookie token (shown to nobody else) and the row."""
    token = new_token()
    moment = now()
    row = UserSession(
        user_id=user.id,
        token_hash=token_hash(token),
        expires_at=moment + timedelta(days=settings.session_absolute_days),
        authenticated_at=moment,
        ip=ip[:64],
        user_agent=user_agent[:400],
        auth_method=method,
    )
    db.add(row)
    await db.flush()
    return token, row


_SESSION = shape_of(UserSession)
_USER = shape_of(User)
_MEMBERS_AT = len(_SESSION) + len(_USER)
# Built once, run before every signed-in request: the session, its person and their workspaces (one row per
# workspace, or one with empty workspace columns) in one statement sent by asyncpg itself (``app.db.direct``):
# one round trip, no ORM loading, no per-call SQLAlchemy execution.
_SIGNED_IN = DirectQuery(
    select(*_SESSION.columns, *_USER.columns, *MEMBER_OF_COLUMNS)
    .join_from(UserSession, User, User.id == UserSession.user_id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Workspace, Workspace.id == Membership.workspace_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
    .order_by(Workspace.name)
)
_LAST_SEEN, _EXPIRES, _ID = (_SESSION.keys.index(key) for key in ("last_seen_at", "expires_at", "id"))
_END = DirectQuery(delete(UserSession).where(UserSession.id == bindparam("session_id")))
_SEEN = DirectQuery(
    update(UserSession).where(UserSession.id == bindparam("session_id")).values(last_seen_at=bindparam("moment"))
)


async def load_session(connection: DirectConnection, settings: Settings, token: str) -> SignedIn | None:
    """The live session for a cookie token with the person's workspaces, or None (unknown, revoked, idle too
    long, or past its end: then the row is deleted).

    One statement (on ``Database.direct()``, before every request; nothing cached, so a revoked
    session or a removed membership counts from the very next request); ``user``, ``session`` and the
    memberships come back detached (``app.db.rows``), as a closed session would leave them."""
    rows = await connection.fetch(_SIGNED_IN, {"token_hash": token_hash(token)})
    if not rows:
        return None
    values = list(rows[0])
    moment = now()
    last_seen_at: datetime = values[_LAST_SEEN]
    expires_at: datetime = values[_EXPIRES]
    session_id = values[_ID]
    if expires_at <= moment or moment - last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        await connection.execute(_END, {"session_id": session_id})
        return None
    if moment - last_seen_at > LAST_SEEN_RESOLUTION:
        await connection.execute(_SEEN, {"session_id": session_id, "moment": moment})
        values[_LAST_SEEN] = moment
    memberships = [found for row in rows if (found := member_of_row(row, _MEMBERS_AT)) is not None]
    return SignedIn(
        user=detached(_USER, values, len(_SESSION)), session=detached(_SESSION, values), memberships=memberships
    )


async def list_sessions(db: AsyncSession, user_id: uuid.UUID) -> list[UserSession]:
    rows = await db.scalars(
        select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.last_seen_at.desc())
    )
    return list(rows)


async def revoke_session(db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    result = await db.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.id == session_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_all_sessions(db: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """End every session of a user (but ``keep``): sign out everywhere, password reset, 2FA change."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    result = await db.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_authenticated(db: AsyncSession, session_id: uuid.UUID) -> None:
    """Record a fresh proof of identity (password or 2FA code) for re-authentication checks."""
    await db.execute(update(UserSession).where(UserSession.id == session_id).values(authenticated_at=now()))


def recently_authenticated(session: UserSession, settings: Settings) -> bool:
    return now() - session.authenticated_at <= timedelta(minutes=settings.reauth_minutes)
