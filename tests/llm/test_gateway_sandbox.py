"""An agent step end to end through the gateway, as the pipeline engine will run it: a step token minted for the
run and step, the supervisor forwarding the sandbox's LLM calls to the gateway's base URL with that token, the
workspace's key added by the gateway (the sandbox never holds it), every call logged; the token revoked when the
step ends."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import openai
import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.db import Database
from app.llm.scripted import DemoModel, ScriptedServer
from app.llm.tokens import GatewayTokens
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.step import AgentStep
from app.sandbox.supervisor import Supervisor
from tests.llm.gateway import USER, GatewayServer, Tenant, calls_of, mint


async def test_an_agent_step_calls_its_model_through_the_gateway(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant, tmp_path: Path
) -> None:
    llm.register_key(tenant.key, DemoModel())
    token = await mint(db, settings, tenant.id, agent="finn", run="run_e2e", step="step_e2e")
    workdir = tmp_path / "workspace"
    workdir.mkdir()
    channels = Path(tempfile.mkdtemp(prefix="mg-"))
    deadlines = Deadlines(hello_seconds=20, idle_seconds=20, grace_seconds=3, exit_seconds=3)
    step = AgentStep(
        id="step_e2e",
        model="scripted/demo",
        system_prompt="You are a careful software engineer.",
        input="Write the notes.",
        tools=["read", "write", "ls"],
        outputs=["summary"],
        max_turns=5,
        timeout_seconds=30,
    )
    llm.clear_requests()
    try:
        async with Supervisor(
            ProcessRunner(environment="test"),
            LlmEndpoint(gateway.base_url),
            channels_root=channels,
            deadlines=deadlines,
        ) as supervisor:
            result = await supervisor.run_step(step, workspace_id=tenant.id, workdir=workdir, llm_token=token.token)
    finally:
        shutil.rmtree(channels, ignore_errors=True)
        redis = Redis.from_url(settings.redis_url)
        try:
            await GatewayTokens(db, redis).revoke_step(tenant.id, "step_e2e")
        finally:
            await redis.aclose()
    assert result.status == "complete", result.error
    assert (workdir / "NOTES.md").exists()
    # The provider saw the workspace's key, never the step's token.
    assert llm.requests and {request.api_key for request in llm.requests} == {tenant.key}
    calls = await calls_of(db, tenant.id, len(llm.requests))
    assert {(call.agent_id, call.run_id, call.step_id, call.status) for call in calls} == {
        ("finn", "run_e2e", "step_e2e", "ok")
    }
    assert sum(call.tool_calls for call in calls) >= 2 and all(call.stream for call in calls)
    # The step is over: its token is refused.
    async with gateway.client(token.token) as client:
        with pytest.raises(openai.AuthenticationError, match="revoked"):
            await client.chat.completions.create(model="scripted/demo", messages=USER)
