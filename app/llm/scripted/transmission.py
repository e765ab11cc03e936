"""How an answer goes out on the wire, faults included: delays, stalls, dropped connections.

A :class:`Transmission` is the bytes of a response plus the timing of their sending. :func:`transmit` builds
one from a script's outcome and a protocol; :class:`TransmissionResponse` sends it. It is an ASGI response of
its own because a dropped connection is something Starlette's responses never do: returning before the last
body message makes uvicorn close the connection mid-body, which the client sees as a broken stream.

Every wait watches for the client going away and for the server shutting down, so a hanging answer never
keeps a test's server from stopping.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.llm.scripted.answer import make_answer
from app.llm.scripted.request import ChatRequest
from app.llm.scripted.script import (
    CutStream,
    GarbageChunk,
    Hang,
    HttpError,
    MalformedJson,
    Outcome,
    Reply,
    StreamError,
)
from app.llm.scripted.wire import Wire

FOREVER = math.inf
_POLL = 0.05


@dataclass
class Transmission:
    status: int
    content_type: str
    frames: Sequence[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds before the status line (FOREVER: never answer).
    wait_before: float = 0.0
    # Seconds between two frames of a stream.
    frame_delay: float = 0.0
    # After this many frames, wait ``stall_for`` seconds (FOREVER: until the client gives up).
    stall_after: int | None = None
    stall_for: float = 0.0
    # After this many frames, drop the connection.
    abort_after: int | None = None
    # Announce the whole length up front (a non-streamed body), so a cut body is seen as cut.
    content_length: int | None = None


def error(
    wire: Wire, status: int, message: str, *, error_type: str | None = None, param: str | None = None
) -> Transmission:
    body = wire.error_body(status, message, error_type=error_type, param=param)
    return Transmission(status, "application/json", [body])


def transmit(outcome: Outcome, request: ChatRequest, wire: Wire) -> Transmission:
    """The transmission of a script's outcome for this request in this protocol."""
    if isinstance(outcome, HttpError):
        return _http_error(outcome, wire)
    if isinstance(outcome, Hang):
        sent = _reply(outcome.reply, request, wire)
        seconds = FOREVER if outcome.seconds is None else outcome.seconds
        if outcome.after_chunks is None or not request.stream:
            sent.wait_before = seconds
        else:
            sent.stall_after, sent.stall_for = outcome.after_chunks, seconds
        return sent
    if isinstance(outcome, StreamError) and not request.stream:
        return error(wire, 500, outcome.message, error_type=outcome.error_type)
    if isinstance(outcome, MalformedJson | GarbageChunk) and not request.stream:
        body = b'{"id": "broken", "choices": [{"message": {"content": "this is not JSON'
        return Transmission(200, "application/json", [body])
    reply = outcome if isinstance(outcome, Reply) else Reply() if isinstance(outcome, MalformedJson) else outcome.reply
    sent = _reply(reply, request, wire)
    if isinstance(outcome, CutStream):
        if request.stream:
            sent.abort_after = outcome.after_chunks
        else:
            body = sent.frames[0]
            sent.frames, sent.abort_after = [body[: len(body) // 2], body[len(body) // 2 :]], 1
    elif isinstance(outcome, MalformedJson):
        sent.frames = [wire.garbage_frame()]
    elif isinstance(outcome, GarbageChunk):
        sent.frames = [*sent.frames[: outcome.after_chunks], wire.garbage_frame(), *sent.frames[outcome.after_chunks :]]
    elif isinstance(outcome, StreamError):
        sent.frames = [*sent.frames[: outcome.after_chunks], wire.error_frame(outcome.message, outcome.error_type)]
    return sent


def _reply(reply: Reply, request: ChatRequest, wire: Wire) -> Transmission:
    answer = make_answer(reply, request, created=int(time.time()))
    if request.stream:
        frames = wire.frames(answer, include_usage=request.include_usage)
        headers = {"cache-control": "no-cache"}
        return Transmission(200, "text/event-stream", frames, headers, answer.delay, answer.chunk_delay)
    body = wire.body(answer)
    return Transmission(200, "application/json", [body], wait_before=answer.delay, content_length=len(body))


def _http_error(fault: HttpError, wire: Wire) -> Transmission:
    message = fault.message or f"The scripted server answers {fault.status}, as its script says."
    sent = error(wire, fault.status, message, error_type=fault.error_type)
    if fault.retry_after is not None:
        # Whole seconds for retry-after (RFC 9110); the SDKs prefer the exact retry-after-ms when present.
        sent.headers["retry-after"] = str(math.ceil(fault.retry_after))
        sent.headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
    if fault.should_retry is not None:
        sent.headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return sent


class TransmissionResponse(Response):
    """Sends a :class:`Transmission`; ``closing`` is set when the server stops, ending every wait."""

    def __init__(self, sent: Transmission, wire: Wire, closing: threading.Event) -> None:
        self.sent = sent
        self.closing = closing
        headers = {**sent.headers, wire.request_id_header: f"req_{uuid.uuid4().hex[:24]}"}
        headers["content-type"] = sent.content_type
        if sent.content_length is not None:
            headers["content-length"] = str(sent.content_length)
        # Not Response.__init__: it would announce an empty body (content-length: 0) for a stream.
        self.status_code = sent.status
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await self._send(send, gone)
        finally:
            watcher.cancel()

    async def _wait(self, seconds: float, gone: asyncio.Event) -> bool:
        """Wait; False when the client left or the server is stopping (then nothing more is sent)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not gone.is_set() and not self.closing.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            try:
                await asyncio.wait_for(gone.wait(), timeout=min(remaining, _POLL))
            except TimeoutError:
                pass
        return False

    async def _send(self, send: Send, gone: asyncio.Event) -> None:
        sent = self.sent
        if sent.wait_before and not await self._wait(sent.wait_before, gone):
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for i, frame in enumerate(sent.frames):
            if i == sent.abort_after:
                return  # uvicorn closes a connection whose response never completed
            if i == sent.stall_after and not await self._wait(sent.stall_for, gone):
                return
            if i and sent.frame_delay and not await self._wait(sent.frame_delay, gone):
                return
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if sent.stall_after is not None and sent.stall_after >= len(sent.frames):
            if not await self._wait(sent.stall_for, gone):
                return
        if sent.abort_after is not None:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
