"""A real scripted LLM server per test, on a free loopback port, and the official SDK clients pointed at it.

The clients never retry unless a test asks (a retry would use up a script's turn) and give up quickly, so a
fault that hangs fails fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest

from app.llm.scripted import ScriptedServer

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
