"""``/workspaces/{slug}/audit``: the audit log, newest first, with the page's filters (twin of /w/{slug}/audit).

The validated query becomes the same typed filter the page builds (``app.audit.service.AuditFilter``), checked
by the same rules; the cursor carries the id of the last event returned, the page's ``before``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date

from pydantic import BaseModel, Field

from app.api.errors import validation_error
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, decode_cursor, encode_cursor
from app.api.principal import Scope
from app.api.schemas import AuditEventOut, AuditList
from app.audit import catalogue
from app.audit.models import AuditEvent
from app.audit.service import AuditFilter, actor_name, describe, filter_problems, list_events
from app.members.service import member_labels
from app.web.state import db_of

# The filter reads "to" as "before the next day", which must exist.
LAST_DAY = date(9999, 12, 30)


class AuditQuery(PageQuery):
    action: str | None = Field(None, max_length=64, description="Only this action, e.g. `member.invited`.")
    actor: uuid.UUID | None = Field(None, description="Only events by this user id.")
    from_: date | None = Field(None, alias="from", le=LAST_DAY, description="From this day (UTC), inclusive.")
    to: date | None = Field(None, le=LAST_DAY, description="To this day (UTC), inclusive.")


def _event_out(event: AuditEvent, names: dict[str, str]) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at.astimezone(UTC),
        actor_id=event.actor_id,
        actor=actor_name(event, names),
        action=event.action,
        action_label=catalogue.label(event.action),
        ip=event.ip,
        details=event.details if isinstance(event.details, dict) else {"value": event.details},
        summary=describe(event.details),
    )


@api_route(
    "GET",
    "/workspaces/{slug}/audit",
    scope=Scope.READ,
    permission="audit.view",
    query=AuditQuery,
    response=AuditList,
    summary="Read the audit log",
    tags=["Audit log"],
)
async def list_audit_events(call: Call) -> BaseModel:
    """Who did what and when in this workspace, newest first; filter by action, actor and days."""
    query: AuditQuery = call.query
    filters = AuditFilter(action=query.action or None, actor=query.actor, start=query.from_, end=query.to)
    if problems := filter_problems(filters):
        raise validation_error([{"field": key, "message": message} for key, message in problems.items()])
    if query.cursor is not None:
        (filters.before,) = decode_cursor(query.cursor, (int,))  # type: ignore[assignment]
    db = db_of(call.request)
    async with db.tenant_session(call.workspace.workspace.id) as session:
        events = await list_events(session, filters, query.limit + 1)
    more = len(events) > query.limit
    events = events[: query.limit]
    async with db.public_session() as session:
        # Actors who have left are still named: the log outlives memberships.
        names = await member_labels(session, {event.actor_id for event in events if event.actor_id})
    return AuditList(
        data=[_event_out(event, names) for event in events],
        next_cursor=encode_cursor((events[-1].id,)) if more and events else None,
    )
