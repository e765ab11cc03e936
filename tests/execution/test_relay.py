"""The relay joins a chatty model's chunks and keeps the order of everything it publishes (real Redis)."""

from __future__ import annotations

from app.execution.relay import EventRelay
from app.live.bus import EventBus, EventType, Topic
from app.sandbox.step import StepEvent
from tests.llm.gateway import Tenant


async def test_chunks_are_joined_and_the_order_is_kept(deps_bus: EventBus, tenant: Tenant) -> None:
    topic = Topic.run("relay-order")
    relay = EventRelay(deps_bus, tenant.id, topic, {"runId": "relay-order"}, flush_seconds=30)
    for word in ("Hel", "lo ", "world"):
        await relay(StepEvent("output", {"text": word}))
    await relay(StepEvent("thinking", {"text": "hmm"}))
    await relay(StepEvent("tool_start", {"call_id": "c1", "tool": "read", "args": "{}"}))
    await relay(StepEvent("output", {"text": "after"}))
    await relay(StepEvent("usage", {"input_tokens": 3, "output_tokens": 4}))  # not relayed as such
    await relay.close()
    events = [event for _, _, event in await deps_bus.read_since(tenant.id, [topic])]
    assert [(e.type, e.payload.get("chunk")) for e in events] == [
        (EventType.STEP_OUTPUT, "Hello world"),
        (EventType.STEP_THINKING, "hmm"),
        (EventType.TOOL_CALL_START, None),
        (EventType.STEP_OUTPUT, "after"),
    ]
    assert events[2].payload == {"runId": "relay-order", "toolName": "read", "toolCallId": "c1", "args": "{}"}


async def test_a_pause_in_the_stream_flushes_what_is_buffered(deps_bus: EventBus, tenant: Tenant) -> None:
    import asyncio

    topic = Topic.run("relay-timer")
    relay = EventRelay(deps_bus, tenant.id, topic, {}, flush_seconds=0.05, max_chunk_chars=10)
    await relay(StepEvent("output", {"text": "one"}))
    await asyncio.sleep(0.3)  # no more chunks: the timer publishes "one" without waiting for the end
    assert [e.payload["chunk"] for _, _, e in await deps_bus.read_since(tenant.id, [topic])] == ["one"]
    await relay(StepEvent("output", {"text": "a long chunk"}))  # over max_chunk_chars: at once
    assert len(await deps_bus.read_since(tenant.id, [topic])) == 2
    await relay.close()
