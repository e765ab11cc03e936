"""Workspace settings: name, the 2FA requirement, deletion. No HTTP here; callers own the transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.members.service import MemberError, acting_member, lock_workspace
from app.security.single_line import single_line_problem
from app.tenants.models import Workspace
from app.tenants.service import delete_workspace

MAX_NAME = 120


def _flag(raw: str | None) -> bool:
    return raw in {"on", "true", "1", "yes"}


async def update_settings(
    db: AsyncSession, *, workspace_id: str, actor: User, name: str, require_2fa: str | None
) -> dict[str, dict[str, Any]]:
    """Apply the settings form; returns what changed as ``{field: {"from": old, "to": new}}``."""
    workspace = await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, actor.id, "settings.edit")
    if problem := single_line_problem(name, "The workspace name"):
        raise MemberError(problem)
    new_name = " ".join(name.split())
    if not new_name:
        raise MemberError("Enter a name for the workspace.")
    if len(new_name) > MAX_NAME:
        raise MemberError(f"Keep the workspace name to {MAX_NAME} characters.")
    wanted_2fa = _flag(require_2fa)
    if wanted_2fa and not workspace.require_2fa and not actor.has_2fa:
        raise MemberError(
            "Turn on two-factor authentication for your own account first, or you would lock yourself out."
        )
    changes: dict[str, dict[str, Any]] = {}
    if new_name != workspace.name:
        changes["name"] = {"from": workspace.name, "to": new_name}
        workspace.name = new_name
    if wanted_2fa != workspace.require_2fa:
        changes["require_2fa"] = {"from": workspace.require_2fa, "to": wanted_2fa}
        workspace.require_2fa = wanted_2fa
    await db.flush()
    return changes


async def delete_with_confirmation(
    db: AsyncSession, *, workspace_id: str, actor_id: uuid.UUID, confirmation: str
) -> Workspace:
    """Delete the workspace (its schema, role, memberships and invitations) if its name was typed exactly."""
    workspace = await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, actor_id, "workspace.delete")
    if confirmation.strip() != workspace.name:
        raise MemberError(f"Type the workspace name, “{workspace.name}”, exactly to confirm.")
    await delete_workspace(db, workspace)
    return workspace
