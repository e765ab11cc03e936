"""Small pieces the member, invitation, settings and audit pages share."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from app.audit.service import record
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.members.service import MemberError, parse_addresses
from app.security.ratelimit import RateLimiter
from app.tenants.permissions import PERMISSIONS, ROLE_DESCRIPTIONS, ROLE_ORDER
from app.web.forms import client_ip, retry_message

# Invitations sent per person and hour (each address counts once).
INVITES_PER_HOUR = 50


class TooManyRequests(MemberError):
    """Refused by a rate limit; shown like any other refusal, with status 429."""


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def permission_table() -> dict[str, Any]:
    """The permission table of app.tenants.permissions, shaped for the members page."""
    rows = [
        {"name": name, "description": description, "granted": [role in roles for role in ROLE_ORDER]}
        for name, (description, roles) in PERMISSIONS.items()
    ]
    roles = [{"name": role.value, "description": ROLE_DESCRIPTIONS[role]} for role in ROLE_ORDER]
    return {"rows": rows, "roles": roles}


async def audit(
    request: Request, workspace_id: str, action: str, actor_id: uuid.UUID | None, details: dict[str, Any]
) -> None:
    await record(database(request), workspace_id, action, actor_id=actor_id, ip=client_ip(request), details=details)


async def charge_invitations(request: Request, user: User, addresses: str) -> None:
    """Count each address against the inviter's hourly allowance; refuse the lot if it would be exceeded."""
    count = len(parse_addresses(addresses))
    limiter: RateLimiter = request.app.state.rate_limiter
    subject = str(user.id)
    allowance = await limiter.peek("members.invite", subject, limit=INVITES_PER_HOUR, window_seconds=3600)
    if not allowance.allowed or allowance.remaining < count:
        raise TooManyRequests(
            f"You can send {allowance.remaining} more invitations this hour."
            if allowance.allowed
            else retry_message(allowance)
        )
    for _ in range(count):
        result = await limiter.hit("members.invite", subject, limit=INVITES_PER_HOUR, window_seconds=3600)
        if not result.allowed:
            raise TooManyRequests(retry_message(result))
