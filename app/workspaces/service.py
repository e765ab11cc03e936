"""The workspace domain: create (schema, role and owner), rename and settings, delete. Services flush but never
commit: the request or job that called them does; each change records its audit entry in that transaction."""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.models import User
from app.db import role_secrets_of
from app.errors import Invalid
from app.members.service import MemberError, acting_member, lock_workspace, person_of
from app.security.single_line import SingleLineError, clean_single_line, single_line_problem
from app.tenants.context import SLUG_PATTERN
from app.tenants.models import Membership, Workspace
from app.tenants.provisioning import create_workspace_schema, drop_workspace_schema
from app.tenants.scripts import TenantScripts, default_scripts

# The audit log goes with a deleted workspace's schema; the operator's log keeps the trace.
logger = logging.getLogger("marid.workspaces")
# Words that would collide with top-level URLs.
RESERVED_SLUGS = frozenset(
    {"api", "static", "login", "logout", "signup", "settings", "admin", "healthz", "readyz", "w", "new"}
)
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class WorkspaceError(Invalid):
    """A new workspace's name or URL name that cannot be used; ``errors`` names the field (name or slug)."""

    def __init__(self, message: str, *, field: str = "name") -> None:
        super().__init__(message, field=field)


def new_workspace_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise WorkspaceError(
            "The URL name must be 1-48 lowercase letters, digits or hyphens, not starting or ending with a hyphen.",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise WorkspaceError(f"“{slug}” is reserved; choose another URL name.", field="slug")
    return slug


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return await session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None


async def free_slug(session: AsyncSession, wanted: str) -> str:
    """A free URL name close to ``wanted`` (``acme-2``, ``acme-3``...): what to suggest when it is taken."""
    stem = wanted[:44].strip("-") or "workspace"
    candidates = [f"{stem}-{number}" for number in range(2, 12)]
    taken = set(await session.scalars(select(Workspace.slug).where(Workspace.slug.in_(candidates))))
    for candidate in candidates:
        if candidate not in taken and candidate not in RESERVED_SLUGS:
            return candidate
    return f"{stem[:39]}-{secrets.token_hex(4)}"


async def create_workspace(
    session: AsyncSession,
    *,
    name: str,
    slug: str,
    owner_id: uuid.UUID | None = None,
    scripts: TenantScripts = default_scripts,
    actor: Actor | None = None,
) -> Workspace:
    """Insert the workspace, create its role, schema and tables, and make ``owner_id`` its owner; with an
    ``actor``, its log's first entry says who created it."""
    try:
        name = clean_single_line(name, "The workspace name", max_length=120)
    except SingleLineError as refused:
        raise WorkspaceError(str(refused)) from None
    slug = validate_slug(slug)
    if await slug_taken(session, slug):
        alternative = await free_slug(session, slug)
        raise WorkspaceError(f"The URL name “{slug}” is taken. “{alternative}” is free.", field="slug")
    workspace = Workspace(id=new_workspace_id(), slug=slug, name=name)
    session.add(workspace)
    # No ORM relationship orders these two inserts, so flush the workspace row first.
    await session.flush()
    if owner_id is not None:
        session.add(Membership(workspace_id=workspace.id, user_id=owner_id, role="owner"))
        await session.flush()
    workspace.schema_revision = await create_workspace_schema(
        await session.connection(), workspace.id, role_secrets_of(session), scripts
    )
    # The row was updated behind the ORM's back (revision and sealed password): load them on next access.
    session.expire(workspace, ["db_password_enc"])
    if actor is not None:
        record(session, workspace.id, "workspace.created", actor, {"name": workspace.name, "slug": workspace.slug})
    return workspace


async def delete_workspace(session: AsyncSession, workspace: Workspace) -> None:
    """Remove the workspace row (memberships cascade), its schema and its role."""
    await drop_workspace_schema(await session.connection(), workspace.id)
    await session.delete(workspace)
    await session.flush()


MAX_NAME = 120


async def save_settings(
    db: AsyncSession, *, workspace_id: str, actor: Actor, name: str, require_2fa: bool
) -> tuple[Workspace, dict[str, dict[str, Any]]]:
    """Rename the workspace and set its 2FA requirement; returns it and what changed as
    ``{field: {"from": old, "to": new}}`` (each change is an audit entry)."""
    workspace = await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, person_of(actor), "settings.edit")
    if problem := single_line_problem(name, "The workspace name"):
        raise MemberError(problem)
    new_name = " ".join(name.split())
    if not new_name:
        raise MemberError("Enter a name for the workspace.")
    if len(new_name) > MAX_NAME:
        raise MemberError(f"Keep the workspace name to {MAX_NAME} characters.")
    if require_2fa and not workspace.require_2fa:
        person = await db.get(User, person_of(actor))
        if person is None or not person.has_2fa:
            raise MemberError(
                "Turn on two-factor authentication for your own account first, or you would lock yourself out."
            )
    changes: dict[str, dict[str, Any]] = {}
    if new_name != workspace.name:
        changes["name"] = {"from": workspace.name, "to": new_name}
        workspace.name = new_name
    if require_2fa != workspace.require_2fa:
        changes["require_2fa"] = {"from": workspace.require_2fa, "to": require_2fa}
        workspace.require_2fa = require_2fa
    await db.flush()
    if "name" in changes:
        record(db, workspace_id, "settings.changed", actor, {"name": changes["name"]})
    if "require_2fa" in changes:
        record(db, workspace_id, "workspace.2fa_required_changed", actor, changes["require_2fa"])
    return workspace, changes


async def delete_with_confirmation(
    db: AsyncSession, *, workspace_id: str, actor: Actor, confirmation: str
) -> Workspace:
    """Delete the workspace (its schema, role, memberships and invitations) if its name was typed exactly."""
    workspace = await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, person_of(actor), "workspace.delete")
    if confirmation.strip() != workspace.name:
        raise MemberError(f"Type the workspace name, “{workspace.name}”, exactly to confirm.")
    await delete_workspace(db, workspace)
    logger.info("workspace %s (%s) deleted by %s from %s", workspace.id, workspace.slug, actor.id, actor.ip)
    return workspace
