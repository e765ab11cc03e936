"""StepEvents of a sandbox, relayed to a live topic under DjinnBot's event names.

``output`` and ``thinking`` arrive as many small chunks (a token or a few at a time): consecutive chunks of
the same kind are joined and published at most every ``flush_seconds`` (or past ``max_chunk_chars``), so a
chatty model costs a handful of stream entries per second rather than hundreds. Every other event first
flushes what is pending, so the order on the stream is the order the runtime said things in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from app.live.bus import EventBus, EventType, Topic
from app.sandbox.step import StepEvent

# Sandbox frame type -> DjinnBot event name. usage, status, log and result are not relayed as such: the
# engine publishes STEP_COMPLETE / STEP_FAILED with the totals once the outcome is stored.
_EVENT_TYPES: Mapping[str, EventType] = {
    "output": EventType.STEP_OUTPUT,
    "thinking": EventType.STEP_THINKING,
    "tool_start": EventType.TOOL_CALL_START,
    "tool_end": EventType.TOOL_CALL_END,
    "file_changed": EventType.FILE_CHANGED,
}
_CHUNKED = frozenset({"output", "thinking"})


def relay_event_type(frame_type: str) -> EventType | None:
    """The live event a sandbox frame becomes; None for frames that are not relayed."""
    return _EVENT_TYPES.get(frame_type)


def _payload(event: StepEvent, base: Mapping[str, Any]) -> dict[str, Any]:
    data = event.data
    if event.type == "tool_start":
        return {**base, "toolName": data.get("tool"), "toolCallId": data.get("call_id"), "args": data.get("args")}
    if event.type == "tool_end":
        return {
            **base,
            "toolName": data.get("tool"),
            "toolCallId": data.get("call_id"),
            "result": data.get("result"),
            "isError": not data.get("ok", True),
            "durationMs": data.get("duration_ms"),
        }
    if event.type == "file_changed":
        return {**base, "path": data.get("path"), "change": data.get("change"), "size": data.get("size")}
    return {**base, **data}


class EventRelay:
    """An ``on_event`` callback for ``Supervisor.run_step`` that publishes to ``topic`` of ``workspace_id``.

    ``base`` goes into every payload (``runId``, ``stepId``, ``agentId`` ...). Call :meth:`close` at the end
    (in a ``finally``) to publish what is still buffered.
    """

    def __init__(
        self,
        bus: EventBus,
        workspace_id: str,
        topic: Topic,
        base: Mapping[str, Any],
        *,
        flush_seconds: float = 0.1,
        max_chunk_chars: int = 4000,
    ) -> None:
        self.bus = bus
        self.workspace_id = workspace_id
        self.topic = topic
        self.base = dict(base)
        self.flush_seconds = flush_seconds
        self.max_chunk_chars = max_chunk_chars
        self.published = 0
        self._kind: str | None = None
        self._parts: list[str] = []
        self._size = 0
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, event: StepEvent) -> None:
        async with self._lock:
            if event.type in _CHUNKED:
                if self._kind is not None and self._kind != event.type:
                    await self._flush()
                self._kind = event.type
                text = str(event.data.get("text", ""))
                self._parts.append(text)
                self._size += len(text)
                if self._size >= self.max_chunk_chars:
                    await self._flush()
                elif self._timer is None:
                    self._timer = asyncio.create_task(self._flush_later())
                return
            event_type = relay_event_type(event.type)
            if event_type is None:
                return
            await self._flush()
            await self._publish(event_type, _payload(event, self.base))

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.flush_seconds)
        # Past its sleep the timer is no longer cancelled by anyone: it only flushes, under the lock.
        self._timer = None
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        if self._timer is not None:  # still asleep: what it would flush goes now
            self._timer.cancel()
            self._timer = None
        if self._kind is None or not self._parts:
            self._kind = None
            return
        kind, text = self._kind, "".join(self._parts)
        self._kind, self._parts, self._size = None, [], 0
        await self._publish(_EVENT_TYPES[kind], {**self.base, "chunk": text})

    async def _publish(self, event_type: EventType, payload: Mapping[str, Any]) -> None:
        await self.bus.publish(self.workspace_id, self.topic, event_type, payload)
        self.published += 1

    async def close(self) -> None:
        """Publish whatever is buffered; stop the timer."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        async with self._lock:
            self._timer = None
            await self._flush()
