"""The workspace's live side: the activity feed (rendered from the audit log in Postgres) and the workspace's
live stream, one SSE connection per tab, for the topics that page shows.

Events are hints; Postgres is the truth. The dashboard renders the newest entries the viewer may see from the
workspace's audit log, and re-reads them (the dashboard's ``activity`` block) whenever its stream reconnects,
so a change whose event never went out (the process died between commit and publish) still shows up; items
carry their audit id, so one that arrives both ways is shown once (``app/static/js/marid.js``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit import catalogue
from app.audit.models import AuditEvent
from app.audit.service import event_of, recent_visible, visible_statement
from app.db.direct import DirectConnection, DirectQuery
from app.live.bus import Event, EventType, Topic
from app.live.permissions import TYPE_PERMISSIONS
from app.live.sse import encode_cursor, event_stream, render_json
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import PERMISSIONS, permissions_of
from app.web.guards import workspace_required
from app.web.state import bus_of
from app.web.templating import templates
from app.web.timezones import format_moment, zone, zone_label, zone_of
from app.web.viewer import still_allowed

_unknown = sorted(set(filter(None, TYPE_PERMISSIONS.values())) - PERMISSIONS.keys())
if _unknown:  # app.live knows no domain, so its table is checked here: a typo would hide events from everyone
    raise RuntimeError(f"live event permissions name unknown permissions: {_unknown}")

_activity_item = templates.env.get_template("workspaces/_activity_item.html")
FEED_SIZE = 20


@dataclass(frozen=True)
class FeedItem:
    audit_id: int
    at: str
    time: str
    text: str


def _item(audit_id: int, at: datetime, text: str, zone: tzinfo) -> FeedItem:
    moment = at.astimezone(UTC)
    return FeedItem(audit_id, moment.isoformat(), format_moment(moment, zone, "time"), text)


def entry_item(entry: AuditEvent, zone: tzinfo = UTC) -> FeedItem:
    return _item(entry.id, entry.at, catalogue.sentence(entry.action, entry.actor_label, entry.details), zone)


def event_item(event: Event, zone: tzinfo = UTC) -> FeedItem:
    """An ACTIVITY event as the same item its audit row renders to (the publisher wrote the sentence)."""
    payload = event.payload
    try:
        at = datetime.fromisoformat(str(payload["at"]))
    except (KeyError, ValueError):
        at = event.at
    audit_id = payload.get("audit_id")
    return _item(audit_id if isinstance(audit_id, int) else 0, at, str(payload.get("text", "")), zone)


# How far before "now" a page's activity stream starts (see activity_cursor).
CURSOR_MARGIN_MS = 5_000


def activity_cursor(now_ms: int | None = None) -> str:
    """Where a page's activity stream starts (``?since=``): ``CURSOR_MARGIN_MS`` before now, by this process's
    clock. Take it *before* reading the feed from the audit log: whatever is published after it comes through the
    stream, and whatever committed before the read is in the list; an entry in both is shown once (by its audit
    id).

    No Redis read (it was a sixth of a dashboard request's CPU): a stream id is the Redis server's clock in
    milliseconds, so "a few seconds ago" is a position without asking. The margin absorbs a difference of up to
    that much between this host's clock and Redis's; what the stream sends again from those seconds is already
    in the list and is shown once (each item carries its audit id, and the page keeps one per id)."""
    moment = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    topic = Topic.activity()
    return encode_cursor([topic], {topic: f"{max(0, moment - CURSOR_MARGIN_MS)}-0"})


async def activity_items(
    session: AsyncSession, permissions: frozenset[str], count: int = FEED_SIZE, zone: tzinfo = UTC
) -> list[FeedItem]:
    """The newest activity the viewer may see, in the caller's tenant transaction (the dashboard shares one
    with its checklist)."""
    return [entry_item(entry, zone) for entry in await recent_visible(session, permissions, count)]


async def feed_and_checks(
    connection: DirectConnection,
    permissions: frozenset[str],
    checks: tuple[tuple[str, ColumnElement[bool]], ...],
    count: int = FEED_SIZE,
    zone: tzinfo = UTC,
) -> tuple[list[FeedItem], dict[str, bool]]:
    """The feed (:func:`activity_items`) and the answers of ``checks`` (``EXISTS`` columns, by key) in ONE
    statement: the dashboard's whole read of the workspace, one round trip on ``Database.direct(workspace_id)``."""
    rows = await connection.fetch(_feed_with(permissions, checks), {"limit": count})
    width = len(checks)
    answers = {key: bool(value) for (key, _), value in zip(checks, rows[0][:width], strict=True)} if rows else {}
    # With checks, a workspace without visible activity still gives one row, its event columns empty.
    entries = [event_of(row, width) for row in rows if row[width] is not None]
    return [entry_item(entry, zone) for entry in entries], answers


# Statements by (permissions, the checks tuple's identity); the tuple is kept with its statement, so its id
# cannot be reused while cached (SQL expressions cannot be compared with ==, so they cannot be a cache key).
_FEEDS: dict[tuple[frozenset[str], int], tuple[object, DirectQuery]] = {}


def _feed_with(permissions: frozenset[str], checks: tuple[tuple[str, ColumnElement[bool]], ...]) -> DirectQuery:
    cached = _FEEDS.get((permissions, id(checks)))
    if cached is not None and cached[0] is checks:
        return cached[1]
    if len(_FEEDS) > 256:
        _FEEDS.clear()
    statement = DirectQuery(_build_feed(permissions, checks))
    _FEEDS[(permissions, id(checks))] = (checks, statement)
    return statement


def _build_feed(permissions: frozenset[str], checks: tuple[tuple[str, ColumnElement[bool]], ...]) -> Select[Any]:
    feed = visible_statement(permissions)
    if not checks:
        return feed
    answers = select(*(column for _, column in checks)).subquery("checks")
    events = feed.subquery("feed")
    return select(*answers.c, *events.c).select_from(answers).outerjoin(events, true()).order_by(events.c.id.desc())


@lru_cache(maxsize=128)
def renderer(zone_name: str) -> Callable[[Event], str]:
    """The stream's render function for readers in ``zone_name`` (one per zone: the hub renders each event once
    per render function, so readers in the same zone share it)."""
    found = zone(zone_name) or UTC

    def render_event(event: Event) -> str:
        """Activity becomes the feed's HTML item (autoescaped); everything else goes out as JSON."""
        if event.type == EventType.ACTIVITY:
            return _activity_item.render(item=event_item(event, found))
        return render_json(event)

    return render_event


render_event = renderer("UTC")


@workspace_required("workspace.view")
async def workspace_events(request: Request, context: WorkspaceContext) -> Response:
    names = [name for name in request.query_params.get("topics", "activity").split(",") if name]
    try:
        topics = [Topic.parse(name) for name in names]
    except ValueError:
        raise HTTPException(400, "Unknown topic.") from None
    workspace_id = context.workspace.id

    allowed = still_allowed(request, context)

    return await event_stream(
        request,
        request.app.state.hub,
        bus_of(request),
        workspace_id,
        topics,
        allowed,
        renderer(zone_label(zone_of(request, context.user.time_zone))),
        # Each event needs what the page showing the same thing needs: a viewer's feed shows a viewer's pages.
        permissions=permissions_of(context.role),
    )


routes = [Route("/w/{slug}/events", workspace_events, methods=["GET"])]
