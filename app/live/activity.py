"""The live side of the audit log: each recorded action also becomes an event on the workspace's streams.

Every audit entry is published as an ``ACTIVITY`` event (a one-line sentence for the dashboard feed), and
membership changes also go to the workspace's control topic, so open SSE streams re-check their viewer at
once (a removed member's stream closes). Publishing is best effort: the audit row is the record, and a Redis
outage must not fail the action that was audited.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.live.bus import EventBus, EventType, Topic

logger = logging.getLogger(__name__)

# Past-tense sentences; ``{actor}`` is the acting member's name, the other fields come from ``details``.
SENTENCES: dict[str, str] = {
    "workspace.created": "{actor} created the workspace",
    "auth.login": "{actor} signed in",
    "auth.login_failed": "A sign-in as {actor} failed",
    "auth.logout": "{actor} signed out",
    "auth.2fa_enabled": "{actor} turned on two-factor authentication",
    "auth.2fa_disabled": "{actor} turned off two-factor authentication",
    "member.invited": "{actor} invited {email} as {role}",
    "invitation.revoked": "{actor} revoked the invitation for {email}",
    "invitation.accepted": "{actor} joined the workspace",
    "member.role_changed": "{actor} changed a member's role to {to}",
    "member.removed": "{actor} removed a member",
    "member.left": "{actor} left the workspace",
    "ownership.transferred": "{actor} transferred ownership",
    "settings.changed": "{actor} changed the workspace settings",
    "sso.login": "{actor} signed in with single sign-on",
    "sso.member_provisioned": "{actor} joined through single sign-on",
    "mail.delivered": "Delivered “{subject}” to {email}",
    "apikey.created": "{actor} created the API key “{name}”",
    "apikey.revoked": "{actor} revoked the API key “{name}”",
}

CONTROL_EVENTS: dict[str, EventType] = {
    "member.removed": EventType.MEMBER_REMOVED,
    "member.left": EventType.MEMBER_REMOVED,
    "member.role_changed": EventType.MEMBER_ROLE_CHANGED,
    "ownership.transferred": EventType.MEMBER_ROLE_CHANGED,
    "invitation.accepted": EventType.MEMBER_ADDED,
    "sso.member_provisioned": EventType.MEMBER_ADDED,
}

# The bus of the application handling the current request or job. A context variable rather than a global:
# two applications in one process (tests) each publish through their own Redis connection and event loop.
_bus: ContextVar[EventBus | None] = ContextVar("marid_activity_bus", default=None)


def use_bus(bus: EventBus | None) -> None:
    """Set the bus for this context and the tasks it starts (the worker calls it at start-up)."""
    _bus.set(bus)


class ActivityBusMiddleware:
    """Makes ``app.state.bus`` the activity bus of every request of this application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _bus.set(getattr(scope["app"].state, "bus", None))
        await self.app(scope, receive, send)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "someone" if key == "actor" else "?"


def sentence(action: str, actor: str, details: dict[str, Any]) -> str:
    template = SENTENCES.get(action, "{actor}: " + action.replace(".", " ").replace("_", " "))
    values = _Blank({k: v for k, v in details.items() if isinstance(v, str | int)})
    values["actor"] = actor or "someone"
    return template.format_map(values)


async def publish(workspace_id: str, action: str, *, actor: str, actor_id: str | None, details: dict[str, Any]) -> None:
    bus = _bus.get()
    if bus is None:
        return
    try:
        # Control first: open streams re-check their viewer before this action's activity reaches them.
        control = CONTROL_EVENTS.get(action)
        if control is not None:
            await bus.publish(workspace_id, Topic.control(), control, {"action": action})
        await bus.publish(
            workspace_id,
            Topic.activity(),
            EventType.ACTIVITY,
            {"action": action, "text": sentence(action, actor, details), "actor_id": actor_id},
        )
    except Exception:  # the audit row is committed; a missed live event only costs a refresh
        logger.warning("could not publish activity %s for workspace %s", action, workspace_id, exc_info=True)
