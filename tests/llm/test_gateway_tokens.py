"""Gateway tokens: a workspace's token spends that workspace's key and nobody else's; expired, revoked, forged
and foreign tokens are refused with OpenAI's 401, before any provider is called."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import openai
import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.db import Database
from app.llm.scripted import Reply, Script, ScriptedServer
from app.llm.tokens import GatewayTokens, mint_token, workspace_of
from app.security.secrets import SecretsService
from tests.llm.gateway import USER, GatewayServer, Tenant, calls_of, make_tenant, mint


async def _ask(gateway: GatewayServer, token: str, model: str = "scripted/coder") -> str:
    async with gateway.client(token) as client:
        answer = await client.chat.completions.create(model=model, messages=USER)
    return answer.choices[0].message.content or ""


async def test_a_token_of_workspace_a_cannot_spend_workspace_b_s_key(
    db: Database, settings: Settings, secrets_service: SecretsService, llm: ScriptedServer, gateway: GatewayServer
) -> None:
    a = await make_tenant(db, settings, secrets_service, llm.url, "alpha")
    b = await make_tenant(db, settings, secrets_service, llm.url, "beta")
    llm.register_key(a.key, Script.always(Reply(text="answered with A's key")))
    llm.register_key(b.key, Script.always(Reply(text="answered with B's key")))
    token_a = await mint(db, settings, a.id)
    token_b = await mint(db, settings, b.id)
    llm.clear_requests()
    # Both workspaces name their provider "scripted": each token reaches its own workspace's key only.
    assert await _ask(gateway, token_a.token) == "answered with A's key"
    assert await _ask(gateway, token_b.token) == "answered with B's key"
    assert [request.api_key for request in llm.requests] == [a.key, b.key]
    # A's secret under B's name (the token's workspace part changed): unknown in B, nothing is called.
    forged = token_a.token.replace(a.id, b.id)
    with pytest.raises(openai.AuthenticationError, match="Unknown gateway token"):
        await _ask(gateway, forged)
    assert len(llm.requests) == 2
    # Each call is in its own workspace's log only.
    assert len(await calls_of(db, a.id, 1)) == 1 and len(await calls_of(db, b.id, 1)) == 1


async def test_expired_and_revoked_tokens_are_refused(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.key, Script.always(Reply(text="ok")))
    short = await mint(db, settings, tenant.id, ttl=timedelta(seconds=1))
    assert await _ask(gateway, short.token) == "ok"
    await asyncio.sleep(1.2)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        await _ask(gateway, short.token)

    token = await mint(db, settings, tenant.id, step="step_revoked")
    assert await _ask(gateway, token.token) == "ok"  # the gateway now holds the token in its cache
    redis = Redis.from_url(settings.redis_url)
    try:
        assert await GatewayTokens(db, redis).revoke_step(tenant.id, "step_revoked") == 1
    finally:
        await redis.aclose()
    llm.clear_requests()
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        await _ask(gateway, token.token)
    assert llm.requests == []
    assert len(await calls_of(db, tenant.id, 2)) == 2  # refused tokens are not calls of the workspace


async def test_without_a_bearer_token_the_csrf_check_refuses_in_openai_s_shape(gateway: GatewayServer) -> None:
    import httpx2

    async with httpx2.AsyncClient() as client:
        for headers in ({}, {"authorization": "Basic bWdXX3g6eQ=="}):
            response = await client.post(gateway.base_url + "/chat/completions", headers=headers, json={})
            assert response.status_code == 403
            assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer x",
        "Bearer marid_pk_AbCd1234_notagatewaytoken",
        "Bearer mgw_000000000000_" + "x" * 43,
        "Bearer mgw_" + "A" * 12 + "_" + "x" * 43,
        "Bearer " + "mgw_" + "a" * 200,
    ],
)
async def test_anything_but_a_gateway_token_gets_401(gateway: GatewayServer, authorization: str) -> None:
    import httpx2

    headers = {"content-type": "application/json", "authorization": authorization}
    async with httpx2.AsyncClient() as client:
        response = await client.post(
            gateway.base_url + "/chat/completions",
            headers=headers,
            json={"model": "scripted/coder", "messages": USER},
        )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error" and error["message"]


async def test_minting_checks_its_arguments(db: Database, tenant: Tenant) -> None:
    from app.llm.tokens import TokenError

    async with db.tenant_session(tenant.id) as session:
        for arguments in (
            {"agent_id": "finn"},  # neither a run nor a session
            {"agent_id": "bad id", "run_id": "r1"},
            {"agent_id": "finn", "run_id": "r1", "ttl": timedelta(days=2)},
            {"agent_id": "finn", "session_id": "s1", "run_cap": 5},
        ):
            with pytest.raises(TokenError):
                await mint_token(session, tenant.id, **arguments)  # type: ignore[arg-type]
        minted = await mint_token(session, tenant.id, agent_id="finn", session_id="chat_1")
    assert workspace_of(minted.token) == tenant.id and len(minted.token) == 60


async def test_guessing_tokens_is_slowed_down(gateway: GatewayServer, settings: Settings) -> None:
    import httpx2

    from app.llm.gateway import TOKEN_FAILURES_PER_MINUTE

    headers = {"authorization": "Bearer mgw_000000000000_" + "y" * 43}
    async with httpx2.AsyncClient(base_url=gateway.base_url) as client:
        statuses = [
            (await client.post("/chat/completions", headers=headers, json={})).status_code
            for _ in range(TOKEN_FAILURES_PER_MINUTE + 10)
        ]
    # A burst of the limit, then refused (the bucket refills two a second while this runs).
    assert statuses[:TOKEN_FAILURES_PER_MINUTE] == [401] * TOKEN_FAILURES_PER_MINUTE
    assert statuses[-1] == 429
