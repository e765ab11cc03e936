"""LLM calls over the channel: an httpx2 transport for the official ``openai`` SDK (which is built on httpx2).

Each HTTP request the SDK makes becomes an ``llm_request`` frame (its body split into ``llm_request_body``
frames when long); the supervisor sends it on to the gateway with the step's token and streams the answer back
as ``llm_response_start``, ``llm_response_chunk`` ... ``llm_response_end``. The base URL the SDK sees,
``http://gateway.invalid/v1``, resolves nowhere: only the supervisor decides where a request goes.

A transport must enforce the SDK's read timeout itself (no socket here does it), so every wait for the next
frame of an answer is bounded by it. A response the SDK closes early (an abort, a timeout) sends
``llm_cancel`` so the supervisor stops the upstream request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from agent_runtime.channel import Channel
from agent_runtime.protocol import BODY_PIECE, Frame, frame

BASE_URL = "http://gateway.invalid/v1"
# Headers the SDK sets that matter to the gateway; the rest (host, content-length, the placeholder
# Authorization) are the supervisor's to decide.
_FORWARDED = ("content-type", "accept", "idempotency-key")


class LlmTunnel:
    """Routes ``llm_response_*`` frames to the request waiting for them."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[Frame]] = {}

    def open(self) -> tuple[str, asyncio.Queue[Frame]]:
        request_id = f"llm-{next(self._ids)}"
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._queues[request_id] = queue
        return request_id, queue

    def deliver(self, message: Frame) -> None:
        queue = self._queues.get(str(message.get("id")))
        if queue is not None:  # an answer to a request we gave up on: dropped
            queue.put_nowait(message)

    def close(self, request_id: str, *, cancel: bool) -> None:
        if self._queues.pop(request_id, None) is not None and cancel:
            try:
                self.channel.send_nowait(frame("llm_cancel", id=request_id))
            except (ConnectionError, RuntimeError):
                pass


async def _next(queue: asyncio.Queue[Frame], wait: float | None, request: httpx2.Request) -> Frame:
    try:
        return await asyncio.wait_for(queue.get(), wait)
    except TimeoutError:
        raise httpx2.ReadTimeout("no answer from the supervisor within the read timeout", request=request) from None


def _read_timeout(request: httpx2.Request) -> float | None:
    timeouts: Any = request.extensions.get("timeout") or {}
    value = timeouts.get("read") if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, int | float) else None


class ChannelTransport(httpx2.AsyncBaseTransport):
    def __init__(self, tunnel: LlmTunnel) -> None:
        self.tunnel = tunnel

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = (await request.aread()).decode("utf-8", errors="replace")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        path = request.url.raw_path.decode("ascii", errors="replace")
        request_id, queue = self.tunnel.open()
        timeout = _read_timeout(request)
        try:
            pieces = [body[i : i + BODY_PIECE] for i in range(0, len(body), BODY_PIECE)] or [""]
            channel = self.tunnel.channel
            await channel.send(
                frame(
                    "llm_request",
                    id=request_id,
                    method=request.method,
                    path=path,
                    headers=headers,
                    body=pieces[0],
                    more=len(pieces) > 1,
                )
            )
            for n, piece in enumerate(pieces[1:], start=2):
                await channel.send(frame("llm_request_body", id=request_id, data=piece, more=n < len(pieces)))
            first = await _next(queue, timeout, request)
        except BaseException:
            self.tunnel.close(request_id, cancel=True)
            raise
        if first.get("type") == "llm_response_end":
            self.tunnel.close(request_id, cancel=False)
            raise httpx2.ConnectError(f"the gateway could not be reached: {first.get('error')}", request=request)
        status = first.get("status")
        raw_headers = first.get("headers")
        return httpx2.Response(
            status if isinstance(status, int) else 502,
            headers={str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {},
            stream=_ChannelBody(self.tunnel, request_id, queue, timeout, request),
            request=request,
        )


class _ChannelBody(httpx2.AsyncByteStream):
    def __init__(
        self, tunnel: LlmTunnel, request_id: str, queue: asyncio.Queue[Frame], timeout: float | None, request: Any
    ) -> None:
        self._tunnel = tunnel
        self._id = request_id
        self._queue = queue
        self._timeout = timeout
        self._request = request
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._done:
            message = await _next(self._queue, self._timeout, self._request)
            if message.get("type") == "llm_response_chunk":
                if isinstance(message.get("data_b64"), str):
                    yield base64.b64decode(message["data_b64"])
                elif isinstance(message.get("data"), str):
                    yield message["data"].encode()
                continue
            if message.get("type") != "llm_response_end":
                continue
            self._done = True
            self._tunnel.close(self._id, cancel=False)
            if message.get("error"):
                raise httpx2.RemoteProtocolError(f"the answer broke off: {message['error']}", request=self._request)

    async def aclose(self) -> None:
        self._tunnel.close(self._id, cancel=not self._done)
        self._done = True
