"""event_stream in-process: cursors, exact resume over several topics, gaps for slow readers, authorization."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis
from starlette.exceptions import HTTPException

from app.audit import catalogue
from app.live.bus import Event, EventBus, EventType, Retention, Topic, TopicKind
from app.live.sse import Hub, encode_cursor, format_data, parse_cursor
from tests.live.sse_client import Message, SSEReader, make_request, open_stream


def entry(action: str, i: int) -> dict[str, object]:
    """An ACTIVITY payload as its publisher writes it: the action and the permission the catalogue gives it."""
    return {"action": action, "permission": catalogue.entry(action).permission, "i": i}


def payloads(messages: list[Message], key: str = "i") -> list[int]:
    return [json.loads(message.data[0])["payload"][key] for message in messages]


def by_topic(messages: list[Message]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for message in messages:
        data = json.loads(message.data[0])
        found.setdefault(data["topic"], []).append(data["payload"]["i"])
    return found


def test_cursor_round_trips_and_rejects_garbage() -> None:
    activity, run = Topic.activity(), Topic.run("run_1")
    positions = {activity: "1700000000000-0", run: "1700000000123-4"}
    cursor = encode_cursor([activity, run], positions)
    assert cursor == "activity=1700000000000-0;run:run_1=1700000000123-4"
    assert parse_cursor(cursor, [activity, run]) == positions
    assert parse_cursor(cursor, [run]) == {run: "1700000000123-4"}  # topics not asked for are ignored
    assert parse_cursor("", [run]) == parse_cursor("$", [run]) == {}
    assert parse_cursor("0", [activity, run]) == {activity: "0-0", run: "0-0"}
    assert parse_cursor("1700000000000", [run]) == {run: "1700000000000-0"}
    for bad in ("run:run_1", "run:x=abc", "run:x=1-2-3", "nope=1-0", "run:a b=1-0", "activity=1-0;;", "x" * 5000):
        with pytest.raises(ValueError):
            parse_cursor(bad, [activity, run])


def test_multi_line_data_becomes_several_data_lines() -> None:
    assert format_data("<p>\n  hi\r\n</p>") == "data: <p>\ndata:   hi\ndata: </p>\n"
    assert format_data("") == "data: \n"


async def test_malformed_resume_ids_are_a_bad_request(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    from app.live.sse import event_stream
    from tests.live.sse_client import always

    for request in (make_request(last_event_id="run:x=banana"), make_request(since="activity=1-0;evil")):
        with pytest.raises(HTTPException) as raised:
            await event_stream(request, hub, bus, workspace_id, [Topic.activity()], always)
        assert raised.value.status_code == 400
    with pytest.raises(HTTPException):
        await event_stream(make_request(), hub, bus, workspace_id, [], always)
    with pytest.raises(ValueError):
        await event_stream(make_request(), hub, bus, "NOT-A-WORKSPACE", [Topic.activity()], always)


BEYOND_REDIS = [
    "99999999999999999999-0",  # 20 digits, but more than 2**64 - 1 milliseconds
    "18446744073709551616-0",  # 2**64
    "0-18446744073709551616",
    "activity=99999999999999999999-0",
    "activity=1-0;run:r=18446744073709551616",
]


@pytest.mark.parametrize("cursor", BEYOND_REDIS)
async def test_ids_beyond_redis_range_are_a_bad_request(
    hub: Hub, bus: EventBus, workspace_id: str, cursor: str
) -> None:
    """Redis refuses such ids (``ERR Invalid stream ID``): they used to pass and abort the stream mid-way."""
    from app.live.sse import event_stream
    from tests.live.sse_client import always

    topics = [Topic.activity(), Topic.run("r")]
    for request in (make_request(last_event_id=cursor), make_request(since=cursor)):
        with pytest.raises(HTTPException) as raised:
            await event_stream(request, hub, bus, workspace_id, topics, always)
        assert raised.value.status_code == 400


async def test_the_largest_stream_id_resumes_with_nothing_missed(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    """``2**64-1-2**64-1`` is a valid id; nothing can follow it, and the stream still goes live."""
    await bus.publish(workspace_id, Topic.activity(), EventType.ACTIVITY, {"i": 1})
    largest = "18446744073709551615-18446744073709551615"
    stream = await open_stream(hub, bus, workspace_id, [Topic.activity()], since=largest)
    assert await stream.quiet(0.2) == []
    await stream.aclose()


async def test_resume_replays_exactly_the_missed_events_once_then_goes_live(
    hub: Hub, bus: EventBus, workspace_id: str
) -> None:
    activity, run = Topic.activity(), Topic.run("run_1")
    before = await bus.publish(workspace_id, run, EventType.RUN_CREATED, {"i": -1})  # history, not replayed
    stream = await open_stream(hub, bus, workspace_id, [activity, run])
    assert stream.last_id == f"activity=0-0;run:run_1={before}"
    for i in range(3):
        await bus.publish(workspace_id, run if i % 2 else activity, EventType.STEP_OUTPUT, {"i": i})
    seen = await stream.events(3)
    # In order within a topic; across topics by id (two streams can stamp the same id: either may come first).
    assert by_topic(seen) == {"activity": [0, 2], "run:run_1": [1]}
    assert [m.event for m in seen] == ["STEP_OUTPUT"] * 3
    assert all(m.id and m.id.startswith("activity=") and ";run:run_1=" in m.id for m in seen)
    last_id = stream.last_id
    await stream.aclose()
    assert hub.subscriber_count == 0

    missed = []
    for i in range(3, 9):  # published while the tab is away
        topic = run if i % 3 else activity
        missed.append((topic, await bus.publish(workspace_id, topic, EventType.STEP_OUTPUT, {"i": i})))

    resumed = await open_stream(hub, bus, workspace_id, [activity, run], last_event_id=last_id)
    replayed = await resumed.events(6)
    assert sorted(payloads(replayed)) == list(range(3, 9))
    for topic in (activity, run):  # in order within each topic
        mine = [json.loads(m.data[0]) for m in replayed if json.loads(m.data[0])["topic"] == topic.name]
        assert [p["payload"]["i"] for p in mine] == [i for i in range(3, 9) if (run if i % 3 else activity) == topic]
    final = parse_cursor(replayed[-1].id or "", [activity, run])
    assert final == {topic: entry_id for topic, entry_id in missed}  # the newest id of each topic

    await bus.publish(workspace_id, run, EventType.STEP_COMPLETE, {"i": 9})
    [live] = await resumed.events(1)
    assert (live.event, payloads([live])) == ("STEP_COMPLETE", [9])
    assert await resumed.quiet(0.3) == []  # nothing twice
    await resumed.aclose()


async def test_since_query_parameter_resumes_too(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    run = Topic.run("r")
    first = await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 0})
    await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 1})
    stream = await open_stream(hub, bus, workspace_id, [run], since=f"run:r={first}")
    assert payloads(await stream.events(1)) == [1]
    await stream.aclose()
    everything = await open_stream(hub, bus, workspace_id, [run], since="0")
    assert payloads(await everything.events(2)) == [0, 1]
    await everything.aclose()


async def test_resume_while_events_keep_coming_loses_and_repeats_nothing(
    hub: Hub, bus: EventBus, workspace_id: str
) -> None:
    topics = [Topic.activity(), Topic.run("a"), Topic.swarm("b")]
    total = 150
    published: dict[Topic, list[int]] = {topic: [] for topic in topics}

    async def publish() -> None:
        for i in range(total):
            topic = topics[i % 3]
            await bus.publish(workspace_id, topic, EventType.STEP_OUTPUT, {"i": i})
            published[topic].append(i)
            if i % 10 == 0:
                await asyncio.sleep(0.002)

    stream = await open_stream(hub, bus, workspace_id, topics)
    publisher = asyncio.create_task(publish())
    received = await stream.events(20)
    await stream.aclose()
    for _ in range(3):  # reconnect a few times while publishing goes on
        await asyncio.sleep(0.01)
        stream = await open_stream(hub, bus, workspace_id, topics, last_event_id=received[-1].id)
        received += await stream.events(10)
        await stream.aclose()
    stream = await open_stream(hub, bus, workspace_id, topics, last_event_id=received[-1].id)
    await publisher
    received += await stream.events(total - len(received))
    assert await stream.quiet(0.2) == []
    await stream.aclose()

    got = [json.loads(m.data[0]) for m in received]
    assert sorted(p["payload"]["i"] for p in got) == list(range(total))  # each exactly once
    for topic in topics:
        assert [p["payload"]["i"] for p in got if p["topic"] == topic.name] == published[topic]


async def test_slow_reader_gets_a_gap_and_resumes_while_a_fast_one_gets_everything(
    hub: Hub, bus: EventBus, workspace_id: str
) -> None:
    topic = Topic.activity()
    slow = await open_stream(hub, bus, workspace_id, [topic])
    slow.flowing.clear()
    fast = await open_stream(hub, bus, workspace_id, [topic])
    count = hub.queue_size * 3

    async def publish() -> None:
        for i in range(count):
            await bus.publish(workspace_id, topic, EventType.STEP_OUTPUT, {"i": i})

    publisher = asyncio.create_task(publish())
    fast_got = await fast.events(count, wait=10)
    await publisher
    assert payloads(fast_got) == list(range(count))

    # The slow tab read nothing meanwhile: it was dropped, and says so once it reads again.
    assert hub.subscriber_count == 1
    slow.flowing.set()
    messages = await slow.rest()
    assert messages[-1].event == "gap" and messages[-1].id
    assert slow.ended and hub.subscriber_count == 1
    # Reconnecting from its last id brings exactly the rest.
    delivered = payloads([m for m in messages if m.event == "STEP_OUTPUT"])
    resumed = await open_stream(hub, bus, workspace_id, [topic], last_event_id=slow.last_id)
    rest = await resumed.events(count - len(delivered), wait=10)
    assert delivered + payloads(rest) == list(range(count))
    await resumed.aclose()
    await fast.aclose()


async def test_membership_change_rechecks_and_closes_the_stream(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    allowed = True
    checks = 0

    async def still_allowed() -> bool:
        nonlocal checks
        checks += 1
        return allowed

    run = Topic.run("r")
    stream = await open_stream(hub, bus, workspace_id, [run], still_allowed=still_allowed, authz_interval=60)
    # Someone else leaving: the stream re-checks, is still allowed, and goes on.
    await bus.publish(workspace_id, Topic.control(), EventType.MEMBER_REMOVED, {"user_id": "someone-else"})
    await asyncio.sleep(0.005)  # a later millisecond: ids of different streams only order across milliseconds
    await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 1})
    assert payloads(await stream.events(1)) == [1]
    assert await stream.quiet(0.1) == []
    assert checks == 1
    # This viewer leaving: the next check says no and the stream ends before anything else is sent.
    allowed = False
    await bus.publish(workspace_id, Topic.control(), EventType.MEMBER_REMOVED, {"user_id": "me"})
    await asyncio.sleep(0.005)
    await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 2})
    final = await stream.next()
    assert final is not None and final.event == "forbidden"
    assert await stream.next() is None and checks == 2
    assert hub.subscriber_count == 0


async def test_authorization_is_rechecked_periodically(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    verdicts = iter([True, False])

    async def still_allowed() -> bool:
        return next(verdicts)

    stream = await open_stream(
        hub, bus, workspace_id, [Topic.activity()], still_allowed=still_allowed, authz_interval=0.1
    )
    messages = []
    while (message := await stream.next(wait=3)) is not None:
        messages.append(message)
    assert messages[-1].event == "forbidden"
    assert stream.heartbeats >= 1  # the idle stream was kept alive with comment lines meanwhile


async def test_a_failing_check_makes_the_client_reconnect(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    async def still_allowed() -> bool:
        raise ConnectionError("database is down")

    stream = await open_stream(
        hub, bus, workspace_id, [Topic.activity()], still_allowed=still_allowed, authz_interval=0.1
    )
    messages = []
    while (message := await stream.next(wait=3)) is not None:
        messages.append(message)
    assert messages[-1].event == "gap"


async def test_custom_render_and_its_cache(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    calls = 0

    def render(event: Event) -> str:
        nonlocal calls
        calls += 1
        return f'<li id="e{event.payload["i"]}">\n  {event.type}\n</li>'

    streams = [await open_stream(hub, bus, workspace_id, [Topic.activity()], render=render) for _ in range(5)]
    await bus.publish(workspace_id, Topic.activity(), EventType.TOAST, {"i": 7})
    for stream in streams:
        [message] = await stream.events(1)
        assert message.data == ['<li id="e7">', "  TOAST", "</li>"]
        await stream.aclose()
    assert calls == 1  # rendered once, sent five times


async def test_control_events_are_watched_but_not_shown(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    stream = await open_stream(hub, bus, workspace_id, [Topic.activity()])
    await bus.publish(workspace_id, Topic.control(), EventType.MEMBER_ADDED, {})
    await bus.publish(workspace_id, Topic.activity(), EventType.ACTIVITY, {"i": 1})
    [message] = await stream.events(1)
    assert message.event == "ACTIVITY" and message.id and "control" not in message.id
    await stream.aclose()


async def test_resuming_past_retention_says_reset(redis: Redis, hub: Hub, workspace_id: str) -> None:
    bus = EventBus(redis, retention={TopicKind.RUN: Retention(maxlen=10)})
    run = Topic.run("r")
    first = await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": 0})
    for i in range(1, 300):
        await bus.publish(workspace_id, run, EventType.STEP_OUTPUT, {"i": i})
    stream = await open_stream(hub, bus, workspace_id, [run], last_event_id=f"run:r={first}")
    reset = await stream.next()
    assert reset is not None and reset.event == "reset" and json.loads(reset.data[0]) == ["run:r"]
    kept = await redis.xlen(run.key(workspace_id))
    assert payloads(await stream.events(kept)) == list(range(300 - kept, 300))
    await stream.aclose()


async def test_hub_shutdown_tells_streams_to_reconnect(redis: Redis, bus: EventBus, workspace_id: str) -> None:
    hub = Hub(redis)
    stream: SSEReader = await open_stream(hub, bus, workspace_id, [Topic.activity()])
    await hub.close()
    message = await stream.next()
    assert message is not None and message.event == "gap"
    assert await stream.next() is None


async def test_each_stream_gets_what_its_permissions_allow_from_one_shared_render(
    hub: Hub, bus: EventBus, workspace_id: str
) -> None:
    from app.tenants.permissions import permissions_of

    calls = 0

    def render(event: Event) -> str:
        nonlocal calls
        calls += 1
        return json.dumps({"payload": event.payload})

    activity = Topic.activity()
    admin = await open_stream(hub, bus, workspace_id, [activity], render=render, permissions=permissions_of("admin"))
    viewer = await open_stream(hub, bus, workspace_id, [activity], render=render, permissions=permissions_of("viewer"))
    unfiltered = await open_stream(hub, bus, workspace_id, [activity], render=render)
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("apikey.created", 1))
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("settings.changed", 2))
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("never.catalogued", 3))
    assert payloads(await admin.events(3)) == [1, 2, 3]  # an unlisted action: audit log readers only
    assert payloads(await viewer.events(1)) == [2]
    assert payloads(await unfiltered.events(3)) == [1, 2, 3]
    assert await viewer.quiet(0.2) == []
    assert calls == 3  # each event rendered once, whoever receives it
    for stream in (admin, viewer, unfiltered):
        await stream.aclose()
    # A reconnect replays from the viewer's last id, and filters the replay the same way.
    again = await open_stream(
        hub, bus, workspace_id, [activity], render=render, permissions=permissions_of("viewer"), since="0"
    )
    assert payloads(await again.events(1)) == [2]
    assert await again.quiet(0.2) == []
    await again.aclose()


async def test_a_role_change_applies_the_new_permissions_at_once(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    from app.tenants.permissions import permissions_of

    role = "admin"

    async def still_allowed() -> frozenset[str]:
        return permissions_of(role)

    activity = Topic.activity()
    stream = await open_stream(
        hub, bus, workspace_id, [activity], still_allowed=still_allowed, permissions=permissions_of(role)
    )
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("member.invited", 1))
    assert payloads(await stream.events(1)) == [1]
    role = "viewer"
    await bus.publish(workspace_id, Topic.control(), EventType.MEMBER_ROLE_CHANGED, {"action": "member.role_changed"})
    await asyncio.sleep(0.005)  # a later millisecond: ids of different streams only order across milliseconds
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("member.invited", 2))
    await bus.publish(workspace_id, activity, EventType.ACTIVITY, entry("member.role_changed", 3))
    assert payloads(await stream.events(1)) == [3]  # still open, and no longer told about invitations
    await stream.aclose()
