"""What the gateway needs to know about a workspace, kept briefly per process: its tokens, its providers with
their keys, its catalogue's prices and its budget, and one SDK client per provider.

The hot path reads these from memory: a token row is re-read after ``ttl`` seconds (a revocation is seen at once
all the same, through its Redis mark: :mod:`app.llm.tokens`), a workspace's providers likewise (a new key or
price takes effect within ``ttl``). Loading one workspace happens once at a time per process, however many calls
ask for it together. Opened keys live only in this process's memory, inside the SDK clients.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import anthropic
import httpx2
import openai
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.llm.catalogue import DEMO_PRESET, Prices, parse_model_string
from app.llm.egress import guarded_transport
from app.llm.models import LlmBudget, LlmModel, LlmProvider
from app.llm.service import open_key
from app.llm.tokens import Grant, find_grant
from app.security.secrets import SecretsService
from app.security.tokens import token_hash

# Sent as the key to endpoints configured without one (a local Ollama): the SDKs insist on some key.
NO_KEY = "no-key"


@dataclass(frozen=True)
class Provider:
    id: uuid.UUID
    slug: str
    label: str
    kind: str
    base_url: str
    # Opened once per load; never logged, never sent anywhere but to this provider.
    key: str
    updated_at: datetime


def provider_of(settings: Settings, row: LlmProvider, key: str) -> Provider:
    """A provider row as the gateway calls it, with its opened ``key``."""
    base_url = row.base_url
    if row.preset == DEMO_PRESET:
        # The demo model lives wherever `marid dev` started it this time; nowhere in production.
        base_url = settings.demo_llm_url if settings.demo_llm_enabled else ""
        key = settings.demo_llm_key.get_secret_value()
    return Provider(row.id, row.slug, row.label, row.kind, base_url, key, row.updated_at)


@dataclass(frozen=True)
class Route:
    """Where a model string goes: the provider, the model's name there, its prices (None: unknown)."""

    provider: Provider
    model: str
    prices: Prices | None
    client: openai.AsyncOpenAI | anthropic.AsyncAnthropic


@dataclass
class WorkspaceLlm:
    providers: dict[str, Provider]
    prices: dict[tuple[str, str], Prices]
    monthly_cap: Decimal | None
    loaded: float = field(default_factory=time.monotonic)


class Directory:
    def __init__(
        self,
        db: Database,
        secrets: SecretsService,
        settings: Settings,
        *,
        ttl: float = 5.0,
        max_workspaces: int = 1024,
        max_tokens: int = 10_000,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.settings = settings
        self.ttl = ttl
        self.max_workspaces = max_workspaces
        self.max_tokens = max_tokens
        self._workspaces: OrderedDict[str, WorkspaceLlm] = OrderedDict()
        self._grants: OrderedDict[str, tuple[float, Grant | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[WorkspaceLlm]] = {}
        self._clients: OrderedDict[tuple[uuid.UUID, datetime], openai.AsyncOpenAI | anthropic.AsyncAnthropic] = (
            OrderedDict()
        )
        timeout = httpx2.Timeout(settings.llm_read_timeout, connect=settings.llm_connect_timeout)
        # One connection pool for every provider of every workspace (pools are per origin inside it).
        self.http = httpx2.AsyncClient(
            timeout=timeout,
            transport=guarded_transport(settings),
            trust_env=False,
            follow_redirects=False,
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=200),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- tokens -----------------------------------------------------------------------------------------------

    async def grant(self, workspace_id: str, token: str) -> Grant | None:
        """The token's grant as stored (re-read after ``ttl``); None for a token this workspace never issued."""
        digest = token_hash(token)
        cached = self._grants.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        async with self.db.tenant_session(workspace_id) as session:
            found = await find_grant(session, workspace_id, token)
        self._grants[digest] = (now, found)
        self._grants.move_to_end(digest)
        while len(self._grants) > self.max_tokens:
            self._grants.popitem(last=False)
        return found

    def forget_grant(self, token: str) -> None:
        self._grants.pop(token_hash(token), None)

    # -- providers --------------------------------------------------------------------------------------------

    async def workspace(self, workspace_id: str) -> WorkspaceLlm:
        cached = self._workspaces.get(workspace_id)
        if cached is not None and time.monotonic() - cached.loaded < self.ttl:
            return cached
        pending = self._loading.get(workspace_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[WorkspaceLlm] = asyncio.get_running_loop().create_future()
        self._loading[workspace_id] = future
        try:
            loaded = await self._load(workspace_id)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._loading.pop(workspace_id, None)
        future.set_result(loaded)
        self._workspaces[workspace_id] = loaded
        self._workspaces.move_to_end(workspace_id)
        while len(self._workspaces) > self.max_workspaces:
            self._workspaces.popitem(last=False)
        return loaded

    def forget(self, workspace_id: str) -> None:
        """Drop a workspace's cached configuration (this process reloads it on its next call)."""
        self._workspaces.pop(workspace_id, None)

    async def _load(self, workspace_id: str) -> WorkspaceLlm:
        async with self.db.tenant_session(workspace_id) as session:
            rows = list(await session.scalars(select(LlmProvider)))
            models = list(await session.scalars(select(LlmModel)))
            cap = await session.scalar(select(LlmBudget.monthly_cap).where(LlmBudget.id == 1))
            providers = {
                row.slug: provider_of(self.settings, row, await open_key(session, self.secrets, workspace_id, row))
                for row in rows
            }
        slugs = {row.id: row.slug for row in rows}
        prices = {
            (slugs[model.provider_id], model.name): Prices(
                model.input_price, model.output_price, model.cache_read_price, model.cache_write_price
            )
            for model in models
            if model.provider_id in slugs
        }
        return WorkspaceLlm(providers, prices, cap)

    def route(self, config: WorkspaceLlm, model_string: str) -> Route | None:
        """Where ``provider/model`` goes; None for an unknown provider. A model missing from the catalogue still
        goes (its cost is then flagged approximate)."""
        parsed = parse_model_string(model_string)
        if parsed is None:
            return None
        provider = config.providers.get(parsed.provider)
        if provider is None or not provider.base_url:
            return None
        return Route(provider, parsed.model, config.prices.get((parsed.provider, parsed.model)), self.client(provider))

    def client(self, provider: Provider) -> openai.AsyncOpenAI | anthropic.AsyncAnthropic:
        key = (provider.id, provider.updated_at)
        found = self._clients.get(key)
        if found is not None:
            self._clients.move_to_end(key)
            return found
        client: openai.AsyncOpenAI | anthropic.AsyncAnthropic
        if provider.kind == "anthropic":
            client = anthropic.AsyncAnthropic(
                api_key=provider.key or NO_KEY, base_url=provider.base_url, http_client=self.http, max_retries=0
            )
        else:
            client = openai.AsyncOpenAI(
                api_key=provider.key or NO_KEY, base_url=provider.base_url, http_client=self.http, max_retries=0
            )
        self._clients[key] = client
        while len(self._clients) > self.max_workspaces * 2:
            self._clients.popitem(last=False)  # the shared connection pool stays; nothing to close
        return client
