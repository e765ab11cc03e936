"""OpenAI's wire format, as the gateway speaks it to its callers: error bodies, stream events, SSE splitting.

Every refusal and failure is an OpenAI error body (``{"error": {"message", "type", "param", "code"}}``), so the
caller's ``openai`` SDK raises its usual exception with the message the gateway wrote; a failure after the
answer began is an ``{"error": ...}`` event, which the SDK raises as ``APIError`` with that message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

DONE = b"data: [DONE]\n\n"


@dataclass
class GatewayError(Exception):
    """A refusal or failure to answer in OpenAI's error shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        headers = {"cache-control": "no-store", **self.headers}
        return Response(
            json.dumps(self.body()), status_code=self.status, media_type="application/json", headers=headers
        )

    def event(self) -> bytes:
        return b"data: " + json.dumps(self.body()).encode() + b"\n\n"


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, "invalid_request_error", "invalid_api_key")


def no_retry(error: GatewayError) -> GatewayError:
    """The caller's SDK must not retry this one (it would fail the same way): ``x-should-retry: false``."""
    error.headers["x-should-retry"] = "false"
    return error


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class EventSplitter:
    """Splits an SSE byte stream into whole events (each without its closing blank line)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = buffer.split(b"\n\n")
        self._buffer = events.pop()
        return [event for event in events if event.strip()]

    def rest(self) -> bytes:
        """What came after the last complete event (a stream that ended mid-event)."""
        return self._buffer


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` of an event (its lines joined), or None for a comment or an event without data."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[5:].removeprefix(b" ") for line in lines)


def provider_message(body: object, fallback: str) -> str:
    """The message a provider put in its error body (OpenAI's and Anthropic's shapes), else ``fallback``."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            if isinstance(message, str) and message.strip():
                return message.strip()
        elif isinstance(inner, str) and inner.strip():
            return inner.strip()
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return fallback
