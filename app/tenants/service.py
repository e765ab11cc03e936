"""Workspace lifecycle. Services flush but never commit: the request or job that called them does."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import role_secrets_of
from app.security.single_line import SingleLineError, clean_single_line
from app.tenants.models import Membership, Workspace
from app.tenants.provisioning import create_workspace_schema, drop_workspace_schema
from app.tenants.scripts import TenantScripts, default_scripts

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
# Words that would collide with top-level URLs.
RESERVED_SLUGS = frozenset(
    {"api", "static", "login", "logout", "signup", "settings", "admin", "healthz", "readyz", "w", "new"}
)
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class WorkspaceError(ValueError):
    """A request about a workspace that cannot be done as asked; the message says why."""


def new_workspace_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise WorkspaceError(
            "The URL name must be 1-48 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
        )
    if slug in RESERVED_SLUGS:
        raise WorkspaceError(f"“{slug}” is reserved; choose another URL name.")
    return slug


async def create_workspace(
    session: AsyncSession,
    *,
    name: str,
    slug: str,
    owner_id: uuid.UUID | None = None,
    scripts: TenantScripts = default_scripts,
) -> Workspace:
    """Insert the workspace, create its role, schema and tables, and make ``owner_id`` its owner."""
    try:
        name = clean_single_line(name, "The workspace name", max_length=120)
    except SingleLineError as refused:
        raise WorkspaceError(str(refused)) from None
    slug = validate_slug(slug)
    if await session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        raise WorkspaceError(f"The URL name “{slug}” is taken.")
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
    return workspace


async def delete_workspace(session: AsyncSession, workspace: Workspace) -> None:
    """Remove the workspace row (memberships cascade), its schema and its role."""
    await drop_workspace_schema(await session.connection(), workspace.id)
    await session.delete(workspace)
    await session.flush()
