"""Activity: an audit entry as the live feed shows it, published on the workspace's streams.

Each entry becomes an ``ACTIVITY`` event (its feed sentence, already written by the publisher) carrying the
permission a viewer needs to see it, and membership changes also go to the control topic first, so open SSE
streams re-check their viewer at once (a removed member's stream closes). This module knows no domain: the
publisher (``app.audit.relay``) looks the sentence, the permission and the control event up in its catalogue.

Events are hints: the audit row in Postgres is the record, pages render from it, and the ``audit_id`` lets a
page that got the same entry twice (a replay after its own re-read) show it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.live.bus import EventBus, EventType, Topic


@dataclass(frozen=True)
class Activity:
    audit_id: int
    action: str
    # The feed's sentence, plain text (pages escape it).
    text: str
    # What a viewer needs to be sent it (``app.live.permissions.required_permission`` reads it).
    permission: str
    at: datetime
    actor_id: str | None = None
    # Published on the control topic first, for membership changes.
    control: EventType | None = None


async def publish_activity(bus: EventBus, workspace_id: str, activity: Activity) -> str:
    """Publish one entry; returns the activity stream id. Raises if the bus is missing or Redis fails."""
    if not isinstance(bus, EventBus):
        # A job or request without the process's bus would lose its events without a trace.
        raise TypeError(f"publishing needs the process's EventBus, got {bus!r}")
    # Control first: open streams re-check their viewer before this action's activity reaches them.
    if activity.control is not None:
        await bus.publish(workspace_id, Topic.control(), activity.control, {"action": activity.action})
    return await bus.publish(
        workspace_id,
        Topic.activity(),
        EventType.ACTIVITY,
        {
            "audit_id": activity.audit_id,
            "action": activity.action,
            "text": activity.text,
            "permission": activity.permission,
            "at": activity.at.isoformat(),
            "actor_id": activity.actor_id,
        },
    )
