"""Append to a workspace's audit log. Each entry is its own unit of work, so failures get logged too."""

from __future__ import annotations

import uuid
from typing import Any

from app.audit.models import AuditEvent
from app.auth.models import User
from app.db import Database
from app.live import activity


async def record(
    db: Database,
    workspace_id: str,
    action: str,
    *,
    actor_id: uuid.UUID | str | None,
    ip: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    _crash_if_asked(action)  # TEMPORARY: shows the test of issue 9 failing before the outbox
    async with db.tenant_session(workspace_id) as session:
        session.add(
            AuditEvent(
                action=action,
                actor_id=str(actor_id) if actor_id else None,
                ip=ip[:64],
                details=details or {},
            )
        )
    await activity.publish(
        workspace_id,
        action,
        actor=await _actor_name(db, actor_id),
        actor_id=str(actor_id) if actor_id else None,
        details=details or {},
    )


async def _actor_name(db: Database, actor_id: uuid.UUID | str | None) -> str:
    if not actor_id:
        return ""
    try:
        user_id = actor_id if isinstance(actor_id, uuid.UUID) else uuid.UUID(str(actor_id))
    except ValueError:
        return ""
    async with db.public_session() as session:
        user = await session.get(User, user_id)
    return (user.display_name or user.email) if user else ""


def _crash_if_asked(action: str) -> None:
    import os
    import signal

    if os.environ.get("MARID_ENV") == "test" and os.environ.get("MARID_TEST_CRASH_AFTER_COMMIT") == action:
        os.kill(os.getpid(), signal.SIGKILL)
