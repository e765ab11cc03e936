"""``/workspaces/{slug}/audit``: the audit log, newest first, with the page's filters (twin of /w/{slug}/audit).

Filtering and paging reuse the page's own query (``app.audit.pages.parse_filters`` and ``list_events``): the
cursor carries the id of the last event returned, the page's ``before``.
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
from app.audit.models import AuditEvent
from app.audit.pages import action_label, describe, list_events, parse_filters
from app.db import Database
from app.members.service import member_labels

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
        actor=names.get(event.actor_id) if event.actor_id else None,
        action=event.action,
        action_label=action_label(event.action),
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
    raw = {
        "action": query.action or "",
        "actor": str(query.actor) if query.actor else "",
        "from": query.from_.isoformat() if query.from_ else "",
        "to": query.to.isoformat() if query.to else "",
    }
    filters = parse_filters(raw)
    if filters.errors:
        raise validation_error([{"field": key, "message": message} for key, message in filters.errors.items()])
    if query.cursor is not None:
        (filters.before,) = decode_cursor(query.cursor, (int,))  # type: ignore[assignment]
    db: Database = call.request.app.state.db
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
