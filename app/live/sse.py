"""Server-sent events: one connection per browser tab, several topics on it, exact resume, one Redis reader.

A tab opens one stream that multiplexes the topics it shows (browsers allow ~6 HTTP/1.1 connections per
origin). Every message carries an ``id:`` that is a cursor over *all* its topics
(``activity=1700000000000-0;run:run_1=1700000000123-4``), so a reconnect with ``Last-Event-ID`` (or
``?since=``) replays exactly what that tab missed, then goes live.

Fan-out: the process has one :class:`Hub` (in :mod:`app.live.hub`, re-exported here), which runs ONE
``XREAD BLOCK`` loop over every stream that has subscribers and pushes each entry into bounded
per-subscriber queues. A subscriber that falls a whole queue behind is cut off (others are never slowed): its
stream ends with an ``event: gap`` telling the client to reconnect, which resumes from its last id, so nothing
is lost.

Wiring a route (authentication and topic choice stay in the route)::

    return await event_stream(request, app.state.hub, app.state.bus, workspace_id, [Topic.run(run_id)],
                              still_allowed=lambda: is_member(user, workspace_id), render=render_step,
                              permissions=permissions_of(role))

Each event needs a permission to be seen (``app.live.permissions``, from the table the pages use): a stream
opened with the viewer's ``permissions`` sends only the events they hold the permission for, and takes the new
set from ``still_allowed()`` when the viewer's membership changes. Filtering is a set lookup per event and
subscriber; the rendering stays shared.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from app.live.bus import Event, EventBus, Topic, check_workspace_id, format_stream_id, parse_stream_id
from app.live.hub import Delivery, Hub, Render, Subscription, format_data

__all__ = [
    "HEARTBEAT",
    "MAX_TOPICS",
    "SSE_HEADERS",
    "Access",
    "Delivery",
    "Hub",
    "Render",
    "StillAllowed",
    "Subscription",
    "encode_cursor",
    "event_stream",
    "format_data",
    "parse_cursor",
    "render_json",
    "tune_gc_for_streaming",
]

logger = logging.getLogger(__name__)

MAX_TOPICS = 32
_MAX_CURSOR = 4096
HEARTBEAT = b": ping\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}

Access = bool | frozenset[str]
"""What ``still_allowed()`` answers: False, access is gone; True, unchanged; a set, the viewer's permissions now."""
StillAllowed = Callable[[], Awaitable[Access]]


def render_json(event: Event) -> str:
    """The default ``data:`` of a message: the event as compact JSON."""
    return json.dumps(
        {"type": event.type.value, "topic": event.topic.name, "at": event.at.isoformat(), "payload": event.payload},
        separators=(",", ":"),
    )


def tune_gc_for_streaming(young_objects: int = 50_000) -> None:
    """Garbage-collector settings for a web process that holds thousands of open streams; call once at startup.

    Every open stream keeps a few hundred objects alive, and every event leaves a fresh waiting future per
    stream. With CPython's default young generation (700 objects) those get promoted by the thousand and
    soon trigger full collections, each of which walks every object of every connection and stops every
    stream: measured with 5,000 streams (bench/sse.py), 17 full collections of up to 0.8 s while they
    connected and received 100 events, p99 0.76-0.98 s. With a young generation of 50,000 objects (a few MB
    of cyclic garbage at most) and the startup heap frozen (``gc.freeze``): none, p99 0.16-0.28 s.
    A full collection still costs ~0.5 s with 5,000 streams open; it just becomes rare.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_objects, middle, old)


# ---------------------------------------------------------------------------------------------- cursors


def encode_cursor(topics: Sequence[Topic], positions: Mapping[Topic, str]) -> str:
    """The SSE id of a stream: the position reached in each of its topics."""
    return ";".join(f"{topic.name}={positions[topic]}" for topic in topics)


def parse_cursor(value: str, topics: Sequence[Topic]) -> dict[Topic, str]:
    """Positions per topic from a ``Last-Event-ID`` or ``?since=`` value; raises ValueError if malformed.

    Accepts a cursor made by :func:`encode_cursor` (topics not in ``topics`` are ignored), a bare stream id
    applied to every topic (``0`` replays everything retained), or ``""``/``$`` for "from now".
    """
    value = value.strip()
    if len(value) > _MAX_CURSOR:
        raise ValueError("cursor too long")
    if value in ("", "$"):
        return {}
    if "=" not in value:
        position = format_stream_id(parse_stream_id(value))
        return dict.fromkeys(topics, position)
    wanted = set(topics)
    positions: dict[Topic, str] = {}
    for part in value.split(";"):
        name, separator, stream_id = part.partition("=")
        if not separator:
            raise ValueError(f"malformed cursor part {part!r}")
        topic = Topic.parse(name)
        position = format_stream_id(parse_stream_id(stream_id))
        if topic in wanted:
            positions[topic] = position
    return positions


# ---------------------------------------------------------------------------------------------- the stream


class _EventSource:
    """The state of one SSE connection: its topics, the position reached in each, its authorization."""

    def __init__(
        self,
        hub: Hub,
        bus: EventBus,
        workspace_id: str,
        shown: list[Topic],
        watched: list[Topic],
        ends: dict[Topic, str],
        requested: dict[Topic, str],
        still_allowed: StillAllowed,
        render: Render,
        authz_interval: float,
        retry_ms: int,
        permissions: frozenset[str] | None,
    ) -> None:
        self.hub = hub
        self.bus = bus
        self.workspace_id = workspace_id
        self.shown = shown
        self.shown_set = frozenset(shown)
        self.watched = watched
        self.ends = ends
        self.requested = requested
        self.ids = {topic: requested.get(topic, ends[topic]) for topic in watched}
        self.positions = {topic: parse_stream_id(stream_id) for topic, stream_id in self.ids.items()}
        self.names = {topic: topic.name for topic in shown}
        self.still_allowed = still_allowed
        # The viewer's permissions (None: not filtered); replaced when a re-check finds their role changed.
        self.permissions = permissions
        self.render = render
        self.authz_interval = authz_interval
        self.retry_ms = retry_ms
        self.recheck = False
        self.alone = len(shown) == 1
        # Spread the periodic checks: streams opened together (say, after a deploy) must not all ask at once.
        self.next_check = time.monotonic() + authz_interval * random.uniform(0.5, 1.0)

    def cursor(self) -> str:
        return ";".join(f"{self.names[topic]}={self.ids[topic]}" for topic in self.shown)

    def control_frame(self, event: str, data: str) -> bytes:
        return f"id: {self.cursor()}\nevent: {event}\n{format_data(data)}\n".encode()

    def take(self, delivery: Delivery) -> bytes | None:
        """The frame for a delivery, or None when it was already sent or is not shown."""
        topic = delivery.topic
        seen = self.positions.get(topic)
        if seen is None or delivery.position <= seen:
            return None
        self.positions[topic] = delivery.position
        self.ids[topic] = delivery.id
        if delivery.authz:
            self.recheck = True
        if topic not in self.shown_set:
            return None  # the control topic: watched for authorization, not shown
        if self.permissions is not None and delivery.permission not in self.permissions:
            return None  # their pages do not show this; the cursor still moves past it
        try:
            if self.alone:
                return delivery.frame_alone(self.render)
            return b"id: " + self.cursor().encode() + b"\n" + delivery.body(self.render)
        except Exception:
            logger.exception("could not render event %s on %s; skipped", delivery.id, topic.name)
            return None

    async def allowed(self) -> Access | None:
        """Ask again whether (and what) the viewer may see; None when that could not be decided."""
        self.recheck = False
        self.next_check = time.monotonic() + self.authz_interval * random.uniform(0.9, 1.1)
        try:
            return await self.still_allowed()
        except Exception:
            logger.exception("still_allowed failed; ending the stream so the client reconnects")
            return None

    async def verdict(self) -> bytes | None:
        """The final frame if the stream must end after an authorization check, else None."""
        allowed = await self.allowed()
        if allowed is None:
            return self.control_frame("gap", "reconnect")
        if allowed is False:
            return self.control_frame("forbidden", "access revoked")
        if isinstance(allowed, frozenset):
            self.permissions = allowed  # a new role applies from the next event on
        return None

    async def frames(self) -> AsyncIterator[bytes]:
        # Subscribe first, then replay: an entry published in between arrives both ways and is sent once.
        subscription = self.hub.subscribe(self.workspace_id, self.ends)
        try:
            yield f"retry: {self.retry_ms}\nid: {self.cursor()}\n\n".encode()
            if self.requested:
                lost = await self.bus.truncated(self.workspace_id, self.requested)
                if lost:
                    yield self.control_frame("reset", json.dumps([topic.name for topic in lost]))
            replay = await self.bus.read_since(self.workspace_id, self.watched, self.ids)
            batch: list[bytes] = []
            for topic, entry_id, event in replay:
                frame = self.take(self.hub.delivery(self.workspace_id, topic, entry_id, event))
                if frame is not None:
                    batch.append(frame)
                if self.recheck or len(batch) >= 64:
                    if batch:
                        yield b"".join(batch)
                        batch = []
                    if self.recheck and (final := await self.verdict()) is not None:
                        yield final
                        return
            if batch:
                yield b"".join(batch)

            queue = subscription.queue
            while True:
                if subscription.cut_off or subscription.closed:
                    yield self.control_frame("gap", "reconnect")
                    return
                item = await queue.get()
                batch = []
                beat = False
                while True:
                    if item is None:
                        beat = True
                    else:
                        frame = self.take(item)
                        if frame is not None:
                            batch.append(frame)
                        if self.recheck:
                            break  # send what came before the membership change, then check
                    if len(batch) >= 64 or queue.empty():
                        break
                    item = queue.get_nowait()
                if batch:
                    yield b"".join(batch)
                if self.recheck or time.monotonic() >= self.next_check:
                    if (final := await self.verdict()) is not None:
                        yield final
                        return
                if beat and not batch:
                    yield HEARTBEAT
        finally:
            self.hub.unsubscribe(subscription)


async def event_stream(
    request: Request,
    hub: Hub,
    bus: EventBus,
    workspace_id: str,
    topics: Sequence[Topic],
    still_allowed: StillAllowed,
    render: Render = render_json,
    *,
    authz_interval: float = 30.0,
    retry_ms: int = 2000,
    permissions: frozenset[str] | None = None,
) -> StreamingResponse:
    """A ``text/event-stream`` response for the topics of one workspace, resumable from ``Last-Event-ID``.

    The caller has authenticated the request and checked that the viewer may see ``topics`` (validated
    :class:`Topic` objects). ``still_allowed()`` is awaited every ``authz_interval`` seconds and right after
    a membership change in the workspace; when it returns False the stream ends with ``event: forbidden``.
    With ``permissions`` (the viewer's, ``app.tenants.permissions.permissions_of``), only events that need one
    of them are sent (``app.live.permissions``); ``still_allowed()`` may answer a new set, which then applies.
    ``render(event)`` makes the ``data:`` of each message (pass a module-level function: its output is cached
    per event and shared by every connection). Messages are ``id: <cursor>``, ``event: <TYPE>``, ``data:``
    lines; ``: ping`` comments keep the connection alive; ``event: gap`` means "reconnect, you will resume";
    ``event: reset`` means retention already dropped some missed events (reload the page's state).
    """
    check_workspace_id(workspace_id)
    shown = list(dict.fromkeys(topics))
    if not shown or len(shown) > MAX_TOPICS:
        raise HTTPException(400, f"a stream needs 1 to {MAX_TOPICS} topics")
    since = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    try:
        requested = parse_cursor(since, shown)
    except ValueError:
        raise HTTPException(400, "malformed Last-Event-ID or since cursor") from None
    control = Topic.control()
    watched = shown if control in shown else [*shown, control]
    ends = await bus.positions(workspace_id, watched)
    source = _EventSource(
        hub,
        bus,
        workspace_id,
        shown,
        watched,
        ends,
        requested,
        still_allowed,
        render,
        authz_interval,
        retry_ms,
        permissions,
    )
    return StreamingResponse(source.frames(), media_type="text/event-stream", headers=SSE_HEADERS)
