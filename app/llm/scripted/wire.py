"""What the two protocol renderers have in common: the shape the server needs from each, and SSE framing."""

from __future__ import annotations

import json
from typing import Any, Protocol

from app.llm.scripted.answer import Answer
from app.llm.scripted.request import Api


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is already text."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class Wire(Protocol):
    """Renders answers and errors in one protocol."""

    api: Api
    # The response header that carries the request id (what SDK exceptions report as request_id).
    request_id_header: str

    def body(self, answer: Answer) -> bytes:
        """The JSON body of a non-streamed answer."""
        ...

    def frames(self, answer: Answer, *, include_usage: bool) -> list[bytes]:
        """The events of a streamed answer, one SSE frame each, the terminating one included."""
        ...

    def garbage_frame(self) -> bytes:
        """A frame whose data is not JSON."""
        ...

    def error_frame(self, message: str, error_type: str | None) -> bytes:
        """An in-stream error event."""
        ...

    def error_body(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> bytes:
        """The protocol's error JSON for an HTTP error status."""
        ...
