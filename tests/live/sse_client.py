"""A tiny SSE parser for the tests: turns a byte stream into messages exactly as a browser would see them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request

from app.live.bus import EventBus, Topic
from app.live.sse import Hub, Render, StillAllowed, event_stream, render_json


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    raw: str = ""

    @property
    def is_event(self) -> bool:
        return bool(self.data) and self.event is not None


def parse_message(block: str) -> Message:
    message = Message(raw=block)
    for line in block.split("\n"):
        if line.startswith(":"):
            message.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            message.id = value
        elif name == "event":
            message.event = value
        elif name == "data":
            message.data.append(value)
        elif name == "retry":
            message.retry = int(value)
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
    return message


class SSEReader:
    """Reads messages from an SSE body as a browser would; ``last_id`` is what it would send back.

    A background task pumps the body, so waiting with a deadline never cancels the stream itself.
    """

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self.chunks = chunks
        self.received: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.flowing = asyncio.Event()  # cleared: the reader stops pulling, like a stalled client
        self.flowing.set()
        self.pump = asyncio.create_task(self._pump())
        self.buffer = b""
        self.raw = b""
        self.pending: deque[Message] = deque()
        self.last_id: str | None = None
        self.ended = False
        self.heartbeats = 0

    async def _pump(self) -> None:
        try:
            async for chunk in self.chunks:
                await self.received.put(chunk)
                await self.flowing.wait()
        finally:
            self.received.put_nowait(None)

    async def next(self, wait: float = 5.0) -> Message | None:
        """The next message, or None when the server ended the stream; TimeoutError after ``wait`` s."""
        while not self.pending:
            if self.ended:
                return None
            async with asyncio.timeout(wait):
                chunk = await self.received.get()
            if chunk is None:
                self.ended = True
                continue
            self.raw += chunk
            self.buffer += chunk
            *blocks, self.buffer = self.buffer.split(b"\n\n")
            for block in blocks:
                message = parse_message(block.decode())
                if message.id is not None:
                    self.last_id = message.id
                if message.comments and not message.data and message.id is None:
                    self.heartbeats += 1
                self.pending.append(message)
        return self.pending.popleft()

    async def events(self, count: int, wait: float = 5.0) -> list[Message]:
        """The next ``count`` dispatched events, skipping heartbeats and id-only messages."""
        found: list[Message] = []
        while len(found) < count:
            message = await self.next(wait)
            if message is None:
                raise AssertionError(f"stream ended after {len(found)} of {count} events: {found}")
            if message.is_event:
                found.append(message)
        return found

    async def quiet(self, seconds: float) -> list[Message]:
        """Events that arrive within ``seconds`` (expected: none)."""
        found: list[Message] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                message = await self.next(left)
            except TimeoutError:
                break
            if message is None:
                break
            if message.is_event:
                found.append(message)
        return found

    async def rest(self, wait: float = 5.0) -> list[Message]:
        """Every message until the server ends the stream."""
        messages: list[Message] = []
        while (message := await self.next(wait)) is not None:
            messages.append(message)
        return messages

    async def aclose(self) -> None:
        """Hang up, as a closing tab does."""
        self.pump.cancel()
        with suppress(asyncio.CancelledError):
            await self.pump


def make_request(*, last_event_id: str | None = None, since: str | None = None) -> Request:
    headers = [(b"accept", b"text/event-stream")]
    if last_event_id is not None:
        headers.append((b"last-event-id", last_event_id.encode()))
    query = f"since={since}" if since is not None else ""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/events",
        "query_string": query.encode(),
        "headers": headers,
    }
    return Request(scope)


async def always() -> bool:
    return True


async def open_stream(
    hub: Hub,
    bus: EventBus,
    workspace_id: str,
    topics: list[Topic],
    *,
    last_event_id: str | None = None,
    since: str | None = None,
    still_allowed: StillAllowed = always,
    render: Render = render_json,
    **options: Any,
) -> SSEReader:
    """An in-process SSE stream (the generator a route would return), with its first message read."""
    request = make_request(last_event_id=last_event_id, since=since)
    response = await event_stream(request, hub, bus, workspace_id, topics, still_allowed, render, **options)
    reader = SSEReader(cast(AsyncIterable[bytes], response.body_iterator))
    first = await reader.next()
    assert first is not None and first.retry is not None and first.id is not None, first
    return reader
