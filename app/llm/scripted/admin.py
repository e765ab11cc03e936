"""A client for the admin endpoints of a scripted server that runs in another process (``marid dev``)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from app.llm.scripted.script import Script, ScriptDocument


class ScriptedAdmin:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 10) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _post(self, document: ScriptDocument) -> None:
        response = self._client.post(
            "/_scripted/scripts", content=document.model_dump_json(), headers={"content-type": "application/json"}
        )
        response.raise_for_status()

    def register(self, model: str, script: Script) -> None:
        self._post(ScriptDocument(model=model, turns=script.turns))

    def register_key(self, api_key: str, script: Script) -> None:
        self._post(ScriptDocument(api_key=api_key, turns=script.turns))

    def unregister(self, *, model: str | None = None, api_key: str | None = None) -> None:
        params = {k: v for k, v in (("model", model), ("api_key", api_key)) if v is not None}
        self._client.delete("/_scripted/scripts", params=params).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = self._client.get("/_scripted/requests")
        response.raise_for_status()
        recorded: list[dict[str, Any]] = response.json()
        return recorded

    def clear_requests(self) -> None:
        self._client.delete("/_scripted/requests").raise_for_status()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ScriptedAdmin:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
