"""The scripted server's Starlette application: the OpenAI and Anthropic endpoints and the admin endpoints.

Routes:

* ``POST /v1/chat/completions`` (OpenAI; ``Authorization: Bearer <key>``)
* ``POST /v1/messages`` (Anthropic; ``x-api-key`` or a bearer token, and ``anthropic-version``)
* ``GET /v1/models`` and ``GET /v1/models/{name}``: OpenAI's shapes, or Anthropic's when the request has an
  ``anthropic-version`` header
* ``POST /_scripted/scripts`` (a :class:`~app.llm.scripted.script.ScriptDocument`), ``DELETE /_scripted/scripts
  ?model=…|api_key=…``, ``GET``/``DELETE /_scripted/requests``: admin, for a server in another process
* ``GET /healthz``

A key is accepted when it is the server's key, or a key that has a script of its own; with no server key every
key is accepted (the admin endpoints are then open too).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.llm.scripted.anthropic_wire import AnthropicWire
from app.llm.scripted.openai_wire import OpenAIWire
from app.llm.scripted.registry import PREFIX, ModelEntry, Registry
from app.llm.scripted.request import ChatRequest, RequestError, parse_anthropic, parse_openai
from app.llm.scripted.script import ScriptDocument
from app.llm.scripted.transmission import TransmissionResponse, error, transmit
from app.llm.scripted.wire import Wire

log = logging.getLogger(__name__)
Parser = Callable[..., ChatRequest]
# Model lists say the models were made at this fixed time, so the lists are the same on every run.
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def create_app(registry: Registry, *, api_key: str | None = None, closing: threading.Event | None = None) -> Starlette:
    closing = closing or threading.Event()

    def accepted(key: str | None) -> bool:
        if api_key is None:
            return True
        return key is not None and (hmac.compare_digest(key.encode(), api_key.encode()) or registry.has_key(key))

    def refuse(wire: Wire, key: str | None) -> Response:
        if wire.api == "anthropic":
            message = "invalid x-api-key" if key else "x-api-key header is required"
        else:
            message = "Incorrect API key provided." if key else "You didn't provide an API key."
        return TransmissionResponse(error(wire, 401, message), wire, closing)

    async def chat(request: Request, wire: Wire, parse: Parser, key: str | None) -> Response:
        if not accepted(key):
            return refuse(wire, key)
        if wire.api == "anthropic" and "anthropic-version" not in request.headers:
            return TransmissionResponse(error(wire, 400, "anthropic-version: header is required"), wire, closing)
        try:
            body = json.loads(await request.body())
            chat_request = parse(body, api_key=key, headers=dict(request.headers))
        except RequestError as exc:
            return TransmissionResponse(error(wire, 400, exc.message, param=exc.param), wire, closing)
        except ValueError:
            message = "We could not parse the JSON body of your request."
            return TransmissionResponse(error(wire, 400, message), wire, closing)
        registry.record(chat_request)
        responder = registry.resolve(chat_request.model, key)
        if responder is None:
            model = chat_request.model
            message = (
                f"model: {model}"
                if wire.api == "anthropic"
                else f"The model `{model}` does not exist or you do not have access to it."
            )
            return TransmissionResponse(error(wire, 404, message), wire, closing)
        try:
            outcome = responder.respond(chat_request)
        except Exception as exc:
            # A bug in a Python responder: say so in the protocol's shape rather than as a bare 500 page.
            log.exception("scripted responder for %r failed", chat_request.model)
            return TransmissionResponse(error(wire, 500, f"the scripted responder failed: {exc!r}"), wire, closing)
        return TransmissionResponse(transmit(outcome, chat_request, wire), wire, closing)

    openai_wire, anthropic_wire = OpenAIWire(), AnthropicWire()

    async def chat_completions(request: Request) -> Response:
        return await chat(request, openai_wire, parse_openai, _bearer(request))

    async def messages(request: Request) -> Response:
        return await chat(
            request, anthropic_wire, parse_anthropic, request.headers.get("x-api-key") or _bearer(request)
        )

    def model_request(request: Request) -> tuple[Wire, str | None]:
        # Both APIs list models at GET /v1/models; only Anthropic's clients send anthropic-version.
        if "anthropic-version" in request.headers:
            return anthropic_wire, request.headers.get("x-api-key") or _bearer(request)
        return openai_wire, _bearer(request)

    async def models(request: Request) -> Response:
        wire, key = model_request(request)
        if not accepted(key):
            return refuse(wire, key)
        data = [_model_json(wire, e) for e in registry.models()]
        if wire.api == "anthropic":
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            return JSONResponse({"data": data, "has_more": False, "first_id": first, "last_id": last})
        return JSONResponse({"object": "list", "data": data})

    async def model(request: Request) -> Response:
        wire, key = model_request(request)
        if not accepted(key):
            return refuse(wire, key)
        name = request.path_params["name"]
        entry = next((e for e in registry.models() if name in (e.name, PREFIX + e.name)), None)
        if entry is None:
            message = f"model: {name}" if wire.api == "anthropic" else f"The model `{name}` does not exist."
            return TransmissionResponse(error(wire, 404, message), wire, closing)
        return JSONResponse(_model_json(wire, entry))

    def admin(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if not accepted(_bearer(request) or request.headers.get("x-api-key")):
                return JSONResponse({"error": "the admin endpoints need the server's API key"}, status_code=401)
            return await handler(request)

        return guarded

    async def add_script(request: Request) -> Response:
        try:
            document = ScriptDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": "not a script document", "details": json.loads(exc.json())}, status_code=422)
        if document.model is not None:
            registry.register(document.model, document)
        if document.api_key is not None:
            registry.register_key(document.api_key, document)
        return Response(status_code=204)

    async def remove_script(request: Request) -> Response:
        registry.unregister(model=request.query_params.get("model"), api_key=request.query_params.get("api_key"))
        return Response(status_code=204)

    async def list_requests(request: Request) -> Response:
        return JSONResponse([recorded(r) for r in registry.requests])

    async def clear_requests(request: Request) -> Response:
        registry.clear_requests()
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{name:path}", model, methods=["GET"]),
            Route("/_scripted/scripts", admin(add_script), methods=["POST"]),
            Route("/_scripted/scripts", admin(remove_script), methods=["DELETE"]),
            Route("/_scripted/requests", admin(list_requests), methods=["GET"]),
            Route("/_scripted/requests", admin(clear_requests), methods=["DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _model_json(wire: Wire, entry: ModelEntry) -> dict[str, Any]:
    if wire.api == "anthropic":
        created_at = _CREATED.isoformat()
        return {
            "type": "model",
            "id": entry.name,
            "display_name": entry.label,
            "created_at": created_at,
            "lifecycle": "active",
        }
    return {"id": entry.name, "object": "model", "created": int(_CREATED.timestamp()), "owned_by": "marid-scripted"}


def recorded(request: ChatRequest) -> dict[str, Any]:
    """A received request as the admin endpoint lists it."""
    return {
        "protocol": request.protocol,
        "model": request.model,
        "api_key": request.api_key,
        "stream": request.stream,
        "headers": dict(request.headers),
        "body": request.body,
    }
