"""LLM calls from a sandbox, forwarded: the ``llm_request`` frames in, the gateway's streamed answer back out.

The sandbox's SDK believes it talks to ``http://gateway.invalid/v1``; here the request is rebuilt from what is
allowed (one method and path, a few headers), sent to the configured endpoint (later, the platform gateway)
with the step's token, and the answer is streamed back in ``llm_response_*`` frames as it arrives. Nothing of
the sandbox's own headers reaches the gateway beyond the allow-list, and nothing of the gateway's answer reaches
the sandbox beyond its body and a few headers the SDK needs (content type, retry hints).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from app.sandbox.frames import CHUNK_BYTES, Frame, frame

# The one call an agent makes: what the SDK sends for chat.completions.create, below its base URL's /v1.
ALLOWED = {("POST", "/v1/chat/completions")}
_REQUEST_HEADERS = ("content-type", "accept", "idempotency-key")
_RESPONSE_HEADERS = ("content-type", "retry-after", "retry-after-ms", "x-should-retry", "x-request-id")


@dataclass(frozen=True)
class LlmEndpoint:
    """Where a sandbox's LLM calls go: an OpenAI-compatible base URL ending in ``/v1`` (the gateway's, later)."""

    base_url: str
    # Seconds to wait for the gateway: to connect, and between two pieces of an answer.
    connect_timeout: float = 10.0
    read_timeout: float = 300.0

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path.removeprefix("/v1")

    def client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        # No proxies or .netrc from the worker's environment: the request goes exactly where configured.
        return httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)


@dataclass
class PendingRequest:
    id: str
    method: str
    path: str
    headers: dict[str, str]
    parts: list[str]
    size: int


Send = Callable[[Frame], Awaitable[None]]


def _chunk(request_id: str, data: bytes) -> Frame:
    try:
        return frame("llm_response_chunk", id=request_id, data=data.decode("utf-8"))
    except UnicodeDecodeError:  # a piece that splits a character, or a body that is not text
        return frame("llm_response_chunk", id=request_id, data_b64=base64.b64encode(data).decode("ascii"))


async def _refuse(send: Send, request_id: str, status: int, message: str) -> None:
    """Answer like an OpenAI-compatible server would, so the SDK raises a clear error."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    await send(frame("llm_response_start", id=request_id, status=status, headers={"content-type": "application/json"}))
    await send(frame("llm_response_chunk", id=request_id, data=body))
    await send(frame("llm_response_end", id=request_id))


async def forward(
    client: httpx.AsyncClient, endpoint: LlmEndpoint, token: str, request: PendingRequest, send: Send
) -> None:
    """Send one request to the endpoint and stream its answer back; cancelled when the runtime cancels it."""
    path = request.path.split("?", 1)[0]
    if (request.method.upper(), path) not in ALLOWED:
        await _refuse(send, request.id, 404, f"{request.method} {request.path} is not available from a sandbox")
        return
    headers = {k: v for k, v in request.headers.items() if k.lower() in _REQUEST_HEADERS}
    headers["authorization"] = f"Bearer {token}"
    headers["accept-encoding"] = "identity"
    body = "".join(request.parts).encode()
    started = False
    try:
        async with client.stream("POST", endpoint.url(path), content=body, headers=headers) as response:
            kept = {k: v for k, v in response.headers.items() if k.lower() in _RESPONSE_HEADERS}
            await send(frame("llm_response_start", id=request.id, status=response.status_code, headers=kept))
            started = True
            async for data in response.aiter_bytes():
                for at in range(0, len(data), CHUNK_BYTES):
                    await send(_chunk(request.id, data[at : at + CHUNK_BYTES]))
    except httpx.HTTPError as error:
        what = "the answer broke off" if started else "the LLM endpoint could not be reached"
        await send(frame("llm_response_end", id=request.id, error=f"{what}: {type(error).__name__}: {error}"))
        return
    await send(frame("llm_response_end", id=request.id))
