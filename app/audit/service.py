"""Append to a workspace's audit log. Each entry is its own unit of work, so failures get logged too."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from app import activity
from app.audit.models import AuditEvent
from app.auth.models import User
from app.db import Database
from app.tenants.models import Membership


async def record(
    db: Database,
    workspace_id: str,
    action: str,
    *,
    actor_id: uuid.UUID | str | None,
    ip: str = "",
    details: dict[str, Any] | None = None,
) -> None:
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


async def record_for_user_workspaces(
    db: Database,
    user_id: uuid.UUID,
    action: str,
    *,
    ip: str = "",
    details: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> None:
    """Account events (sign-ins, 2FA changes) go to the audit log of every workspace the user belongs to."""
    async with db.public_session() as session:
        workspace_ids = list(
            await session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id))
        )
    for workspace_id in workspace_ids:
        if only is None or workspace_id in set(only):
            await record(db, workspace_id, action, actor_id=user_id, ip=ip, details=details)
