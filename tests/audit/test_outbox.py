"""Audit entries of platform changes travel through the outbox: written in the change's own transaction,
relayed into the workspace's log once (whatever crashes or runs twice), published with their audit id, and
never published without a bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from app.audit.actor import Actor, ActorKind
from app.audit.jobs import relay_audit_outbox
from app.audit.models import AuditEvent, AuditOutbox
from app.audit.relay import copy_into_log, relay, sweep
from app.audit.service import record, record_in_workspace
from app.audit.unit_of_work import public_change, workspace_change
from app.config import Settings
from app.db import Database
from app.live.activity import Activity, publish_activity
from app.live.bus import EventBus, EventType, Topic
from app.tenants.models import Workspace
from tests.helpers import make_user, make_workspace, person


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[EventBus]:
    redis = Redis.from_url(settings.redis_url)
    yield EventBus(redis)
    await redis.aclose()


@pytest.fixture
async def workspace(db: Database) -> Workspace:
    return await make_workspace(db, await make_user(db, "outbox"), "outbox")


async def log_of(db: Database, workspace: Workspace) -> list[AuditEvent]:
    async with db.tenant_session(workspace.id) as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def pending(db: Database, workspace: Workspace) -> int:
    async with db.public_session() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditOutbox).where(AuditOutbox.workspace_id == workspace.id)
        )
    return int(count or 0)


async def activities(bus: EventBus, workspace: Workspace) -> list[dict[str, object]]:
    return [dict(event.payload) for _, _, event in await bus.read_since(workspace.id, [Topic.activity()])]


async def test_a_change_and_its_entry_commit_together_then_reach_the_log_and_the_feed(
    db: Database, bus: EventBus, workspace: Workspace
) -> None:
    owner = await make_user(db, "actor", name="Ada Actor")
    async with public_change(db, bus) as session:
        row = await session.get(Workspace, workspace.id)
        assert row is not None
        row.name = "Renamed"
        record(session, workspace.id, "settings.changed", person(owner, "192.0.2.9"), {"name": "Renamed"})
    [entry] = await log_of(db, workspace)
    assert (entry.action, entry.actor_kind, entry.actor_id, entry.actor_label, entry.ip) == (
        "settings.changed", "person", str(owner.id), "Ada Actor", "192.0.2.9"
    )  # fmt: skip
    assert entry.outbox_id is not None and await pending(db, workspace) == 0
    [published] = await activities(bus, workspace)
    assert published["audit_id"] == entry.id
    assert published["text"] == "Ada Actor changed the workspace settings"
    assert published["permission"] == "workspace.view"


async def test_a_rolled_back_change_leaves_no_entry(db: Database, bus: EventBus, workspace: Workspace) -> None:
    with pytest.raises(RuntimeError):
        async with public_change(db, bus) as session:
            record(session, workspace.id, "settings.changed", Actor.system(), {})
            raise RuntimeError("the change failed")
    assert await log_of(db, workspace) == [] and await pending(db, workspace) == 0
    assert await activities(bus, workspace) == []


async def test_a_relay_that_died_halfway_inserts_once_and_publishes_again(
    db: Database, bus: EventBus, workspace: Workspace
) -> None:
    # Committed with its change, but the process died before relaying it...
    async with db.public_session() as session:
        record(session, workspace.id, "member.invited", Actor.system("Marid"), {"email": "a@example.com", "role": "x"})
    async with db.public_session() as session:
        rows = list(await session.scalars(select(AuditOutbox).where(AuditOutbox.workspace_id == workspace.id)))
    # ...or a relay inserted it into the log and died before publishing and deleting it.
    first = await copy_into_log(db, workspace.id, rows)
    assert await pending(db, workspace) == 1
    # The worker's sweep, as arq runs it, twice: the entry is in the log once, published with the same id.
    ctx = {"db": db, "bus": bus}
    assert await relay_audit_outbox(ctx) >= 1
    await relay_audit_outbox(ctx)
    [entry] = await log_of(db, workspace)
    assert first[rows[0].id][0] == entry.id and await pending(db, workspace) == 0
    assert [item["audit_id"] for item in await activities(bus, workspace)] == [entry.id]


async def test_membership_changes_go_to_the_control_topic_first(
    db: Database, bus: EventBus, workspace: Workspace
) -> None:
    async with public_change(db, bus) as session:
        record(session, workspace.id, "member.removed", Actor.system(), {"email": "gone@example.com"})
    merged = await bus.read_since(workspace.id, [Topic.control(), Topic.activity()])
    assert [event.type for _, _, event in merged] == [EventType.MEMBER_REMOVED, EventType.ACTIVITY]


async def test_a_workspace_change_writes_its_entry_directly_and_publishes_after_commit(
    db: Database, bus: EventBus, workspace: Workspace
) -> None:
    agent = Actor(ActorKind.AGENT, "agent_1", "Scout")
    async with workspace_change(db, bus, workspace.id) as session:
        entry = await record_in_workspace(session, "workspace.created", agent, {"name": "x"})
    [stored] = await log_of(db, workspace)
    assert (stored.id, stored.actor_kind, stored.actor_label, stored.outbox_id) == (entry.id, "agent", "Scout", None)
    [published] = await activities(bus, workspace)
    assert published["audit_id"] == entry.id and published["text"] == "Scout created the workspace “x”"


async def test_there_is_no_publishing_without_a_bus(db: Database, workspace: Workspace) -> None:
    activity = Activity(1, "settings.changed", "x", "workspace.view", workspace.created_at)
    with pytest.raises(TypeError):
        await publish_activity(None, workspace.id, activity)  # type: ignore[arg-type]
    # A unit of work refuses before anything changes: afterwards its entries would have nowhere to go.
    with pytest.raises(TypeError):
        async with public_change(db, None) as session:  # type: ignore[arg-type]
            record(session, workspace.id, "settings.changed", Actor.system(), {})
    assert await pending(db, workspace) == 0
    with pytest.raises(KeyError):
        await relay_audit_outbox({"db": db})  # a job without ctx["bus"]


async def test_deleting_a_workspace_drops_what_it_had_pending(db: Database, bus: EventBus) -> None:
    owner = await make_user(db, "gone")
    workspace = await make_workspace(db, owner, "gone")
    async with db.public_session() as session:
        record(session, workspace.id, "settings.changed", Actor.system(), {})
    async with db.public_session() as session:
        from app.workspaces.service import delete_workspace

        row = await session.get(Workspace, workspace.id)
        assert row is not None
        await delete_workspace(session, row)
    assert await pending(db, workspace) == 0
    await sweep(db, bus)  # nothing left to relay, and nothing fails


async def test_what_was_published_before_a_failure_is_done_and_the_rest_waits(
    db: Database, bus: EventBus, workspace: Workspace
) -> None:
    # A bus that refuses the second event (too large for it), as Redis failing halfway would.
    picky = EventBus(bus.redis, max_payload_bytes=1024)
    async with db.public_session() as session:
        record(session, workspace.id, "apikey.created", Actor.system(), {"name": "small"})
        big = {"name": "x" * 2000, "kind": "service", "scopes": "read"}
        record(session, workspace.id, "apikey.created", Actor.system(), big)  # the name is in its sentence
    with pytest.raises(ValueError):
        await relay(db, picky, [workspace.id])
    small, large = await log_of(db, workspace)
    assert await pending(db, workspace) == 1  # the first is done; the second is in the log, not yet published
    assert [item["audit_id"] for item in await activities(bus, workspace)] == [small.id]
    await relay(db, bus, [workspace.id])
    assert await pending(db, workspace) == 0 and len(await log_of(db, workspace)) == 2
    assert [item["audit_id"] for item in await activities(bus, workspace)] == [small.id, large.id]
