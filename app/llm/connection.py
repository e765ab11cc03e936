""" "Test connection": does a provider answer with this workspace's key? Lists its models, or failing that
sends a one-token request; on failure says what the provider said (never the key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import anthropic
import openai

from app.llm.directory import Directory, Provider, Route
from app.llm.models import LlmModel
from app.llm.upstream import failure

TEST_TIMEOUT = 15.0
MAX_LISTED = 200


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    models: list[str]


async def check_connection(directory: Directory, provider: Provider, catalogue: list[LlmModel]) -> ConnectionResult:
    if not provider.base_url:
        return ConnectionResult(False, "The demo model is not running here (only `marid dev` starts it).", [])
    client = directory.client(provider)
    route = Route(provider, "", None, client)
    try:
        models = await _list_models(client)
    except (openai.NotFoundError, anthropic.NotFoundError):
        models = None  # no model list at this endpoint: a one-token request instead
    except Exception as error:
        return ConnectionResult(False, failure(error, route, TEST_TIMEOUT).message, [])
    if models is not None:
        shown = ", ".join(models[:5]) + (", …" if len(models) > 5 else "")
        return ConnectionResult(
            True, f"Connected: {len(models)} models listed ({shown or 'none'}).", models[:MAX_LISTED]
        )
    if not catalogue:
        return ConnectionResult(False, "The endpoint lists no models; add one to the catalogue and test again.", [])
    try:
        await _one_token(client, catalogue[0].name)
    except Exception as error:
        return ConnectionResult(False, failure(error, route, TEST_TIMEOUT).message, [])
    return ConnectionResult(True, f"Connected: {catalogue[0].name} answered a one-token request.", [])


async def _list_models(client: openai.AsyncOpenAI | anthropic.AsyncAnthropic) -> list[str]:
    page: Any = await client.with_options(timeout=TEST_TIMEOUT).models.list()
    return [str(model.id) for model in page.data]


async def _one_token(client: openai.AsyncOpenAI | anthropic.AsyncAnthropic, model: str) -> None:
    message = [{"role": "user", "content": "Reply with one word."}]
    if isinstance(client, anthropic.AsyncAnthropic):
        await client.with_options(timeout=TEST_TIMEOUT).messages.create(
            model=model, max_tokens=1, messages=cast(Any, message)
        )
    else:
        await client.with_options(timeout=TEST_TIMEOUT).chat.completions.create(
            model=model, max_tokens=1, messages=cast(Any, message)
        )
