"""The LLM domain's item on a new workspace's "next steps" checklist (``app.onboarding.checklist``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.llm.catalogue import DEMO_PRESET
from app.llm.models import LlmProvider
from app.onboarding.checklist import Tables, register
from app.tenants.models import Workspace


async def has_real_provider(session: AsyncSession, workspace: Workspace) -> bool:
    """A provider with a real model: the scripted demo model lets people try Marid, but is not what the item asks."""
    found = await session.scalar(select(LlmProvider.id).where(LlmProvider.preset != DEMO_PRESET).limit(1))
    return found is not None


register("llm_provider", has_real_provider, tables=Tables.WORKSPACE)
