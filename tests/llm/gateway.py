"""The gateway under test: the whole web app served by uvicorn in a thread (real HTTP, real streaming), scripted
OpenAI and Anthropic providers, workspaces with providers and catalogues, and tokens minted as the pipeline
engine mints them. Calls go through the official ``openai`` client, exactly as a sandbox's do."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import openai
import uvicorn
from redis.asyncio import Redis
from sqlalchemy import select

from app.audit.actor import Actor
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.llm import pricing, service
from app.llm.models import LlmCall, LlmProvider
from app.llm.pricing import ModelInput
from app.llm.service import ProviderInput
from app.llm.tokens import GatewayTokens, MintedToken
from app.main import create_app
from app.security.secrets import SecretsService
from app.tenants.models import Workspace
from tests.helpers import workspace_with

SETUP = Actor.system("test setup")
# Per-million prices of the scripted models in the catalogue: whole cents per token make the arithmetic visible.
PRICES = {"input": "3", "output": "15", "cache_read": "0.30", "cache_write": "3.75"}


class GatewayServer:
    """``create_app(settings)`` on uvicorn, in a background thread, on a free 127.0.0.1 port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a supervisor gives the SDK: the gateway's OpenAI-compatible base URL."""
        return f"{self.url}/llm/v1"

    def start(self) -> GatewayServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, ws="none", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(20)

    def client(self, token: str, **options: Any) -> openai.AsyncOpenAI:
        """The SDK as a sandbox holds it: our base URL, the step token (no retries unless asked)."""
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=token, max_retries=options.pop("max_retries", 0), timeout=20, **options
        )


@contextmanager
def gateway_server(settings: Settings) -> Iterator[GatewayServer]:
    server = GatewayServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Tenant:
    """A workspace with a scripted OpenAI-compatible provider ("scripted") and an Anthropic one ("claude")."""

    workspace: Workspace
    key: str
    anthropic_key: str

    @property
    def id(self) -> str:
        return self.workspace.id


@asynccontextmanager
async def bus_for(settings: Settings) -> AsyncIterator[EventBus]:
    redis = Redis.from_url(settings.redis_url)
    try:
        yield EventBus(redis)
    finally:
        await redis.aclose()


async def add_provider(
    db: Database,
    settings: Settings,
    secrets_service: SecretsService,
    workspace_id: str,
    *,
    preset: str,
    slug: str,
    base_url: str,
    key: str,
    models: tuple[str, ...] = (),
    prices: dict[str, str] | None = None,
) -> LlmProvider:
    prices = PRICES if prices is None else prices
    async with bus_for(settings) as bus, workspace_change(db, bus, workspace_id) as session:
        provider = await service.create_provider(
            session,
            secrets_service,
            settings,
            workspace_id=workspace_id,
            actor=SETUP,
            values=ProviderInput(preset=preset, slug=slug, base_url=base_url, api_key=key),
        )
        for name in models:
            await pricing.add_model(
                session,
                actor=SETUP,
                provider_id=provider.id,
                values=ModelInput(
                    name=name,
                    input_price=prices.get("input", ""),
                    output_price=prices.get("output", ""),
                    cache_read_price=prices.get("cache_read", ""),
                    cache_write_price=prices.get("cache_write", ""),
                ),
            )
    return provider


async def make_tenant(
    db: Database, settings: Settings, secrets_service: SecretsService, scripted_url: str, label: str
) -> Tenant:
    workspace, _ = await workspace_with(db, f"{label}-{secrets.token_hex(3)}", [])
    key = f"sk-{label}-openai-{secrets.token_hex(16)}"
    anthropic_key = f"sk-ant-{label}-{secrets.token_hex(16)}"
    await add_provider(
        db, settings, secrets_service, workspace.id, preset="custom", slug="scripted",
        base_url=f"{scripted_url}/v1", key=key, models=("coder", "priced"),
    )  # fmt: skip
    await add_provider(
        db, settings, secrets_service, workspace.id, preset="anthropic", slug="claude",
        base_url=scripted_url, key=anthropic_key, models=("coder", "priced"),
    )  # fmt: skip
    return Tenant(workspace, key, anthropic_key)


async def mint(
    db: Database,
    settings: Settings,
    workspace_id: str,
    *,
    agent: str = "finn",
    run: str | None = None,
    step: str | None = None,
    ttl: timedelta = timedelta(minutes=10),
    run_cap: Decimal | None = None,
) -> MintedToken:
    redis = Redis.from_url(settings.redis_url)
    try:
        return await GatewayTokens(db, redis).mint(
            workspace_id,
            agent_id=agent,
            run_id=run or f"run_{secrets.token_hex(4)}",
            step_id=step or f"step_{secrets.token_hex(4)}",
            ttl=ttl,
            run_cap=run_cap,
        )
    finally:
        await redis.aclose()


async def calls_of(db: Database, workspace_id: str, count: int | None = None, seconds: float = 10) -> list[LlmCall]:
    """The workspace's call log, oldest first; with ``count``, once that many rows are there (written off the
    response path, so a moment after the answer)."""

    async def read() -> list[LlmCall]:
        async with db.tenant_session(workspace_id) as session:
            return list(await session.scalars(select(LlmCall).order_by(LlmCall.id)))

    if count is not None:
        found: list[LlmCall] = []

        async def enough() -> bool:
            found[:] = await read()
            return len(found) >= count

        deadline = time.monotonic() + seconds
        while not await enough():
            assert time.monotonic() < deadline, f"{len(found)} calls logged, expected {count}"
            await asyncio.sleep(0.02)
        return found
    return await read()


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait until ``await check()`` is true (things written off the response path); fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"still not true after {seconds} s: {check}"
        await asyncio.sleep(0.02)


USER: list[Any] = [{"role": "user", "content": "Write the notes."}]
