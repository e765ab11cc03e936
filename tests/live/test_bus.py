"""EventBus: publish and replay on Redis Streams, per-workspace keys, retention, refusal of bad ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from app.live.bus import (
    Event,
    EventBus,
    EventType,
    Retention,
    Topic,
    TopicKind,
    parse_stream_id,
)


async def test_read_since_returns_exactly_the_later_events_in_order(bus: EventBus, workspace_id: str) -> None:
    run, activity = Topic.run("run_1a2b"), Topic.activity()
    published: list[tuple[Topic, str]] = []
    for i in range(6):
        topic = run if i % 2 == 0 else activity
        published.append((topic, await bus.publish(workspace_id, topic, EventType.STEP_OUTPUT, {"i": i})))

    everything = await bus.read_since(workspace_id, [run, activity])
    # Exact per topic, in publish order; across topics ordered by id (equal ids of two streams may swap).
    for topic in (run, activity):
        assert [(t, i) for t, i, _ in everything if t == topic] == [p for p in published if p[0] == topic]
    assert sorted(event.payload["i"] for _, _, event in everything) == list(range(6))
    positions = [parse_stream_id(entry_id) for _, entry_id, _ in everything]
    assert positions == sorted(positions)
    for topic in (run, activity):  # ids grow within a stream (two streams may hand out the same id)
        ids = [parse_stream_id(entry_id) for t, entry_id in published if t == topic]
        assert ids == sorted(ids) and len(set(ids)) == 3

    # After the 2nd event of `run` (i=2) and the 1st of `activity` (i=1): exactly i=3, 4, 5.
    later = await bus.read_since(workspace_id, [run, activity], {run: published[2][1], activity: published[1][1]})
    assert sorted(event.payload["i"] for _, _, event in later) == [3, 4, 5]
    assert await bus.read_since(workspace_id, [run, activity], {run: published[4][1], activity: published[5][1]}) == []

    topic, entry_id, event = next(entry for entry in later if entry[2].payload["i"] == 3)
    assert isinstance(event, Event)
    assert (topic, event.topic, event.type, event.workspace_id) == (activity, activity, "STEP_OUTPUT", workspace_id)
    assert abs((datetime.now(UTC) - event.at).total_seconds()) < 5


async def test_payloads_round_trip_as_json(bus: EventBus, workspace_id: str) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await bus.publish(workspace_id, Topic.activity(), "TOAST", {"text": "héllo\nworld", "when": when, "n": [1, None]})
    [(_, _, event)] = await bus.read_since(workspace_id, [Topic.activity()])
    assert event.type is EventType.TOAST
    assert event.payload == {"text": "héllo\nworld", "when": "2026-01-02T03:04:05Z", "n": [1, None]}


async def test_read_since_pages_through_long_streams(bus: EventBus, workspace_id: str) -> None:
    topic = Topic.session("s1")
    first = await bus.publish(workspace_id, topic, EventType.SESSION_OUTPUT, {"i": 0})
    for i in range(1, 25):
        await bus.publish(workspace_id, topic, EventType.SESSION_OUTPUT, {"i": i})
    events = await bus.read_since(workspace_id, [topic], {topic: first}, page_size=7)
    assert [event.payload["i"] for _, _, event in events] == list(range(1, 25))


async def test_keys_carry_the_workspace_id(bus: EventBus, redis: Redis, workspace_id: str) -> None:
    topics = [Topic.activity(), Topic.control(), Topic.run("r1"), Topic.swarm("swarm_0a"), Topic.session("s-9")]
    for topic in topics:
        await bus.publish(workspace_id, topic, EventType.ACTIVITY, {})
    keys = sorted([key.decode() async for key in redis.scan_iter(match=f"marid:ws:{workspace_id}:*")])
    assert keys == sorted(
        f"marid:ws:{workspace_id}:{name}" for name in ("activity", "control", "run:r1", "swarm:swarm_0a", "session:s-9")
    )
    assert Topic.run("r1").key(workspace_id) == f"marid:ws:{workspace_id}:run:r1"


@pytest.mark.parametrize(
    "bad", ["", "ABCDEFGHIJKL", "abc", "abcdefabcdef0", "abcdefabcdef\n", "../../etc/pa", "abcdefabcde*", "abcdefabcdé"]
)
async def test_malformed_workspace_ids_are_refused(bus: EventBus, bad: str) -> None:
    with pytest.raises(ValueError):
        Topic.activity().key(bad)
    with pytest.raises(ValueError):
        await bus.publish(bad, Topic.activity(), EventType.ACTIVITY, {})
    with pytest.raises(ValueError):
        await bus.read_since(bad, [Topic.activity()])
    with pytest.raises(ValueError):
        await bus.positions(bad, [Topic.activity()])


@pytest.mark.parametrize("bad", ["", "a:b", "a;b", "a=b", "*", "{x}", "a b", "x" * 65, "é", "r1\n", "-r", "_r"])
def test_malformed_topic_ids_are_refused(bad: str) -> None:
    for kind in (TopicKind.RUN, TopicKind.SWARM, TopicKind.SESSION):
        with pytest.raises(ValueError):
            Topic(kind, bad)
        with pytest.raises(ValueError):
            Topic.parse(f"{kind}:{bad}")


def test_topic_names_parse_back() -> None:
    for topic in (Topic.activity(), Topic.control(), Topic.run("run_1"), Topic.swarm("s"), Topic.session("A-b_9")):
        assert Topic.parse(topic.name) == topic
    for bad in ("activity:x", "control:", "run", "run:", "runs:x", "Activity", "", ":"):
        with pytest.raises(ValueError):
            Topic.parse(bad)
    with pytest.raises(ValueError):
        Topic("nope", "x")  # type: ignore[arg-type]


async def test_bad_events_are_refused(workspace_id: str, redis: Redis) -> None:
    bus = EventBus(redis, max_payload_bytes=100)
    with pytest.raises(ValueError):
        await bus.publish(workspace_id, Topic.activity(), "NO_SUCH_EVENT", {})
    with pytest.raises(ValueError):
        await bus.publish(workspace_id, Topic.activity(), EventType.TOAST, {"text": "x" * 200})
    with pytest.raises(ValueError):  # not JSON
        await bus.publish(workspace_id, Topic.activity(), EventType.TOAST, {"x": object()})
    assert await redis.exists(Topic.activity().key(workspace_id)) == 0


async def test_retention_is_applied_per_topic_kind(redis: Redis, workspace_id: str) -> None:
    bus = EventBus(
        redis,
        retention={TopicKind.RUN: Retention(maxlen=20, ttl_seconds=60), TopicKind.ACTIVITY: Retention(maxlen=20)},
    )
    run, activity = Topic.run("r1"), Topic.activity()
    first = await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 0})
    for i in range(1, 500):
        await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": i})
        await bus.publish(workspace_id, activity, EventType.ACTIVITY, {})
    for topic in (run, activity):
        length = await redis.xlen(topic.key(workspace_id))
        # MAXLEN ~ trims whole radix-tree nodes (100 entries by default): about 20, never the 500 published.
        assert 20 <= length <= 20 + 100, (topic, length)
    assert 0 < await redis.ttl(run.key(workspace_id)) <= 60
    assert await redis.ttl(activity.key(workspace_id)) == -1  # the activity feed is capped, not expired
    # Replaying from an id that retention already dropped says so.
    assert await bus.truncated(workspace_id, {run: first}) == [run]
    newest = (await bus.positions(workspace_id, [run]))[run]
    assert await bus.truncated(workspace_id, {run: newest, Topic.run("never"): "0-0"}) == []


async def test_positions_are_the_newest_ids(bus: EventBus, workspace_id: str) -> None:
    run, activity = Topic.run("r1"), Topic.activity()
    assert await bus.positions(workspace_id, [run, activity]) == {run: "0-0", activity: "0-0"}
    entry_id = await bus.publish(workspace_id, run, EventType.RUN_CREATED, {})
    assert await bus.positions(workspace_id, [run, activity]) == {run: entry_id, activity: "0-0"}


async def test_entries_this_release_cannot_read_are_skipped(bus: EventBus, redis: Redis, workspace_id: str) -> None:
    topic = Topic.activity()
    await redis.xadd(topic.key(workspace_id), {"type": "FROM_THE_FUTURE", "at": 1, "data": "{}"})
    await redis.xadd(topic.key(workspace_id), {"type": "TOAST", "at": 1, "data": "[1]"})
    kept = await bus.publish(workspace_id, topic, EventType.TOAST, {"ok": True})
    assert [entry_id for _, entry_id, _ in await bus.read_since(workspace_id, [topic])] == [kept]
