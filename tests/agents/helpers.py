"""Helpers for the agents and secrets tests: tenant units of work as a request opens them, and reading back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.audit.models import AuditEvent
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.llm.models import LlmModel, LlmProvider


@asynccontextmanager
async def workspace_changes(db: Database, settings: Settings, workspace_id: str) -> AsyncIterator[AsyncSession]:
    """A unit of work on the workspace's tables, as a request opens it (audit entries published after commit)."""
    redis = Redis.from_url(settings.redis_url)
    try:
        async with workspace_change(db, EventBus(redis), workspace_id) as session:
            yield session
    finally:
        await redis.aclose()


async def agents_in(db: Database, workspace_id: str) -> dict[str, Agent]:
    async with db.tenant_session(workspace_id) as session:
        return {agent.id: agent for agent in await session.scalars(select(Agent))}


async def audit_of(db: Database, workspace_id: str, prefix: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """(action, details, actor id) of the workspace's audit entries whose action starts with ``prefix``."""
    async with db.tenant_session(workspace_id) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
        )
        return [(event.action, event.details, event.actor_id) for event in rows]


async def add_models(db: Database, workspace_id: str, *model_strings: str) -> None:
    """Put ``provider/model`` strings in the workspace's catalogue (a keyless provider per first part), so
    agents may name them: the agents domain refuses models the workspace cannot call."""
    async with db.tenant_session(workspace_id) as session:
        providers: dict[str, LlmProvider] = {}
        for model_string in model_strings:
            slug, name = model_string.split("/", 1)
            if slug not in providers:
                kind = "anthropic" if slug == "anthropic" else "openai"
                providers[slug] = LlmProvider(slug=slug, label=slug.title(), kind=kind, preset="custom")
                session.add(providers[slug])
                await session.flush()
            session.add(LlmModel(provider_id=providers[slug].id, name=name))
        await session.commit()


TEST_MODELS = ("openai/gpt-4.1", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5")
