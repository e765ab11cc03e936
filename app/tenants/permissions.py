"""Roles and what each may do: the one permission table, used by every check and shown on the members page."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_ORDER = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER)

ROLE_DESCRIPTIONS = {
    Role.OWNER: "Everything, including deleting the workspace and transferring ownership. One per workspace.",
    Role.ADMIN: "Manage members, invitations, secrets, settings and the audit log, and do everything a member can.",
    Role.MEMBER: "Create and run agents, pipelines and swarms; work the project board.",
    Role.VIEWER: "See everything in the workspace; change nothing.",
}

# permission -> (description, roles that hold it)
PERMISSIONS: dict[str, tuple[str, frozenset[Role]]] = {
    "workspace.view": ("See the workspace, its agents, runs and board", frozenset(ROLE_ORDER)),
    "workspace.work": ("Create and run agents, pipelines, swarms and tasks", frozenset(ROLE_ORDER[:3])),
    # Admins only: granting a secret to an agent hands its value to that agent's sandbox, where the agent (and
    # whoever steers it) can read it, so a grant is as good as reading; replacing or deleting one changes what
    # every agent holding it uses. Members see which secrets exist (names, masked previews) and who gets them.
    "secrets.manage": ("Create, replace, delete and grant workspace secrets", frozenset(ROLE_ORDER[:2])),
    "members.view": ("See the member list", frozenset(ROLE_ORDER)),
    "members.invite": ("Invite people and revoke invitations", frozenset(ROLE_ORDER[:2])),
    "members.manage": ("Change members' roles and remove members", frozenset(ROLE_ORDER[:2])),
    "settings.edit": ("Change workspace settings (name, 2FA requirement)", frozenset(ROLE_ORDER[:2])),
    "audit.view": ("Read the audit log", frozenset(ROLE_ORDER[:2])),
    # Spend is money: the people who run agents (and pay for them) see it, read-only viewers do not.
    "usage.view": ("See LLM usage and spend: the call log, charts, budgets", frozenset(ROLE_ORDER[:3])),
    # Provider keys spend the workspace's money: the same people who manage members and settings.
    "providers.manage": (
        "Add LLM providers and their keys, edit the model catalogue and its prices",
        frozenset(ROLE_ORDER[:2]),
    ),
    "ownership.transfer": ("Transfer ownership to another member", frozenset({Role.OWNER})),
    "workspace.delete": ("Delete the workspace and all its data", frozenset({Role.OWNER})),
}


def can(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role in PERMISSIONS[permission][1]


# Each role's permissions as one set, made once: live streams test every event against it (a set lookup).
_HELD: dict[str, frozenset[str]] = {
    role.value: frozenset(name for name, (_, roles) in PERMISSIONS.items() if role in roles) for role in ROLE_ORDER
}


def permissions_of(role: str) -> frozenset[str]:
    """Every permission ``role`` holds (empty for a string that is not a role)."""
    return _HELD.get(role, frozenset())


def assignable_roles(actor_role: str) -> list[Role]:
    """Roles an actor may give to others: owners give any but owner (that is a transfer); admins up to admin."""
    if actor_role == Role.OWNER:
        return [Role.ADMIN, Role.MEMBER, Role.VIEWER]
    if actor_role == Role.ADMIN:
        return [Role.ADMIN, Role.MEMBER, Role.VIEWER]
    return []
