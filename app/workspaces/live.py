"""The workspace's live stream: one SSE connection per tab, for the topics that page shows."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth.middleware import signed_in
from app.auth.models import UserSession
from app.db import Database
from app.live.bus import Event, EventBus, EventType, Topic, decode_entry
from app.live.permissions import required_permission
from app.live.sse import encode_cursor, event_stream, render_json
from app.sso.enforcement import needs_step_up
from app.tenants.context import WorkspaceContext
from app.tenants.models import Membership
from app.tenants.permissions import permissions_of
from app.web.guards import workspace_required
from app.web.templating import templates

_activity_item = templates.env.get_template("workspaces/_activity_item.html")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def activity_item(event: Event) -> dict[str, str]:
    at = event.at.astimezone(UTC)
    return {"at": at.isoformat(), "time": at.strftime("%H:%M:%S"), "text": str(event.payload.get("text", ""))}


async def recent_activity(
    bus: EventBus, workspace_id: str, permissions: frozenset[str], count: int = 20, *, scan: int = 500
) -> tuple[list[dict[str, str]], str]:
    """The newest activity items the viewer may see (newest first), and the stream cursor just after them.

    ``permissions`` are the viewer's: items are filtered exactly as their live stream filters them
    (``app.live.permissions``). At most ``scan`` entries are read looking for ``count`` visible ones.
    The page renders these, then connects its stream with ``?since=<cursor>``: nothing published between the
    render and the connection is lost, and nothing shown is sent again.
    """
    topic = Topic.activity()
    key = topic.key(workspace_id)
    items: list[dict[str, str]] = []
    newest: str | None = None
    end, read = "+", 0
    while len(items) < count and read < scan:
        entries = await bus.redis.xrevrange(key, max=end, count=min(max(count, 50), scan - read))
        if not entries:
            break
        newest = newest or _text(entries[0][0])
        read += len(entries)
        end = "(" + _text(entries[-1][0])
        for _entry_id, fields in entries:
            try:
                event = decode_entry(workspace_id, topic, fields)
            except ValueError:
                continue  # an entry this release does not understand
            if required_permission(event) in permissions:
                items.append(activity_item(event))
    return items[:count], encode_cursor([topic], {topic: newest or "0"})


def render_event(event: Event) -> str:
    """Activity becomes the feed's HTML item (autoescaped); everything else goes out as JSON."""
    if event.type == EventType.ACTIVITY:
        return _activity_item.render(item=activity_item(event))
    return render_json(event)


@workspace_required("workspace.view")
async def workspace_events(request: Request, context: WorkspaceContext) -> Response:
    names = [name for name in request.query_params.get("topics", "activity").split(",") if name]
    try:
        topics = [Topic.parse(name) for name in names]
    except ValueError:
        raise HTTPException(400, "Unknown topic.") from None
    current = signed_in(request)
    assert current is not None  # the guard saw to it
    db: Database = request.app.state.db
    workspace_id, user_id, session_id = context.workspace.id, context.user.id, current.session.id

    async def still_allowed() -> bool | frozenset[str]:
        """Still signed in (session not revoked), still a member (not removed), and not now asked for the
        workspace's single sign-on (required since the stream opened, or its identity unlinked)? Then what
        their role holds now."""
        async with db.public_session() as session:
            role = await session.scalar(
                select(Membership.role).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
            )
            live = await session.scalar(select(UserSession.id).where(UserSession.id == session_id))
            if role is None or live is None:
                return False
            if await needs_step_up(session, workspace_id=workspace_id, role=role, session_id=session_id):
                return False
        return permissions_of(role)

    return await event_stream(
        request,
        request.app.state.hub,
        request.app.state.bus,
        workspace_id,
        topics,
        still_allowed,
        render_event,
        # Each event needs what the page showing the same thing needs: a viewer's feed shows a viewer's pages.
        permissions=permissions_of(context.role),
    )


routes = [Route("/w/{slug}/events", workspace_events, methods=["GET"])]
