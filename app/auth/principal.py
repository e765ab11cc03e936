"""Who is calling, and with which role they act in a workspace: a browser session, a personal API key or a
service key. Pages and the JSON API resolve the same principal to the same role (``app.tenants.context``).

Every key belongs to exactly one workspace. A personal key acts as its owner in that workspace (never more than
the owner's role allows); a service key acts as itself, with the role its scopes imply.

The one mapping between roles and scopes lives here (``SCOPE_ROLE`` / ``ROLE_SCOPE``): a service key acts with
the role of its scope (``admin`` → admin, never owner powers; ``write`` → member; ``read`` → viewer); a
personal key with the lower of its scope and its owner's *current* role.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from app.auth.models import User
from app.tenants.permissions import ROLE_ORDER, Role


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


# A scope includes the ones below it.
SCOPE_ORDER = (Scope.READ, Scope.WRITE, Scope.ADMIN)


def implied(scope: Scope) -> frozenset[Scope]:
    return frozenset(SCOPE_ORDER[: SCOPE_ORDER.index(scope) + 1])


ALL_SCOPES = implied(Scope.ADMIN)


@dataclass(frozen=True)
class Principal:
    kind: Literal["session", "personal_key", "service_key"]
    # The acting user: the session's or the personal key's owner; None for a service key.
    user: User | None
    # The one workspace a key is bound to; None for a session (it may act in all the user's workspaces).
    workspace_id: str | None
    scopes: frozenset[Scope]
    key_id: uuid.UUID | None = None

    @classmethod
    def session(cls, user: User) -> Principal:
        """A signed-in browser: the person, in every workspace they belong to, with every scope."""
        return cls(kind="session", user=user, workspace_id=None, scopes=ALL_SCOPES)

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def may_use_workspace(self, workspace_id: str) -> bool:
        return self.workspace_id is None or self.workspace_id == workspace_id


ApiPrincipal = Principal  # the name the JSON API has always used

# The role each scope acts with, and the highest scope each role may hold. Owners are capped at admin: the
# owner-only actions (deleting the workspace, transferring it) need a person at a browser.
SCOPE_ROLE: dict[Scope, Role] = {Scope.READ: Role.VIEWER, Scope.WRITE: Role.MEMBER, Scope.ADMIN: Role.ADMIN}
ROLE_SCOPE: dict[Role, Scope] = {
    Role.OWNER: Scope.ADMIN,
    Role.ADMIN: Scope.ADMIN,
    Role.MEMBER: Scope.WRITE,
    Role.VIEWER: Scope.READ,
}


def lower_scope(a: Scope, b: Scope) -> Scope:
    return a if SCOPE_ORDER.index(a) <= SCOPE_ORDER.index(b) else b


def lower_role(a: Role, b: Role) -> Role:
    return a if ROLE_ORDER.index(a) >= ROLE_ORDER.index(b) else b


def top_scope(scopes: frozenset[Scope]) -> Scope | None:
    held = [scope for scope in SCOPE_ORDER if scope in scopes]
    return held[-1] if held else None


def effective_role(
    principal: Principal, workspace_id: str | None = None, member_role: str | None = None
) -> Role | None:
    """The role ``principal`` acts with; None means no access (answer 404, as for a workspace that does not exist).

    * key principals: the role of the principal's top scope (``read`` → viewer, ``write`` → member, ``admin`` →
      admin, never owner). For a personal key the scopes were already capped by its owner's role when the
      request was authenticated; pass ``member_role`` (the owner's role, freshly read) to apply the cap again.
    * session principals: the member's own role, ``member_role`` (None when they are not a member).
    * with ``workspace_id``: None for any workspace but a key's own.

    Check permissions on the result with ``app.tenants.permissions.can(role, "workspace.work")`` and friends.
    """
    if workspace_id is not None and not principal.may_use_workspace(workspace_id):
        return None
    if principal.kind == "session":
        return Role(member_role) if member_role else None
    scope = top_scope(principal.scopes)
    if scope is None:
        return None
    role = SCOPE_ROLE[scope]
    if principal.kind == "personal_key" and member_role is not None:
        role = lower_role(role, Role(member_role))
    return role
