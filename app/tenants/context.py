"""Which workspace a request is about, and what the caller may do in it: resolved once, for pages and the JSON
API alike.

A workspace is named in the URL by its slug (``/w/<slug>/...``, ``/api/v1/workspaces/<slug>/...``). A caller who
may not see it (not a member; a key bound to another workspace) gets nothing: :func:`resolve_access` answers
None, which both edges turn into 404, the same answer as for a workspace that does not exist, so its existence
does not leak (ASVS 8.4.1). The caller's role there is their *effective* role (``app.auth.principal``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from app.audit.actor import Actor, person_label
from app.auth.models import User
from app.auth.principal import Principal, effective_role
from app.db.rows import detached, shape_of
from app.errors import Forbidden
from app.sso.models import SsoConnection
from app.tenants.models import Invitation, Membership, Workspace
from app.tenants.permissions import can

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
SERVICE_KEY_REFUSED = "Service keys cannot do this; use a personal API key or sign in."


@dataclass(frozen=True)
class WorkspaceContext:
    """A person acting in a workspace: every page, and the API calls of a session or a personal key."""

    workspace: Workspace
    membership: Membership
    user: User
    actor: Actor
    # Their effective role: the membership's, or lower for a personal key with a lower scope.
    role: str

    def can(self, permission: str) -> bool:
        return can(self.role, permission)


@dataclass(frozen=True)
class WorkspaceAccess:
    """What a caller (a person or a service key) may do in a workspace."""

    workspace: Workspace
    role: str
    principal: Principal
    actor: Actor
    # The member acting (session or personal key); None for a service key.
    membership: Membership | None
    user: User | None

    def can(self, permission: str) -> bool:
        return can(self.role, permission)

    @property
    def needs_2fa(self) -> bool:
        """The workspace requires two-factor authentication and the acting person has none."""
        return self.workspace.require_2fa and self.user is not None and not self.user.has_2fa

    @property
    def context(self) -> WorkspaceContext:
        """The acting person's context; refused (403 ``user_required``) for a service key."""
        if self.user is None or self.membership is None:
            error = Forbidden(SERVICE_KEY_REFUSED)
            error.code = "user_required"
            raise error
        return WorkspaceContext(self.workspace, self.membership, self.user, self.actor, self.role)


def person_actor(user: User, ip: str = "") -> Actor:
    """The audit actor of a signed-in person."""
    return Actor.person(user.id, person_label(user.display_name, user.email), ip=ip)


def actor_of(principal: Principal, ip: str = "") -> Actor:
    """The audit actor of a principal: its person, or (a service key) nobody in particular."""
    return Actor.system(ip=ip) if principal.user is None else person_actor(principal.user, ip)


async def resolve_access(
    session: AsyncSession, principal: Principal, slug: str, *, ip: str = ""
) -> WorkspaceAccess | None:
    """The workspace named by ``slug`` as ``principal`` may see it, with its effective role; None when it may not."""
    if not SLUG_PATTERN.match(slug):
        return None
    membership: Membership | None = None
    if principal.user is not None:
        row = (
            await session.execute(
                select(Workspace, Membership)
                .join(Membership, Membership.workspace_id == Workspace.id)
                .where(Workspace.slug == slug, Membership.user_id == principal.user.id)
            )
        ).first()
        if row is None:
            return None
        workspace, membership = row
    else:
        found = await session.scalar(select(Workspace).where(Workspace.slug == slug))
        if found is None:
            return None
        workspace = found
    role = effective_role(principal, workspace.id, membership.role if membership is not None else None)
    if role is None:  # a key of another workspace, a service key with no scope
        return None
    return WorkspaceAccess(workspace, role.value, principal, actor_of(principal, ip), membership, principal.user)


@dataclass(frozen=True)
class MemberOf:
    """One workspace of a signed-in person, as every page of the request needs it (the switcher, the guard)."""

    workspace: Workspace
    membership: Membership
    # Its single sign-on is on and required (members then need a step-up per session; see app.sso.enforcement).
    requires_sso: bool
    # Someone besides the owner is a member, or was invited (the dashboard's "Invite your team" item reads it
    # from here rather than in a transaction of its own; app.members.checklist).
    has_team: bool = False


_WORKSPACE = shape_of(Workspace)
_MEMBERSHIP = shape_of(Membership)
_others = aliased(Membership)
# What a MemberOf is read from, after Workspace and Membership are joined: the workspace, the membership, whether
# it requires its single sign-on, and whether someone besides the owner is a member or was invited.
MEMBER_OF_COLUMNS: tuple[ColumnElement[Any], ...] = (
    *_WORKSPACE.columns,
    *_MEMBERSHIP.columns,
    select(SsoConnection.workspace_id)
    .where(
        SsoConnection.workspace_id == Workspace.id,
        SsoConnection.enabled.is_(True),
        SsoConnection.enforce_sso.is_(True),
    )
    .exists(),
    or_(
        select(_others.user_id).where(_others.workspace_id == Workspace.id, _others.role != "owner").exists(),
        select(Invitation.id).where(Invitation.workspace_id == Workspace.id).exists(),
    ),
)
# Built once: every workspace of a person, by name.
_MEMBERSHIPS = (
    select(*MEMBER_OF_COLUMNS)
    .join_from(Workspace, Membership, Membership.workspace_id == Workspace.id)
    .where(Membership.user_id == bindparam("user_id"))
    .order_by(Workspace.name)
)


def member_of_row(row: Sequence[Any], start: int = 0) -> MemberOf | None:
    """The MemberOf in ``row[start:]`` (columns :data:`MEMBER_OF_COLUMNS`); None for an outer join's empty side.

    The workspace and membership come back detached (``app.db.rows``)."""
    if row[start] is None:
        return None
    end = start + len(_WORKSPACE) + len(_MEMBERSHIP)
    return MemberOf(
        detached(_WORKSPACE, row, start),
        detached(_MEMBERSHIP, row, start + len(_WORKSPACE)),
        bool(row[end]),
        bool(row[end + 1]),
    )


async def memberships_of(db: AsyncSession | AsyncConnection, user_id: uuid.UUID) -> list[MemberOf]:
    """Every workspace of a person, by name, in one Core query. (The authentication middleware reads them with
    the session itself, in the same statement: ``app.auth.sessions.load_session``.)"""
    rows = await db.execute(_MEMBERSHIPS, {"user_id": user_id})
    return [found for row in rows if (found := member_of_row(row)) is not None]


def access_from(
    memberships: list[MemberOf], principal: Principal, slug: str, *, ip: str = ""
) -> WorkspaceAccess | None:
    """:func:`resolve_access` for a person whose workspaces are already loaded (no query)."""
    if principal.user is None or not SLUG_PATTERN.match(slug):
        return None
    for entry in memberships:
        if entry.workspace.slug == slug:
            role = effective_role(principal, entry.workspace.id, entry.membership.role)
            if role is None:
                return None
            return WorkspaceAccess(
                entry.workspace, role.value, principal, actor_of(principal, ip), entry.membership, principal.user
            )
    return None


# request.state key: the KeyWorkspace of a Bearer request (set by app.apikeys.auth.ApiKeyMiddleware).
KEY_WORKSPACE = "api_key_workspace"


@dataclass(frozen=True)
class KeyWorkspace:
    """A key's workspace and its owner's membership there, as the request's key lookup read them (one query)."""

    workspace: Workspace
    # The personal key's owner's membership (None for a service key).
    membership: Membership | None


def access_of_key(loaded: KeyWorkspace, principal: Principal, slug: str, *, ip: str = "") -> WorkspaceAccess | None:
    """:func:`resolve_access` for a key principal whose workspace the key lookup already read (no query).

    A key acts in its own workspace only, so any other slug is None, as :func:`resolve_access` answers for it.
    """
    workspace = loaded.workspace
    if principal.kind == "session" or not SLUG_PATTERN.match(slug) or workspace.slug != slug:
        return None
    membership = loaded.membership if principal.user is not None else None
    if principal.user is not None and membership is None:
        return None
    role = effective_role(principal, workspace.id, membership.role if membership is not None else None)
    if role is None:
        return None
    return WorkspaceAccess(workspace, role.value, principal, actor_of(principal, ip), membership, principal.user)


async def workspaces_of(db: AsyncSession, user: User) -> list[tuple[Workspace, str]]:
    rows = await db.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user.id)
        .order_by(Workspace.name)
    )
    return [(workspace, role) for workspace, role in rows]


async def remember_workspace(db: AsyncSession, user: User, workspace_id: str) -> None:
    """Note the workspace ``user`` just opened: signing in goes back there (:func:`last_workspace`)."""
    await db.execute(update(User).where(User.id == user.id).values(last_workspace_id=workspace_id))
    user.last_workspace_id = workspace_id


async def last_workspace(db: AsyncSession, user: User) -> Workspace | None:
    """The workspace ``user`` used last, if they are still a member of it."""
    if user.last_workspace_id is None:
        return None
    found = await db.execute(
        select(Workspace)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Workspace.id == user.last_workspace_id, Membership.user_id == user.id)
    )
    return found.scalar_one_or_none()


async def start_page_for(db: AsyncSession, user: User) -> str:
    """Where a signed-in person starts: the workspace they used last, else the list of their workspaces."""
    workspace = await last_workspace(db, user)
    return f"/w/{workspace.slug}" if workspace is not None else "/workspaces"
