"""Fixtures of the engine's tests: the scripted provider, the gateway, a tenant, a supervisor on the process
runner, and ExecutionDeps over them (reused by tests/runs)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.agents.models import Agent
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import EventBus
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.supervisor import Supervisor
from tests.llm.conftest import gateway, gateway_settings, llm, tenant
from tests.llm.gateway import GatewayServer, Tenant

MODEL = "scripted/coder"


@pytest.fixture
def files_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="marid-engine-files-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def channels() -> Iterator[Path]:
    # Unix socket paths are short: a folder right under /tmp.
    root = Path(tempfile.mkdtemp(prefix="mge-", dir="/tmp"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def deps(
    db: Database, redis: Redis, gateway: GatewayServer, files_root: Path, channels: Path
) -> AsyncIterator[ExecutionDeps]:
    deadlines = Deadlines(hello_seconds=20, idle_seconds=20, grace_seconds=3, exit_seconds=3)
    async with Supervisor(
        ProcessRunner(environment="test"), LlmEndpoint(gateway.base_url), channels_root=channels, deadlines=deadlines
    ) as supervisor:
        yield ExecutionDeps(db=db, redis=redis, bus=EventBus(redis), supervisor=supervisor, files_root=files_root)


@pytest.fixture
async def deps_bus(redis: Redis) -> EventBus:
    return EventBus(redis)


async def add_agents(db: Database, workspace_id: str, *ids: str, model: str | None = MODEL) -> None:
    async with db.tenant_session(workspace_id) as session:
        for agent_id in ids:
            session.add(
                Agent(id=agent_id, name=agent_id.replace("-", " ").title(), role="Tester", model=model,
                      tools=["read", "write", "ls"])
            )  # fmt: skip


__all__ = ["MODEL", "Tenant", "add_agents", "gateway", "gateway_settings", "llm", "tenant"]
