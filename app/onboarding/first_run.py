"""A starter pipeline ready to run: the pipeline itself and the roster agents it names, whichever are missing.

Used by the pipelines page ("add a starter"), its API twin and onboarding's last step ("run the engineering
pipeline on a sample task"). Flushes, never commits: the caller's unit of work does, so a refusal (the
workspace is full of agents, say) leaves nothing half-added.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.agents.models import Agent
from app.agents.roster import starter
from app.audit.actor import Actor
from app.errors import NotFound
from app.pipelines import service as pipelines
from app.pipelines.models import PipelineRecord
from app.pipelines.starters import load_starter, starter_ids

# The starter onboarding offers, and the task it suggests (small enough to finish in minutes on the demo model).
FIRST_PIPELINE = "engineering"
SAMPLE_TASK = 'Add a /health endpoint to a small web service that answers {"status": "ok"}, with a test.'


@dataclass(frozen=True)
class StarterReady:
    pipeline: PipelineRecord
    # The roster agents added for it (none when the workspace had them all).
    agents_added: tuple[Agent, ...]
    # False when the workspace already had this pipeline (it is left as it is).
    pipeline_added: bool


def agents_needed(starter_id: str) -> tuple[str, ...]:
    """The agent ids a starter pipeline names (declared or used by a step), in the order written."""
    pipeline = load_starter(starter_id)
    ids = [agent.id for agent in pipeline.agents] + [step.agent for step in pipeline.steps]
    return tuple(dict.fromkeys(agent_id for agent_id in ids if agent_id))


async def ensure_starter(session: AsyncSession, starter_id: str, actor: Actor) -> StarterReady:
    """Add starter ``starter_id`` with the roster agents it needs that the workspace lacks (all or nothing)."""
    if starter_id not in starter_ids():
        raise NotFound("No such starter pipeline.")
    existing = {agent.id for agent in await agents.list_agents(session)}
    missing = [agent_id for agent_id in agents_needed(starter_id) if agent_id not in existing]
    from_roster = [agent_id for agent_id in missing if starter(agent_id) is not None]
    added = await agents.add_from_roster(session, actor, from_roster) if from_roster else []
    known = existing | {agent.id for agent in added}
    record = await session.get(PipelineRecord, starter_id)
    if record is not None:
        return StarterReady(record, tuple(added), pipeline_added=False)
    await pipelines.add_starter(session, starter_id, actor, known)
    return StarterReady(await pipelines.get_pipeline(session, starter_id), tuple(added), pipeline_added=True)
