"""Hub: one XREAD loop per process fans out to many bounded queues; slow ones are cut off; Redis can blip."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from app.live.bus import EventBus, EventType, Topic
from app.live.sse import Delivery, Hub, Subscription


async def drain(subscription: Subscription, count: int, wait: float = 5.0) -> list[Delivery]:
    found: list[Delivery] = []
    async with asyncio.timeout(wait):
        while len(found) < count:
            item = await subscription.queue.get()
            if item is not None:  # None is a heartbeat
                found.append(item)
    return found


async def blocked_readers(redis: Redis, hub: Hub) -> list[dict[str, object]]:
    """This hub's connections blocked in XREAD, as Redis sees them."""
    await asyncio.sleep(0.05)
    clients = await redis.client_list()
    return [
        client
        for client in clients
        if client.get("name") == hub.client_name and client.get("cmd") == "xread" and "b" in str(client.get("flags"))
    ]


async def xread_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def test_one_reader_fans_out_to_many_subscribers(
    hub: Hub, bus: EventBus, redis: Redis, workspace_id: str
) -> None:
    activity, run = Topic.activity(), Topic.run("r1")
    ends = await bus.positions(workspace_id, [activity, run])
    on_activity = [hub.subscribe(workspace_id, {activity: ends[activity]}) for _ in range(150)]
    on_both = [hub.subscribe(workspace_id, ends) for _ in range(50)]
    xreads_before = await xread_calls(redis)

    for i in range(20):
        await bus.publish(workspace_id, activity if i % 4 else run, EventType.ACTIVITY, {"i": i})

    expected_activity = [i for i in range(20) if i % 4]
    received_activity = [await drain(subscription, 15) for subscription in on_activity]
    for deliveries in received_activity:
        assert [d.event.payload["i"] for d in deliveries] == expected_activity
    for subscription in on_both:
        received = await drain(subscription, 20)
        assert sorted(d.event.payload["i"] for d in received) == list(range(20))
        assert [d.event.payload["i"] for d in received if d.topic == activity] == expected_activity
    # Every subscriber got the very same delivery objects: decoded once, rendered once.
    assert all(
        a is b for deliveries in received_activity[1:] for a, b in zip(received_activity[0], deliveries, strict=True)
    )

    # One reader for both streams, however many subscribers: one connection blocked in XREAD, and the
    # number of XREADs follows the events, not the subscribers.
    assert hub.reader_count == 1
    assert sorted(hub.streams) == sorted([activity.key(workspace_id), run.key(workspace_id)])
    blocked = await blocked_readers(redis, hub)
    assert len(blocked) == 1, blocked
    assert [c["name"] for c in await redis.client_list()].count(hub.client_name) == 1  # and no other connection
    assert await xread_calls(redis) - xreads_before <= 20 + 2
    assert hub.subscriber_count == 200


async def test_streams_nobody_watches_are_not_read(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    run = Topic.run("r1")
    ends = await bus.positions(workspace_id, [run])
    first, second = hub.subscribe(workspace_id, ends), hub.subscribe(workspace_id, ends)
    hub.unsubscribe(first)
    assert hub.streams == [run.key(workspace_id)]
    hub.unsubscribe(second)
    hub.unsubscribe(second)  # idempotent
    assert hub.streams == [] and hub.subscriber_count == 0


async def test_a_new_stream_is_read_at_once(redis: Redis, bus: EventBus, workspace_id: str) -> None:
    hub = Hub(redis, block_ms=20_000)  # far longer than the test: only CLIENT UNBLOCK can make it pass
    try:
        first, second = Topic.run("first"), Topic.run("second")
        hub.subscribe(workspace_id, await bus.positions(workspace_id, [first]))
        assert len(await blocked_readers(redis, hub)) == 1
        late = hub.subscribe(workspace_id, await bus.positions(workspace_id, [second]))
        await bus.publish(workspace_id, second, EventType.RUN_CREATED, {})
        [delivery] = await drain(late, 1, wait=2)
        assert delivery.topic == second
    finally:
        await hub.close()


async def test_slow_subscriber_is_cut_off_and_nobody_else_waits(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    topic = Topic.activity()
    ends = await bus.positions(workspace_id, [topic])
    slow = hub.subscribe(workspace_id, ends)  # never reads
    fast = hub.subscribe(workspace_id, ends)
    received: list[Delivery] = []

    async def read_fast() -> None:
        received.extend(await drain(fast, 200, wait=10))

    reader = asyncio.create_task(read_fast())
    for i in range(200):
        await bus.publish(workspace_id, topic, EventType.STEP_OUTPUT, {"i": i})
    await reader
    assert [d.event.payload["i"] for d in received] == list(range(200))
    assert slow.cut_off and not fast.cut_off
    assert slow.queue.qsize() == hub.queue_size  # it got a full queue, then nothing more
    assert hub.subscriber_count == 1


async def test_hub_survives_losing_its_redis_connection(
    hub: Hub, bus: EventBus, redis: Redis, workspace_id: str
) -> None:
    topic = Topic.activity()
    subscription = hub.subscribe(workspace_id, await bus.positions(workspace_id, [topic]))
    [reader] = await blocked_readers(redis, hub)
    await redis.execute_command("CLIENT", "KILL", "ID", reader["id"])
    for i in range(3):  # published while the hub is reconnecting
        await bus.publish(workspace_id, topic, EventType.ACTIVITY, {"i": i})
    assert [d.event.payload["i"] for d in await drain(subscription, 3)] == [0, 1, 2]
    [new_reader] = await blocked_readers(redis, hub)
    assert new_reader["id"] != reader["id"]
    await bus.publish(workspace_id, topic, EventType.ACTIVITY, {"i": 3})
    assert [d.event.payload["i"] for d in await drain(subscription, 1)] == [3]


async def test_heartbeats_wake_idle_subscribers(hub: Hub, bus: EventBus, workspace_id: str) -> None:
    subscription = hub.subscribe(workspace_id, await bus.positions(workspace_id, [Topic.activity()]))
    async with asyncio.timeout(2):
        assert await subscription.queue.get() is None


async def test_close_stops_the_reader_and_ends_subscriptions(redis: Redis, bus: EventBus, workspace_id: str) -> None:
    hub = Hub(redis)
    subscription = hub.subscribe(workspace_id, await bus.positions(workspace_id, [Topic.activity()]))
    assert hub.reader_count == 1
    await hub.close()
    assert subscription.closed and await subscription.queue.get() is None
    assert hub.reader_count == 0 and hub.streams == []
    assert await blocked_readers(redis, hub) == []
    try:
        hub.subscribe(workspace_id, {Topic.activity(): "0-0"})
    except RuntimeError:
        pass
    else:
        raise AssertionError("a closed hub accepted a subscriber")
