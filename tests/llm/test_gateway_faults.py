"""Bad input from providers: timeouts, 401/429/5xx, malformed JSON, broken streams and error events, on both
protocols. The caller gets a clear error with the provider's message (OpenAI's shape: a status before the answer
began, an error event after), the call is logged as failed, and it costs nothing."""

from __future__ import annotations

from dataclasses import dataclass

import openai
import pytest

from app.config import Settings
from app.db import Database
from app.llm.scripted import (
    CutStream,
    GarbageChunk,
    Hang,
    HttpError,
    MalformedJson,
    Reply,
    Script,
    ScriptedServer,
    StreamError,
    Usage,
)
from app.llm.scripted.script import Outcome
from tests.llm.gateway import USER, GatewayServer, Tenant, calls_of, mint

LONG = Reply(text="A long answer that streams in many small pieces.", chunk_size=3, usage=Usage(prompt_tokens=50))


@dataclass(frozen=True)
class Fault:
    name: str
    outcome: Outcome
    stream: bool
    # What the caller's SDK raises, its status (None: an error event in a stream that had begun) and a phrase.
    raises: type[Exception]
    status: int | None
    says: str


FAULTS = [
    Fault("401", HttpError(status=401, message="Invalid key, friend."), False, openai.InternalServerError, 502,
          "refused this workspace's key (401): Invalid key, friend."),
    Fault("429", HttpError(status=429, message="Slow down.", retry_after=7), True, openai.RateLimitError, 429,
          "rate limiting this workspace (429): Slow down."),
    Fault("500", HttpError(status=500, message="Kaboom."), True, openai.InternalServerError, 502,
          "failed (500): Kaboom."),
    Fault("503", HttpError(status=503, message="Overloaded."), False, openai.InternalServerError, 502,
          "failed (503): Overloaded."),
    Fault("malformed", MalformedJson(), False, openai.InternalServerError, 502, "malformed JSON"),
    Fault("malformed stream", MalformedJson(), True, openai.APIError, None, "malformed JSON"),
    Fault("garbage chunk", GarbageChunk(after_chunks=3, reply=LONG), True, openai.APIError, None, "malformed JSON"),
    Fault("cut stream", CutStream(after_chunks=3, reply=LONG), True, openai.APIError, None, "broke off"),
    Fault("cut body", CutStream(reply=LONG), False, openai.InternalServerError, 502, "LLM"),
    Fault("stream error", StreamError(after_chunks=2, message="The model fell over.", reply=LONG), True,
          openai.APIError, None, "The model fell over."),
    Fault("hang", Hang(), False, openai.APITimeoutError, 504, "did not answer within 2 s"),
    Fault("hang mid-stream", Hang(after_chunks=3, reply=LONG), True, openai.APIError, None,
          "did not answer within 2 s"),
]  # fmt: skip


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_a_failing_provider_gives_a_clear_error_and_costs_nothing(
    db: Database,
    settings: Settings,
    llm: ScriptedServer,
    gateway: GatewayServer,
    tenant: Tenant,
    fault: Fault,
    protocol: str,
) -> None:
    key, model = (tenant.key, "scripted/priced") if protocol == "openai" else (tenant.anthropic_key, "claude/priced")
    llm.register_key(key, Script.always(fault.outcome))
    token = await mint(db, settings, tenant.id)
    raises: type[Exception] = fault.raises
    if fault.status == 504:
        raises = openai.InternalServerError  # the gateway's 504 (the caller's own timeout is longer)
    async with gateway.client(token.token) as client:
        with pytest.raises(raises) as failed:
            if fault.stream:
                stream = await client.chat.completions.create(model=model, messages=USER, stream=True)
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(model=model, messages=USER)
    message = str(failed.value)
    label = "Anthropic (claude)" if protocol == "anthropic" else "Custom (OpenAI-compatible) (scripted)"
    assert label in message, message
    if fault.says != "LLM":
        assert fault.says in message, message
    if fault.status is not None:
        assert isinstance(failed.value, openai.APIStatusError) and failed.value.status_code == fault.status
    assert key not in message
    (call,) = await calls_of(db, tenant.id, 1)
    assert call.status == "error" and call.cost == 0 and not call.cost_approximate
    assert label in call.error and key not in call.error
    assert call.http_status == (fault.status or call.http_status) and call.http_status >= 400


async def test_a_provider_s_401_is_not_retried_but_its_429_is(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    token = await mint(db, settings, tenant.id)
    llm.register_key(tenant.key, Script.always(HttpError(status=401, message="nope")))
    llm.clear_requests()
    async with gateway.client(token.token, max_retries=2) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="scripted/coder", messages=USER)
        assert len(llm.requests) == 1  # x-should-retry: false
        llm.register_key(tenant.key, Script.sequence(HttpError(status=429, retry_after=0.1), Reply(text="ok")))
        answer = await client.chat.completions.create(model="scripted/coder", messages=USER)
    assert answer.choices[0].message.content == "ok"
    calls = await calls_of(db, tenant.id, 3)
    assert [call.status for call in calls] == ["error", "error", "ok"]
