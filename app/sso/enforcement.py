"""What "Require single sign-on" binds: one workspace's pages, never its members' other workspaces.

* **Step-up.** A member (not the owner: break-glass) enters a workspace that requires single sign-on only with
  a session that has done that workspace's single sign-on: a row (session, workspace, identity) made by the
  callback. It ends with the session, or when that identity is unlinked. Any other session (a password one,
  or one from another workspace's single sign-on) keeps working everywhere else.
* **Managed accounts.** Only when the workspace also turns this on, and only for members whose address is in a
  domain the workspace has verified, is the whole account single-sign-on only: password sign-in is refused
  (naming the workspace) and their password sessions end.

No HTTP here; services flush, the caller commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User, UserSession
from app.sso.models import SsoConnection, SsoDomain, SsoStepUp
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import Role


async def needs_step_up(db: AsyncSession, *, workspace_id: str, role: str, session_id: uuid.UUID) -> bool:
    """Whether this session must do the workspace's single sign-on before entering it."""
    if role == Role.OWNER:
        return False
    stepped_up = exists().where(SsoStepUp.session_id == session_id, SsoStepUp.workspace_id == workspace_id)
    required = await db.scalar(
        select(SsoConnection.workspace_id).where(
            SsoConnection.workspace_id == workspace_id,
            SsoConnection.enabled.is_(True),
            SsoConnection.enforce_sso.is_(True),
            ~stepped_up,
        )
    )
    return required is not None


async def record_step_up(db: AsyncSession, *, session_id: uuid.UUID, workspace_id: str, identity_id: uuid.UUID) -> None:
    statement = insert(SsoStepUp).values(session_id=session_id, workspace_id=workspace_id, identity_id=identity_id)
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[SsoStepUp.session_id, SsoStepUp.workspace_id],
            set_={"identity_id": identity_id, "at": func.now()},
        )
    )


def _managed_members(workspace_id: str) -> Select[User]:
    """Members (but the owner) whose address is in a domain the workspace verified."""
    domain_of_email = func.split_part(User.email, "@", 2)
    verified = select(SsoDomain.domain).where(
        SsoDomain.workspace_id == workspace_id, SsoDomain.verified_at.is_not(None)
    )
    return (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.workspace_id == workspace_id,
            Membership.role != Role.OWNER.value,
            func.lower(domain_of_email).in_(verified),
        )
        .order_by(User.email)
    )


async def managing_workspaces(db: AsyncSession, user: User) -> list[Workspace]:
    """The workspaces that have made ``user``'s account single-sign-on only (see the module docstring)."""
    domain = user.email.rsplit("@", 1)[-1].lower()
    rows = await db.scalars(
        select(Workspace)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .join(SsoConnection, SsoConnection.workspace_id == Workspace.id)
        .join(SsoDomain, SsoDomain.workspace_id == Workspace.id)
        .where(
            Membership.user_id == user.id,
            Membership.role != Role.OWNER.value,
            SsoConnection.enabled.is_(True),
            SsoConnection.enforce_sso.is_(True),
            SsoConnection.managed_accounts.is_(True),
            SsoDomain.domain == domain,
            SsoDomain.verified_at.is_not(None),
        )
        .order_by(Workspace.name)
    )
    return list(rows)


async def password_login_blocked(db: AsyncSession, user: User) -> str | None:
    """Why ``user`` may not sign in with a password, or None (only managed accounts are refused)."""
    workspaces = await managing_workspaces(db, user)
    if not workspaces:
        return None
    return (
        f"Your account is managed by the workspace “{workspaces[0].name}”, which requires single sign-on. "
        "Use Continue with SSO."
    )


async def end_managed_password_sessions(db: AsyncSession, workspace_id: str) -> int:
    """End the sessions not started by single sign-on of the workspace's managed members; how many ended.

    Callers make sure the workspace has managed accounts on (and requires single sign-on).
    """
    members = _managed_members(workspace_id).with_only_columns(User.id).order_by(None)
    result = await db.execute(
        delete(UserSession).where(UserSession.user_id.in_(members), UserSession.auth_method != "sso")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def managed_accounts_on(db: AsyncSession, workspace_id: str) -> bool:
    connection = await db.get(SsoConnection, workspace_id)
    return bool(connection and connection.enabled and connection.enforce_sso and connection.managed_accounts)


@dataclass(frozen=True)
class Affected:
    """Who a setting affects, for the settings page to show before it is saved."""

    # Members who will be asked for single sign-on when they open this workspace (all but the owner).
    step_up: list[User]
    # Members whose whole account becomes single-sign-on only (managed accounts).
    managed: list[User]


async def affected_members(db: AsyncSession, workspace_id: str, *, enforce: bool, managed: bool) -> Affected:
    step_up: list[User] = []
    if enforce:
        rows = await db.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.workspace_id == workspace_id, Membership.role != Role.OWNER.value)
            .order_by(User.email)
        )
        step_up = list(rows)
    managed_users = list(await db.scalars(_managed_members(workspace_id))) if enforce and managed else []
    return Affected(step_up=step_up, managed=managed_users)
