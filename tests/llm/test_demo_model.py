"""The demo model: where `marid dev` offers it, a new workspace gets "Demo model (scripted, not an AI)" as a
provider, the onboarding step says so, and agents can call ``demo/demo`` through the gateway for free. Elsewhere
the onboarding step asks for a provider key."""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.llm.models import LlmCall, LlmProvider
from app.llm.scripted import DEMO_LABEL, ScriptedServer
from app.main import create_app
from app.tenants.models import Workspace
from tests.helpers import http_client, log_in, make_user, post_form
from tests.llm.conftest import GATEWAY_SERVER_KEY
from tests.llm.gateway import calls_of, gateway_server, mint


def _with_demo(settings: Settings, llm: ScriptedServer) -> Settings:
    return settings.model_copy(
        update={"demo_llm_url": llm.openai_base_url, "demo_llm_key": SecretStr(GATEWAY_SERVER_KEY)}
    )


async def test_a_new_workspace_in_dev_gets_the_demo_model_and_agents_can_call_it(
    db: Database, settings: Settings, llm: ScriptedServer
) -> None:
    dev = _with_demo(settings, llm)
    assert dev.demo_llm_enabled and not dev.model_copy(update={"env": "production"}).demo_llm_enabled
    user = await make_user(db, "newcomer")
    slug = f"demo-{secrets.token_hex(3)}"
    with http_client(create_app(dev)) as client:
        log_in(client, user.email)
        created = post_form(client, "/onboarding", "/onboarding", {"name": "Demo Team", "slug": slug})
        assert created.headers["location"] == f"/w/{slug}/onboarding/invite"
        page = client.get(f"/w/{slug}/onboarding/llm")
        assert page.status_code == 200 and "Connect an LLM" in page.text
        assert "The demo model is ready: agents can use <code>demo/demo</code>." in page.text
        assert DEMO_LABEL in client.get(f"/w/{slug}/llm").text
    async with db.public_session() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.slug == slug))
    assert workspace is not None
    async with db.tenant_session(workspace.id) as session:
        (provider,) = list(await session.scalars(select(LlmProvider)))
    assert (provider.slug, provider.label, provider.preset, provider.base_url) == ("demo", DEMO_LABEL, "demo", "")
    assert provider.api_key_sealed is None

    tools: list[Any] = [
        {"type": "function", "function": {"name": "write", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "complete", "parameters": {"type": "object", "properties": {}}}},
    ]
    token = await mint(db, settings, workspace.id, agent="finn")
    with gateway_server(dev) as gateway:
        async with gateway.client(token.token) as client:
            stream = await client.chat.completions.create(
                model="demo/demo",
                messages=[{"role": "system", "content": "Outputs: summary"}, {"role": "user", "content": "Go."}],
                tools=tools,
                stream=True,
            )
            calls = [chunk async for chunk in stream]
    names = [
        call.function.name
        for chunk in calls
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function and call.function.name
    ]
    assert names == ["write"]
    (logged,) = await calls_of(db, workspace.id, 1)
    assert isinstance(logged, LlmCall)
    assert logged.model == "demo/demo" and logged.cost == 0 and not logged.cost_approximate and logged.tool_calls == 1


async def test_without_the_demo_model_the_onboarding_step_asks_for_a_key(
    db: Database, settings: Settings, llm: ScriptedServer
) -> None:
    user = await make_user(db, "keyholder")
    slug = f"keys-{secrets.token_hex(3)}"
    with http_client(create_app(settings)) as client:
        log_in(client, user.email)
        post_form(client, "/onboarding", "/onboarding", {"name": "Key Team", "slug": slug})
        url = f"/w/{slug}/onboarding/llm"
        page = client.get(url)
        assert "Use the demo model" not in page.text and "Skip for now" in page.text
        assert f'href="/w/{slug}/onboarding/agents"' in page.text  # skipping leads on to the team of agents
        refused = post_form(client, url, url, {"preset": "openai", "api_key": ""})
        assert refused.status_code == 422 and "Paste the provider&#39;s API key." in refused.text
        demo = post_form(client, url, url, {"preset": "demo"})
        assert demo.status_code == 422 and "only available under" in demo.text
        added = post_form(client, url, url, {"preset": "anthropic", "api_key": "sk-ant-onboarding-0123456789"})
        assert added.status_code == 303 and added.headers["location"] == f"/w/{slug}/onboarding/agents"
        dashboard = client.get(added.headers["location"])
        assert dashboard.status_code == 200
    async with db.public_session() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.slug == slug))
    assert workspace is not None
    async with db.tenant_session(workspace.id) as session:
        (provider,) = list(await session.scalars(select(LlmProvider)))
    assert provider.slug == "anthropic" and provider.key_preview == "sk-…6789"
    assert "sk-ant-onboarding-0123456789" not in json.dumps(provider.last_test_message)
