"""The audit log page: newest first, filtered by action, actor and date range, paged by an id cursor."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from app.audit import catalogue
from app.audit.models import AuditEvent
from app.audit.service import PAGE_SIZE, AuditFilter, actor_name, describe, filter_problems, known_actions, list_events
from app.members.service import list_members, member_labels
from app.tenants.context import WorkspaceContext
from app.web.guards import workspace_required
from app.web.state import db_of
from app.web.templating import is_htmx, render


@dataclass
class Filters:
    """The page's filter form: the typed filter, what was typed for the actor, and what was wrong."""

    query: AuditFilter
    actor: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return self.query.action or ""

    @property
    def start(self) -> date | None:
        return self.query.start

    @property
    def end(self) -> date | None:
        return self.query.end

    @property
    def before(self) -> int | None:
        return self.query.before

    def url_query(self, **changes: Any) -> str:
        values = {
            "action": self.action,
            "actor": self.actor,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
        }
        values.update({key: str(value) for key, value in changes.items()})
        return urlencode({key: value for key, value in values.items() if value})


def _date(raw: str, label: str, errors: dict[str, str], key: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[key] = f"{label} must be a date like 2026-01-31."
        return None


def parse_filters(params: Any) -> Filters:
    """The filter form's fields (strings) as a typed filter, with what was wrong by field."""
    errors: dict[str, str] = {}
    action = str(params.get("action", "")).strip()[:64]
    raw_actor = str(params.get("actor", "")).strip()[:64]
    actor: uuid.UUID | None = None
    if raw_actor:
        try:
            actor = uuid.UUID(raw_actor)
        except ValueError:
            errors["actor"] = "Choose a member from the list."
    start = _date(str(params.get("from", "")).strip(), "“From”", errors, "from")
    end = _date(str(params.get("to", "")).strip(), "“To”", errors, "to")
    before: int | None = None
    raw_before = str(params.get("before", "")).strip()
    if raw_before:
        if raw_before.isdigit() and len(raw_before) < 19:
            before = int(raw_before)
        else:
            errors["before"] = "That page link is not valid."
    query = AuditFilter(action or None, actor, start, end, before)
    errors = filter_problems(query) | errors
    return Filters(query, str(actor) if actor else "", errors)


@workspace_required("audit.view")
async def audit_page(request: Request, context: WorkspaceContext) -> Response:
    db = db_of(request)
    filters = parse_filters(request.query_params)
    events: list[AuditEvent] = []
    async with db.tenant_session(context.workspace.id) as session:
        actions = await known_actions(session)
        if not filters.errors:
            events = await list_events(session, filters.query, PAGE_SIZE + 1)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    async with db.public_session() as session:
        members = await list_members(session, context.workspace.id)
        # Actors who have left are still named: the log outlives memberships.
        names = await member_labels(session, {event.actor_id for event in events if event.actor_id})
    rows = [
        {
            "id": event.id,
            "at": event.at.astimezone(UTC),
            "actor": actor_name(event, names) or "Marid (system)",
            "action": event.action,
            "label": catalogue.label(event.action),
            "ip": event.ip,
            "details": describe(event.details),
        }
        for event in events
    ]
    base = f"/w/{context.workspace.slug}/audit"
    page = {
        "filters": filters,
        "rows": rows,
        "actions": [(action, catalogue.label(action)) for action in actions],
        "members": members,
        "older_url": f"{base}?{filters.url_query(before=events[-1].id)}" if more and events else None,
        # The same filters, every page of them, as a file.
        "export_url": f"{base}.csv" + (f"?{filters.url_query()}" if filters.url_query() else ""),
        "newest_url": f"{base}?{filters.url_query()}" if filters.before is not None else None,
        "base": base,
    }
    # htmx does not swap 4xx answers; the message must still reach the filter form.
    status = 400 if filters.errors and not is_htmx(request) else 200
    # The filter form and the "Older" link swap only the results; history restores need the whole page.
    block: str | None = "content"
    if is_htmx(request):
        if request.headers.get("HX-History-Restore-Request") == "true":
            block = None
        elif request.headers.get("HX-Target") == "audit-results":
            block = "results"
    response = render(request, "audit/index.html", page, status_code=status, block=block)
    if block == "results":
        # The address bar shows the filters that apply, without the form's empty fields.
        query = filters.url_query(before=filters.before) if filters.before is not None else filters.url_query()
        response.headers["HX-Push-Url"] = f"{base}?{query}" if query else base
    return response


EXPORT_LIMIT = 100_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@workspace_required("audit.view")
async def audit_export(request: Request, context: WorkspaceContext) -> Response:
    """The audit log as CSV, with the page's filters (every matching entry, newest first, up to EXPORT_LIMIT)."""
    filters = parse_filters(request.query_params)
    if filters.errors:
        return PlainTextResponse("\n".join(filters.errors.values()), status_code=400)
    db = db_of(request)
    query = AuditFilter(filters.query.action, filters.query.actor, filters.query.start, filters.query.end, None)
    async with db.tenant_session(context.workspace.id) as session:
        events = await list_events(session, query, EXPORT_LIMIT)
    async with db.public_session() as session:
        names = await member_labels(session, {event.actor_id for event in events if event.actor_id})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "time_utc", "actor", "actor_id", "action", "action_label", "sentence", "ip", "details"])
    for event in events:
        actor = actor_name(event, names) or "Marid (system)"
        writer.writerow(
            _cell(value)
            for value in (
                event.id,
                event.at.astimezone(UTC).isoformat(),
                actor,
                event.actor_id or "",
                event.action,
                catalogue.label(event.action),
                catalogue.sentence(event.action, event.actor_label, event.details),
                event.ip,
                json.dumps(event.details, ensure_ascii=False, sort_keys=True),
            )
        )
    name = f"{context.workspace.slug}-audit-{datetime.now(UTC).strftime('%Y%m%d-%H%M')}.csv"
    return Response(
        out.getvalue().encode("utf-8-sig"),  # with a BOM, so spreadsheets read it as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


routes: list[BaseRoute] = [
    Route("/w/{slug}/audit", audit_page, methods=["GET"]),
    Route("/w/{slug}/audit.csv", audit_export, methods=["GET"]),
]
