"""API keys: who may create and revoke which keys, what a key may do, listing. No HTTP here; callers commit,
and each change records its audit entry in their transaction.

How roles and scopes map onto each other is ``app.auth.principal`` (``SCOPE_ROLE`` / ``ROLE_SCOPE``):

* a *service key* acts with the role of its scope: ``admin`` → admin (never owner powers), ``write`` → member,
  ``read`` → viewer;
* a *personal key* acts as its owner, with the lower of its scope and the owner's *current* role (a viewer's
  ``admin`` key can only read), and only while the membership it was created in lasts;
* who may create what: viewers create personal ``read`` keys, members personal keys up to ``write``,
  admins and owners personal keys up to ``admin`` and service keys; everyone revokes their own keys, and
  admins and owners (``members.manage``) revoke any key of the workspace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import format as key_format
from app.apikeys.format import KeyKind
from app.apikeys.models import ApiKey
from app.audit.actor import Actor as AuditActor
from app.audit.service import record
from app.auth.models import User
from app.auth.principal import ROLE_SCOPE as ROLE_SCOPE
from app.auth.principal import SCOPE_ROLE as SCOPE_ROLE
from app.auth.principal import Scope, lower_scope
from app.auth.principal import effective_role as effective_role
from app.auth.sessions import now
from app.errors import Forbidden, NotFound, Refused
from app.security.single_line import single_line_problem
from app.security.tokens import token_hash
from app.tenants.context import WorkspaceAccess, WorkspaceContext
from app.tenants.models import Membership
from app.tenants.permissions import Role, can

NAME_MAX = 80
# Beyond this many usable keys a workspace is asked to clean up first.
MAX_ACTIVE_KEYS_PER_WORKSPACE = 200
# Expiry choices offered by the form (days; None = never), and the furthest custom date accepted.
EXPIRY_CHOICES: dict[str, int | None] = {"never": None, "30": 30, "90": 90, "365": 365}
MAX_EXPIRY_DAYS = 5 * 366


class ApiKeyError(Refused):
    """A key operation that cannot be done as asked; the message says why."""


class ApiKeyNotFound(ApiKeyError, NotFound):
    pass


class ApiKeyForbidden(ApiKeyError, Forbidden):
    pass


# --- roles and scopes ----------------------------------------------------------------------------------------


def max_scope_for(role: str) -> Scope:
    """The highest scope a member with ``role`` may put on a personal key (and that such a key acts with)."""
    return ROLE_SCOPE[Role(role)]


def key_effective_scope(key: ApiKey, owner_role: str | None) -> Scope | None:
    """What a key may do right now: a personal key is capped by its owner's role (None: owner not a member)."""
    scope = Scope(key.scope)
    if key.kind == KeyKind.SERVICE:
        return scope
    if owner_role is None:
        return None
    return lower_scope(scope, max_scope_for(owner_role))


@dataclass(frozen=True)
class Actor:
    """Who manages keys: a member (from the page or a session/personal-key API call) or a service key."""

    user_id: uuid.UUID | None
    role: Role
    # Set when the action comes through an API key (recorded in the audit log).
    key_id: uuid.UUID | None = None
    # Who the audit log names (``app.audit.actor``); by default the person, or nobody for a service key.
    audit: AuditActor | None = None

    @property
    def can_manage(self) -> bool:
        return can(self.role, "members.manage")

    @property
    def audit_actor(self) -> AuditActor:
        if self.audit is not None:
            return self.audit
        if self.user_id is None:
            return AuditActor.system()
        return AuditActor.person(self.user_id, "")


def actor_of(context: WorkspaceContext | WorkspaceAccess) -> Actor:
    """The key actor of a page's or an API call's context, with the role it acts with there."""
    user_id = context.user.id if context.user is not None else None
    key_id = context.principal.key_id if isinstance(context, WorkspaceAccess) else None
    return Actor(user_id=user_id, role=Role(context.role), key_id=key_id, audit=context.actor)


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyView:
    key: ApiKey
    # The personal key's owner as "Name <e-mail>"; None for service keys.
    owner: str | None
    # "active", "expired", "revoked", or "orphaned" (the owner left the workspace the key was made in).
    status: str
    # What the key may do right now (a personal key is capped by its owner's role); None when unusable.
    effective_scope: Scope | None
    mine: bool
    revocable: bool

    @property
    def prefix(self) -> str:
        return key_format.display_prefix(self.key.kind, self.key.lookup_id)


def key_status(key: ApiKey, membership: Membership | None, moment: datetime | None = None) -> str:
    moment = moment or now()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= moment:
        return "expired"
    if key.kind == KeyKind.PERSONAL and not membership_covers(key, membership):
        return "orphaned"
    return "active"


def membership_covers(key: ApiKey, membership: Membership | None) -> bool:
    """A personal key works only within the membership it was created in: leaving and rejoining ends it."""
    return membership is not None and membership.created_at <= key.created_at


async def list_keys(db: AsyncSession, workspace_id: str, viewer: Actor) -> list[KeyView]:
    """The keys ``viewer`` may see: their own personal keys; with ``members.manage`` every key of the workspace.

    Usable keys first, newest first.
    """
    statement = (
        select(ApiKey, User, Membership)
        .outerjoin(User, User.id == ApiKey.user_id)
        .outerjoin(Membership, and_(Membership.workspace_id == ApiKey.workspace_id, Membership.user_id == User.id))
        .where(ApiKey.workspace_id == workspace_id)
        .order_by(ApiKey.created_at.desc())
    )
    if not viewer.can_manage:
        if viewer.user_id is None:
            return []
        statement = statement.where(ApiKey.kind == KeyKind.PERSONAL, ApiKey.user_id == viewer.user_id)
    moment = now()
    views = []
    for key, owner, membership in await db.execute(statement):
        status = key_status(key, membership, moment)
        mine = viewer.user_id is not None and key.user_id == viewer.user_id
        views.append(
            KeyView(
                key=key,
                owner=_label(owner) if owner is not None else None,
                status=status,
                effective_scope=(
                    key_effective_scope(key, membership.role if membership else None) if status == "active" else None
                ),
                mine=mine,
                revocable=key.revoked_at is None and (mine or viewer.can_manage),
            )
        )
    views.sort(key=lambda view: view.status != "active")  # stable: keeps newest first within each group
    return views


def _label(user: User) -> str:
    return f"{user.display_name} <{user.email}>" if user.display_name else user.email


# --- changing ------------------------------------------------------------------------------------------------


def parse_kind(value: str) -> KeyKind:
    try:
        return KeyKind(value)
    except ValueError:
        raise ApiKeyError("Choose a personal or a service key.") from None


def parse_scope(value: str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        raise ApiKeyError("Choose read, write or admin access.") from None


def clean_name(value: str) -> str:
    if problem := single_line_problem(value, "A key name"):
        raise ApiKeyError(problem)
    name = " ".join(value.split())
    if not name:
        raise ApiKeyError("Give the key a name, e.g. what will use it.")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"A key name is at most {NAME_MAX} characters.")
    return name


def parse_expiry(choice: str, custom_date: str = "", *, moment: datetime | None = None) -> datetime | None:
    """The expiry chosen on the form: ``never``, a number of days from ``EXPIRY_CHOICES``, or ``custom`` with an
    ISO date (the key stops working at the start of that day, UTC). None means it never expires."""
    moment = moment or now()
    if choice in EXPIRY_CHOICES:
        days = EXPIRY_CHOICES[choice]
        return None if days is None else moment + timedelta(days=days)
    if choice != "custom":
        raise ApiKeyError("Choose when the key expires.")
    try:
        day = date.fromisoformat(custom_date.strip())
    except ValueError:
        raise ApiKeyError("Enter the expiry date as YYYY-MM-DD.") from None
    return datetime.combine(day, time(0), UTC)


def check_expiry(expires_at: datetime | None, moment: datetime | None = None) -> None:
    moment = moment or now()
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise ApiKeyError("The expiry needs a time zone.")
    if expires_at <= moment:
        raise ApiKeyError("The expiry must be in the future.")
    if expires_at > moment + timedelta(days=MAX_EXPIRY_DAYS):
        raise ApiKeyError("A key can expire at most five years from now; choose “never” for no expiry.")


async def create_key(
    db: AsyncSession,
    *,
    workspace_id: str,
    actor: Actor,
    name: str,
    kind: KeyKind | str,
    scope: Scope | str,
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself (show it once, never store or log it).

    A personal key belongs to the actor and holds at most their role's scope; a service key needs
    ``members.manage``; an actor acting through an API key creates none. Raises :class:`ApiKeyError` (nothing is
    written) when the request is not allowed.
    """
    if actor.key_id is not None:
        # A leaked key must not mint a successor that outlives its revocation: keys are made by people.
        raise ApiKeyForbidden("API keys cannot create API keys; sign in to create one.")
    chosen_kind = parse_kind(str(kind))
    chosen_scope = parse_scope(str(scope))
    clean = clean_name(name)
    moment = now()
    check_expiry(expires_at, moment)
    if chosen_kind == KeyKind.SERVICE:
        if not actor.can_manage:
            raise ApiKeyForbidden("Only owners and admins can create service keys.")
    else:
        if actor.user_id is None:
            raise ApiKeyForbidden("A service key cannot create personal keys; a person has to.")
        allowed = max_scope_for(actor.role)
        if lower_scope(chosen_scope, allowed) != chosen_scope:
            raise ApiKeyForbidden(f"As {actor.role.value} you can give your keys at most {allowed.value} access.")
    active = await db.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.workspace_id == workspace_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > moment),
        )
    )
    if (active or 0) >= MAX_ACTIVE_KEYS_PER_WORKSPACE:
        raise ApiKeyError(f"This workspace has {active} active keys; revoke unused ones first.")
    token = await _unused_token(db, chosen_kind)
    key = ApiKey(
        workspace_id=workspace_id,
        kind=chosen_kind.value,
        name=clean,
        lookup_id=key_format.lookup_id_of(token),
        token_hash=token_hash(token),
        scope=chosen_scope.value,
        user_id=actor.user_id if chosen_kind == KeyKind.PERSONAL else None,
        created_by=actor.user_id,
        expires_at=expires_at,
    )
    db.add(key)
    await db.flush()
    await db.refresh(key, ["created_at"])
    record(db, workspace_id, "apikey.created", actor.audit_actor, audit_details(key, actor))
    return key, token


async def _unused_token(db: AsyncSession, kind: KeyKind) -> str:
    # 62**8 lookup ids: a clash is rare but possible, and the unique index would fail the whole transaction.
    for _ in range(5):
        token = key_format.generate(kind)
        taken = await db.scalar(select(ApiKey.id).where(ApiKey.lookup_id == key_format.lookup_id_of(token)))
        if taken is None:
            return token
    raise RuntimeError("could not find an unused API key lookup id")


async def revoke_key(db: AsyncSession, *, workspace_id: str, actor: Actor, key_id: uuid.UUID | str) -> ApiKey:
    """Revoke a key at once (its next request is refused). Your own personal keys, or any with ``members.manage``.

    Someone else's key that you may not manage is reported as not found, like a key of another workspace.
    """
    try:
        parsed = key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(str(key_id))
    except ValueError:
        raise ApiKeyNotFound("That API key does not exist.") from None
    key = await db.scalar(
        select(ApiKey)
        .where(ApiKey.id == parsed, ApiKey.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    mine = key is not None and actor.user_id is not None and key.user_id == actor.user_id
    if key is None or not (mine or actor.can_manage):
        raise ApiKeyNotFound("That API key does not exist.")
    if key.revoked_at is not None:
        raise ApiKeyError("That API key was already revoked.")
    key.revoked_at = now()
    key.revoked_by = actor.user_id
    await db.flush()
    record(db, workspace_id, "apikey.revoked", actor.audit_actor, audit_details(key, actor))
    return key


# --- audit ---------------------------------------------------------------------------------------------------


def audit_details(key: ApiKey, actor: Actor) -> dict[str, Any]:
    """What the audit log says about a key: never the key itself, only its public prefix."""
    details: dict[str, Any] = {
        "key_id": str(key.id),
        "name": key.name,
        "kind": key.kind,
        "scopes": key.scope,
        "lookup": key_format.display_prefix(key.kind, key.lookup_id),
        "expires": key.expires_at.strftime("%Y-%m-%d %H:%M UTC") if key.expires_at else "never",
    }
    if actor.key_id is not None:
        details["via_key_id"] = str(actor.key_id)
    return details
