"""The LLM gateway: ``POST /llm/v1/chat/completions``, OpenAI's chat completions for sandboxed agents.

A sandbox's supervisor forwards each LLM call of a step here (base URL ``<MARID_BASE_URL>/llm/v1``) with the
step's token (``Authorization: Bearer mgw_…``, :mod:`app.llm.tokens`). For each call the gateway

1. checks the token (its workspace, agent, run or session; expired and revoked ones get 401),
2. resolves ``provider/model`` among the workspace's providers and checks the budgets (the month's and the
   run's: 429 ``insufficient_quota`` past a cap, never retried),
3. calls the provider with the workspace's key through the official SDK (:mod:`app.llm.upstream`), streaming,
   translated for Anthropic, and relays the answer in OpenAI's format,
4. logs the call (:mod:`app.llm.calllog`): tokens, cost, latency, stop reason, tool calls, status.

Every refusal and failure is an OpenAI error body (or, once streaming, an error event) with a message the caller
can show. The hot path reads tokens and providers from a short per-process cache and makes one Redis round trip
before the provider is called; the log's write to Postgres happens after the answer, off its path.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.config import Settings
from app.db import Database, UnknownWorkspace
from app.live.bus import EventBus
from app.llm.calllog import CallLog, Caps
from app.llm.directory import Directory
from app.llm.metering import CallRecord, Meter
from app.llm.spend import SpendCounters
from app.llm.tokens import Grant, workspace_of
from app.llm.upstream import DONE, Upstream, failure
from app.llm.wire import GatewayError, no_retry, unauthorized
from app.security.ratelimit import RateLimiter
from app.security.secrets import SecretsService

logger = logging.getLogger("marid.llm")

PATH = "/llm/v1/chat/completions"
# The supervisor accepts LLM request bodies up to this size (app/sandbox/channel.py).
MAX_BODY = 32 * 1024 * 1024
_STREAM_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}
# Requests with a token that does not work, per client address and minute, before they are refused unread.
TOKEN_FAILURES_PER_MINUTE = 120


class Gateway:
    """One per web process (``app.state.llm``), built in the app's lifespan."""

    def __init__(self, settings: Settings, directory: Directory, spend: SpendCounters, calls: CallLog) -> None:
        self.settings = settings
        self.directory = directory
        self.spend = spend
        self.calls = calls

    async def aclose(self) -> None:
        await self.calls.drain()
        await self.directory.aclose()

    async def handle(self, request: Request) -> Response:
        meter = Meter()
        try:
            grant = await self._grant(request)
        except GatewayError as refused:
            return await self._count_failure(request, refused)
        try:
            body = await _json_body(request)
        except GatewayError as refused:
            return refused.response()
        except ClientDisconnect:
            return Response(status_code=400)
        stream = body.get("stream") is True
        moment = datetime.now(UTC)
        record = CallRecord(
            call_id=uuid.uuid4(),
            at=moment,
            workspace_id=grant.workspace_id,
            token_id=grant.id,
            agent_id=grant.agent_id,
            run_id=grant.run_id,
            step_id=grant.step_id,
            session_id=grant.session_id,
            model=str(body["model"])[:250],
            stream=stream,
        )
        config = await self.directory.workspace(grant.workspace_id)
        budget = await self.spend.check(grant, config.monthly_cap, moment)
        if budget.revoked:
            return unauthorized("This gateway token was revoked: its step has ended.").response()
        caps = Caps(config.monthly_cap, grant.run_cap)
        route = self.directory.route(config, record.model)
        if route is None:
            names = ", ".join(sorted(config.providers)) or "none yet"
            unknown = GatewayError(
                404,
                f"Unknown model “{record.model}”: name it as provider/model with a provider of this workspace "
                f"({names}).",
                code="model_not_found",
                param="model",
            )
            return await self._refuse(record, meter, caps, no_retry(unknown))
        record.provider, record.provider_kind = route.provider.slug, route.provider.kind
        if (reason := budget.refusal()) is not None:
            spent = no_retry(GatewayError(429, reason, "insufficient_quota", "insufficient_quota"))
            return await self._refuse(record, meter, caps, spent)
        upstream = Upstream(route, body, meter, stream=stream, timeout=self.settings.llm_read_timeout)
        headers = {"x-request-id": str(record.call_id)}
        try:
            await upstream.open()
            if not stream:
                answer = await upstream.answer()
        except GatewayError as failed:
            record.finish(meter, route.prices, failed=failed.message, http_status=failed.status)
            await self.calls.write(record, caps)
            failed.headers.update(headers)
            return failed.response()
        if not stream:
            record.finish(meter, route.prices)
            await self.calls.write(record, caps)
            return Response(answer, media_type="application/json", headers={**headers, "cache-control": "no-store"})
        return StreamingResponse(
            self._relay(upstream, record, caps),
            media_type="text/event-stream",
            headers={**_STREAM_HEADERS, **headers},
        )

    async def _grant(self, request: Request) -> Grant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Send the step's gateway token: Authorization: Bearer mgw_…")
        workspace_id = workspace_of(token)
        if workspace_id is None:
            raise unauthorized("That is not a gateway token.")
        try:
            grant = await self.directory.grant(workspace_id, token)
        except UnknownWorkspace:
            grant = None
        if grant is None:
            raise unauthorized("Unknown gateway token.")
        if grant.revoked:
            raise unauthorized("This gateway token was revoked: its step has ended.")
        if not grant.usable():
            raise unauthorized(f"This gateway token expired at {grant.expires_at:%Y-%m-%d %H:%M:%S} UTC.")
        return grant

    async def _count_failure(self, request: Request, refused: GatewayError) -> Response:
        """A token that does not work: counted per client address, so guessing is slowed down (a sandbox's own
        supervisor never comes close: an expired or revoked token is not retried)."""
        limiter: RateLimiter = request.app.state.rate_limiter
        address = request.client.host if request.client else ""
        result = await limiter.hit("llm.token", address, limit=TOKEN_FAILURES_PER_MINUTE, window_seconds=60)
        if not result.allowed:
            message = f"Too many requests with tokens that do not work; try again in {result.retry_after} s."
            headers = {"retry-after": str(result.retry_after)}
            return no_retry(
                GatewayError(429, message, "rate_limit_error", "too_many_bad_tokens", headers=headers)
            ).response()
        return refused.response()

    async def _refuse(self, record: CallRecord, meter: Meter, caps: Caps, refused: GatewayError) -> Response:
        record.refuse(refused.status, refused.message, meter)
        await self.calls.write(record, caps)
        refused.headers["x-request-id"] = str(record.call_id)
        return refused.response()

    async def _relay(self, upstream: Upstream, record: CallRecord, caps: Caps) -> AsyncIterator[bytes]:
        route, meter = upstream.route, upstream.meter
        recorded = False
        try:
            try:
                async for frame in upstream.events():
                    yield frame
            except Exception as error:
                failed = failure(error, route, upstream.timeout)
                record.finish(meter, route.prices, failed=failed.message, http_status=failed.status)
                await self.calls.write(record, caps)
                recorded = True
                yield failed.event()
                return
            record.finish(meter, route.prices)
            await self.calls.write(record, caps)
            recorded = True
            yield DONE
        finally:
            if not recorded:  # the caller went away mid-answer (this task may be cancelled: nothing is awaited)
                record.finish(
                    meter, route.prices, failed="The caller closed the connection mid-answer.", http_status=499
                )
                self.calls.write_later(record, caps)
            self.calls.detach(upstream.close())


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise GatewayError(413, f"A request body is at most {MAX_BODY // (1024 * 1024)} MiB.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise GatewayError(413, f"A request body is at most {MAX_BODY // (1024 * 1024)} MiB.")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise GatewayError(400, "The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body is a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise GatewayError(400, "Name the model: provider/model.", param="model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise GatewayError(400, "messages must be a non-empty list.", param="messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise GatewayError(400, "stream is true or false.", param="stream")
    return body


def build_gateway(settings: Settings, db: Database, secrets: SecretsService, redis: Redis, bus: EventBus) -> Gateway:
    """The web process's gateway (``app.state.llm``); ``aclose()`` it on shutdown."""
    spend = SpendCounters(redis, db)
    return Gateway(settings, Directory(db, secrets, settings), spend, CallLog(db, bus, spend))


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.llm
    try:
        return await gateway.handle(request)
    except (RedisError, OperationalError, InterfaceError, OSError):
        logger.warning("the LLM gateway could not reach a backing service", exc_info=True)
        unavailable = GatewayError(
            503, "Marid cannot reach one of its services right now; try again shortly.", "server_error"
        )
        return unavailable.response()
    except Exception:
        logger.exception("unhandled error in the LLM gateway")
        return GatewayError(500, "The LLM gateway failed; the error has been logged.", "server_error").response()


routes = [Route(PATH, chat_completions, methods=["POST"])]
