"""The SSE stream over real HTTP: a tiny Starlette app on uvicorn, read as raw lines with httpx."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.embedded import free_port
from app.live.bus import Event, EventBus, EventType, Topic
from app.live.sse import Hub, event_stream
from tests.conftest import Services
from tests.live.sse_client import SSEReader

REVOKED: set[str] = set()  # workspaces whose viewer lost access (the test app's stand-in for memberships)


def render_fragment(event: Event) -> str:
    return f'<div class="event" data-i="{event.payload.get("i")}">\n  {event.type}\n</div>'


def build_app(redis_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url)
        app.state.bus = EventBus(redis)
        app.state.hub = Hub(redis, heartbeat=0.2)
        try:
            yield
        finally:
            await app.state.hub.close()
            await redis.aclose()

    async def events(request: Request) -> Response:
        workspace_id = request.path_params["workspace_id"]
        topics = [Topic.parse(name) for name in request.query_params.getlist("topic")]

        async def still_allowed() -> bool:
            return workspace_id not in REVOKED

        state = request.app.state
        return await event_stream(
            request, state.hub, state.bus, workspace_id, topics, still_allowed, render_fragment, authz_interval=60
        )

    return Starlette(routes=[Route("/w/{workspace_id}/events", events)], lifespan=lifespan)


@dataclass
class Server:
    url: str
    app: Starlette

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub


@pytest.fixture(scope="module")
def server(services: Services) -> Iterator[Server]:
    app = build_app(services.redis.url)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="asyncio", ws="none", log_level="warning", timeout_graceful_shutdown=1
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", app)
    uvicorn_server.should_exit = True
    thread.join(10)


@asynccontextmanager
async def connect(server: Server, workspace_id: str, topics: list[Topic], **headers: str) -> AsyncIterator[SSEReader]:
    params = [("topic", topic.name) for topic in topics]
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{server.url}/w/{workspace_id}/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        reader = SSEReader(response.aiter_bytes())
        first = await reader.next()
        assert first is not None and first.retry == 2000 and first.id
        try:
            yield reader
        finally:
            await reader.aclose()


def indices(reader_messages: list[str]) -> list[str]:
    return [line.split('data-i="')[1].split('"')[0] for line in reader_messages]


async def test_stream_over_http_resumes_exactly(server: Server, bus: EventBus, workspace_id: str) -> None:
    activity, run = Topic.activity(), Topic.run("run_7")
    async with connect(server, workspace_id, [activity, run]) as stream:
        await bus.publish(workspace_id, run, EventType.STEP_STARTED, {"i": 1})
        [started] = await stream.events(1)
        assert await stream.quiet(0.5) == []  # idle: only heartbeats flow
        assert stream.heartbeats >= 1
        last_id = stream.last_id
        raw = stream.raw.decode()
    # The exact wire format: id (a cursor over both topics), event, one data line per line, blank line.
    assert raw.startswith(f"retry: 2000\nid: activity=0-0;run:run_7=0-0\n\nid: {last_id}\n")
    assert (
        f"id: {last_id}\nevent: STEP_STARTED\n"
        'data: <div class="event" data-i="1">\ndata:   STEP_STARTED\ndata: </div>\n\n'
    ) in raw
    assert ": ping\n\n" in raw
    assert started.data == ['<div class="event" data-i="1">', "  STEP_STARTED", "</div>"]

    await asyncio.sleep(0.3)
    assert server.hub.subscriber_count == 0  # the closed connection left the hub

    for i in range(2, 6):  # missed while away
        await bus.publish(workspace_id, activity if i % 2 else run, EventType.STEP_OUTPUT, {"i": i})
    async with connect(server, workspace_id, [activity, run], **{"Last-Event-ID": last_id or ""}) as stream:
        replayed = await stream.events(4)
        assert sorted(indices([m.data[0] for m in replayed])) == ["2", "3", "4", "5"]
        await bus.publish(workspace_id, activity, EventType.RUN_COMPLETE, {"i": 6})
        [live] = await stream.events(1)
        assert live.event == "RUN_COMPLETE" and indices(live.data[:1]) == ["6"]
        assert await stream.quiet(0.3) == []


async def test_malformed_last_event_id_is_refused(server: Server, workspace_id: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{server.url}/w/{workspace_id}/events", params={"topic": "activity"}, headers={"Last-Event-ID": "a=b"}
        )
    assert response.status_code == 400


async def test_removed_member_is_cut_off(server: Server, bus: EventBus, workspace_id: str) -> None:
    async with connect(server, workspace_id, [Topic.activity()]) as stream:
        await bus.publish(workspace_id, Topic.activity(), EventType.ACTIVITY, {"i": 1})
        await stream.events(1)
        REVOKED.add(workspace_id)
        await bus.publish(workspace_id, Topic.control(), EventType.MEMBER_REMOVED, {"user_id": "me"})
        rest = await stream.rest()
        assert [m.event for m in rest if m.event] == ["forbidden"]
        assert json.dumps(rest[-1].data) == '["access revoked"]'


@pytest.mark.parametrize(
    "cursor", ["99999999999999999999-0", "activity=18446744073709551616-0", "activity=0-99999999999999999999"]
)
async def test_ids_beyond_redis_range_are_refused_over_http(server: Server, workspace_id: str, cursor: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"{server.url}/w/{workspace_id}/events"
        by_header = await client.get(url, params={"topic": "activity"}, headers={"Last-Event-ID": cursor})
        by_query = await client.get(url, params={"topic": "activity", "since": cursor})
    assert (by_header.status_code, by_query.status_code) == (400, 400)
