"""Small pieces the members page, the invitation forms and their API twins share: the permission table and
the hourly invitation allowance."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.auth.models import User
from app.members.service import MemberError, parse_addresses
from app.security.ratelimit import RateLimiter
from app.tenants.permissions import PERMISSIONS, ROLE_DESCRIPTIONS, ROLE_ORDER
from app.web.forms import retry_message

# Invitations sent per person and hour (each address counts once).
INVITES_PER_HOUR = 50


class TooManyRequests(MemberError):
    """Refused by a rate limit; shown like any other refusal, with status 429."""


def permission_table() -> dict[str, Any]:
    """The permission table of app.tenants.permissions, shaped for the members page."""
    rows = [
        {"name": name, "description": description, "granted": [role in roles for role in ROLE_ORDER]}
        for name, (description, roles) in PERMISSIONS.items()
    ]
    roles = [{"name": role.value, "description": ROLE_DESCRIPTIONS[role]} for role in ROLE_ORDER]
    return {"rows": rows, "roles": roles}


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
