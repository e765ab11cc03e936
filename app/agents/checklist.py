"""The agents domain's item on a new workspace's "next steps" checklist (``app.onboarding.checklist``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.onboarding.checklist import Tables, register
from app.tenants.models import Workspace


async def has_agent(session: AsyncSession, workspace: Workspace) -> bool:
    return await session.scalar(select(Agent.id).limit(1)) is not None


register("agent", has_agent, tables=Tables.WORKSPACE)
