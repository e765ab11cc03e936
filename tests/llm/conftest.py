"""A real scripted LLM server per test, on a free loopback port, and the official SDK clients pointed at it.

The clients never retry unless a test asks (a retry would use up a script's turn) and give up quickly, so a
fault that hangs fails fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest

from app.config import Settings
from app.db import Database
from app.llm.scripted import ScriptedServer
from app.security.secrets import SecretsService
from tests.llm.gateway import GatewayServer, Tenant, gateway_server, make_tenant

API_KEY = "sk-scripted-test"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def oai(server: ScriptedServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
async def async_oai(server: ScriptedServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=API_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


@pytest.fixture
def claude(server: ScriptedServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
async def async_claude(server: ScriptedServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


# --- the gateway ---------------------------------------------------------------------------------------------

GATEWAY_SERVER_KEY = "sk-scripted-gateway-server"


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    """The test settings with short provider timeouts (a hanging provider fails within seconds)."""
    return settings.model_copy(update={"llm_read_timeout": 2.0, "llm_connect_timeout": 2.0})


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedServer]:
    """A scripted provider for the gateway tests: each tenant's key has its own script."""
    with ScriptedServer(api_key=GATEWAY_SERVER_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(gateway_settings: Settings) -> Iterator[GatewayServer]:
    with gateway_server(gateway_settings) as running:
        yield running


@pytest.fixture
async def tenant(db: Database, settings: Settings, secrets_service: SecretsService, llm: ScriptedServer) -> Tenant:
    return await make_tenant(db, settings, secrets_service, llm.url, "ws")
