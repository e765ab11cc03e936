"""Ticks "Run a pipeline" on a new workspace's checklist once the workspace has started a run."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.onboarding.checklist import Tables, register
from app.runs.models import Run
from app.tenants.models import Workspace


async def has_run(session: AsyncSession, workspace: Workspace) -> bool:
    return await session.scalar(select(Run.id).limit(1)) is not None


register("pipeline_run", has_run, tables=Tables.WORKSPACE)
