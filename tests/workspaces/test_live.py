"""The workspace's live stream over real HTTP: members only, escaped HTML, and a removed member is cut off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from app.audit import catalogue
from app.auth.middleware import session_cookie_value
from app.auth.models import User
from app.auth.sessions import start_session
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus, EventType, Topic
from tests.conftest import Services
from tests.helpers import add_member, make_user, make_workspace
from tests.live.sse_client import SSEReader
from tests.servers import web_server


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with web_server(server_env) as base:
        yield base


@pytest.fixture
async def bus(services: Services) -> AsyncIterator[EventBus]:
    redis = Redis.from_url(services.redis.url)
    yield EventBus(redis)
    await redis.aclose()


async def cookie_for(db: Database, settings: Settings, user: User) -> dict[str, str]:
    async with db.public_session() as session:
        token, _ = await start_session(session, settings, user, ip="127.0.0.1", user_agent="live-test")
    return {settings.session_cookie: session_cookie_value(settings, token)}


async def open_feed(client: httpx.AsyncClient, url: str) -> tuple[SSEReader, httpx.Response]:
    request = client.build_request("GET", url)
    response = await client.send(request, stream=True)
    return SSEReader(response.aiter_bytes()), response


async def test_members_get_escaped_activity_and_a_removed_member_is_cut_off(
    base_url: str, db: Database, settings: Settings, bus: EventBus
) -> None:
    owner, viewer = await make_user(db, "owner"), await make_user(db, "viewer")
    workspace = await make_workspace(db, owner, "live")
    await add_member(db, workspace, viewer, "viewer")
    async with httpx.AsyncClient(
        base_url=base_url, cookies=await cookie_for(db, settings, viewer), timeout=10
    ) as client:
        reader, response = await open_feed(client, f"/w/{workspace.slug}/events?topics=activity")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        # (An action every member may see: the feed shows each role what its pages show.)
        permission = catalogue.entry("settings.changed").permission
        payload = {"action": "settings.changed", "permission": permission, "text": "<script>alert(1)</script> ran"}
        await bus.publish(workspace.id, Topic.activity(), EventType.ACTIVITY, payload)
        [message] = await reader.events(1)
        assert message.event == "ACTIVITY"
        html = "\n".join(message.data)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; ran" in html and "<script>" not in html
        assert message.id and "activity=" in message.id

        # The owner removes the viewer through the real page; the open stream closes at once.
        async with httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, owner)) as owner_client:
            page = await owner_client.get(f"/w/{workspace.slug}/members")
            token = page.cookies.get(settings.csrf_cookie) or owner_client.cookies.get(settings.csrf_cookie)
            removed = await owner_client.post(
                f"/w/{workspace.slug}/members/{viewer.id}/remove", headers={"X-CSRF-Token": token or ""}
            )
            assert removed.status_code in (200, 204, 303), removed.text
        rest = await asyncio.wait_for(reader.rest(wait=10), 15)
        assert [m.event for m in rest if m.event][-1:] == ["forbidden"]
        await reader.aclose()
        await response.aclose()
        again = await client.get(f"/w/{workspace.slug}/events")
        assert again.status_code == 404


async def test_another_workspace_cannot_subscribe(base_url: str, db: Database, settings: Settings) -> None:
    owner, stranger = await make_user(db, "owner"), await make_user(db, "stranger")
    workspace = await make_workspace(db, owner, "private")
    await make_workspace(db, stranger, "own")
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, stranger)) as client:
        for topics in ("activity", "control", "run:abc123", "activity,run:abc123"):
            response = await client.get(f"/w/{workspace.slug}/events", params={"topics": topics})
            assert response.status_code == 404
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        response = await anonymous.get(f"/w/{workspace.slug}/events")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_bad_topics_are_refused(base_url: str, db: Database, settings: Settings) -> None:
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "topics")
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, owner)) as client:
        for topics in ("nonsense", "run:", "run:a b", "run:*", "activity;x=1"):
            response = await client.get(f"/w/{workspace.slug}/events", params={"topics": topics})
            assert response.status_code == 400, topics
        bad_cursor = await client.get(f"/w/{workspace.slug}/events", headers={"Last-Event-ID": "activity=notanid"})
        assert bad_cursor.status_code == 400
