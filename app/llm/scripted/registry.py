"""Which script answers a request, and the log of the requests received.

Scripts are found by API key first (a test that plays two workspaces gives each its own provider key), then
by model name, then by model name without a ``scripted/`` prefix. The registry is shared by the server's
event loop and the test's thread, so it takes a lock; the request log is bounded so that a benchmark or a
long ``marid dev`` session does not grow without end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.llm.scripted.request import ChatRequest
from app.llm.scripted.script import Outcome, Responder

PREFIX = "scripted/"
ResponderLike = Responder | Callable[[ChatRequest], Outcome]


@dataclass(frozen=True)
class FunctionResponder:
    """A plain function as a responder."""

    function: Callable[[ChatRequest], Outcome]

    def respond(self, request: ChatRequest) -> Outcome:
        return self.function(request)


def as_responder(value: ResponderLike) -> Responder:
    if hasattr(value, "respond"):
        return value
    if callable(value):
        return FunctionResponder(value)
    raise TypeError(f"not a script, a responder or a function: {value!r}")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    label: str
    responder: Responder


class Registry:
    def __init__(self, *, log_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelEntry] = {}
        self._keys: dict[str, Responder] = {}
        self._log: deque[ChatRequest] = deque(maxlen=log_size)

    def register(self, model: str, script: ResponderLike, *, label: str | None = None) -> None:
        """``model`` (and ``scripted/<model>``) answers from ``script``; ``label`` is its display name."""
        with self._lock:
            self._models[model] = ModelEntry(model, label or model, as_responder(script))

    def register_key(self, api_key: str, script: ResponderLike) -> None:
        """Every request made with ``api_key`` answers from ``script``, whatever its model."""
        with self._lock:
            self._keys[api_key] = as_responder(script)

    def unregister(self, *, model: str | None = None, api_key: str | None = None) -> None:
        with self._lock:
            if model is not None:
                self._models.pop(model, None)
            if api_key is not None:
                self._keys.pop(api_key, None)

    def has_key(self, api_key: str | None) -> bool:
        with self._lock:
            return api_key is not None and api_key in self._keys

    def resolve(self, model: str, api_key: str | None) -> Responder | None:
        with self._lock:
            if api_key is not None and api_key in self._keys:
                return self._keys[api_key]
            entry = self._models.get(model) or self._models.get(model.removeprefix(PREFIX))
            return entry.responder if entry else None

    def models(self) -> list[ModelEntry]:
        with self._lock:
            return sorted(self._models.values(), key=lambda e: e.name)

    def record(self, request: ChatRequest) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def requests(self) -> list[ChatRequest]:
        """The requests answered so far, oldest first (the last ``log_size``)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()
