"""Agents: list, read, create (blank, from the starter roster, or as a clone), change, delete.

Every function takes the workspace's tenant session (``app.audit.unit_of_work.workspace_change``) and the
acting :class:`~app.audit.actor.Actor`; each change records its audit entry in that transaction, naming the
agent. Nothing here commits, and a refusal (:class:`~app.errors.Invalid`, :class:`~app.errors.NotFound`)
leaves the workspace as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.draft import SECTION_NAMES, AgentDraft, check_draft, clean_id
from app.agents.model_hook import is_known_model
from app.agents.models import Agent
from app.agents.references import agent_references
from app.agents.roster import Starter, starter
from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound, Refused

MAX_AGENTS = 200
_PROFILE = ("name", "role", "emoji")


class AgentNotFound(NotFound):
    def __init__(self, agent_id: str = "") -> None:
        super().__init__("That agent does not exist." if not agent_id else f"There is no agent “{agent_id}”.")


# --- reading -------------------------------------------------------------------------------------------------


async def list_agents(session: AsyncSession) -> list[Agent]:
    """Every agent of the workspace, by name."""
    return list(await session.scalars(select(Agent).order_by(func.lower(Agent.name), Agent.id)))


async def find_agent(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent | None:
    if not isinstance(agent_id, str) or len(agent_id) > 48:
        return None
    query = select(Agent).where(Agent.id == agent_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    found: Agent | None = await session.scalar(query)
    return found


async def get_agent(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent:
    agent = await find_agent(session, agent_id, for_update=for_update)
    if agent is None:
        raise AgentNotFound(agent_id if len(agent_id) <= 48 else "")
    return agent


def draft_of(agent: Agent) -> AgentDraft:
    """What the agent is, as a draft (the edit form's starting point, a clone's source)."""
    return AgentDraft(
        name=agent.name,
        role=agent.role,
        emoji=agent.emoji,
        identity=agent.identity,
        personality=agent.personality,
        procedures=agent.procedures,
        decision_framework=agent.decision_framework,
        model=agent.model,
        tools=tuple(agent.tools),
        pulse=agent.pulse,
    )


# --- changing ------------------------------------------------------------------------------------------------


async def validate(session: AsyncSession, draft: AgentDraft) -> AgentDraft:
    """The draft cleaned and checked, including that its model is one the workspace knows."""
    clean = check_draft(draft)
    if clean.model is not None and not await is_known_model(session, clean.model):
        raise Invalid(
            f"“{clean.model}” is not a model of this workspace: add its provider first, or choose another.",
            field="model",
        )
    return clean


def _apply(agent: Agent, draft: AgentDraft) -> None:
    for key in (*_PROFILE, *SECTION_NAMES, "model"):
        setattr(agent, key, getattr(draft, key))
    agent.tools = list(draft.tools)
    for column, value in draft.pulse.as_columns().items():
        setattr(agent, column, value)


async def _room_for(session: AsyncSession, count: int) -> None:
    existing = int(await session.scalar(select(func.count()).select_from(Agent)) or 0)
    if existing + count > MAX_AGENTS:
        raise Invalid(f"A workspace has at most {MAX_AGENTS} agents; this one has {existing}. Delete some first.")


async def _insert(
    session: AsyncSession, actor: Actor, agent_id: str, draft: AgentDraft, *, template: str | None = None
) -> Agent:
    if await find_agent(session, agent_id) is not None:
        raise Invalid(f"This workspace already has an agent “{agent_id}”; choose another id.", field="id")
    agent = Agent(id=agent_id, template=template, created_by=actor.user_id, updated_by=actor.user_id)
    _apply(agent, draft)
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError:  # created at the same moment by someone else
        raise Invalid(f"This workspace already has an agent “{agent_id}”; choose another id.", field="id") from None
    await session.refresh(agent, ["created_at", "updated_at"])
    return agent


async def create_agent(
    session: AsyncSession, actor: Actor, agent_id: str, draft: AgentDraft, *, template: str | None = None
) -> Agent:
    """A new agent ``agent_id`` (unique in the workspace) from ``draft``."""
    problems: dict[str, str] = {}
    try:
        agent_id = clean_id(agent_id)
    except Invalid as invalid:
        problems.update(invalid.errors)
    try:
        draft = await validate(session, draft)
    except Invalid as invalid:
        problems.update(invalid.errors)
    if problems:
        raise Invalid(problems)
    await _room_for(session, 1)
    agent = await _insert(session, actor, agent_id, draft, template=template)
    details: dict[str, Any] = {"agent_id": agent.id, "name": agent.name}
    if template:
        details["template"] = template
    await record_in_workspace(session, "agent.created", actor, details)
    return agent


async def add_from_roster(session: AsyncSession, actor: Actor, ids: Sequence[str]) -> list[Agent]:
    """The chosen starters as agents of the workspace, all or none."""
    chosen = list(dict.fromkeys(ids))
    if not chosen:
        raise Invalid("Choose at least one agent to add.", field="roster")
    starters: list[Starter] = []
    unknown = []
    for agent_id in chosen:
        found = starter(agent_id) if isinstance(agent_id, str) else None
        if found is None:
            unknown.append(str(agent_id)[:48])
        else:
            starters.append(found)
    if unknown:
        raise Invalid(f"Not in the starter roster: {', '.join(unknown)}.", field="roster")
    taken = [item.id for item in starters if await find_agent(session, item.id) is not None]
    if taken:
        raise Invalid(f"Already in this workspace: {', '.join(taken)}.", field="roster")
    await _room_for(session, len(starters))
    added = []
    for item in starters:
        draft = await validate(session, item.draft)
        agent = await _insert(session, actor, item.id, draft, template=item.id)
        details = {"agent_id": agent.id, "name": agent.name, "template": item.id}
        await record_in_workspace(session, "agent.created", actor, details)
        added.append(agent)
    return added


def _changed(before: AgentDraft, after: AgentDraft) -> list[str]:
    changed = []
    if any(getattr(before, key) != getattr(after, key) for key in _PROFILE):
        changed.append("profile")
    if any(getattr(before, key) != getattr(after, key) for key in SECTION_NAMES):
        changed.append("persona")
    if before.model != after.model:
        changed.append("model")
    if before.tools != after.tools:
        changed.append("tools")
    if before.pulse != after.pulse:
        changed.append("pulse")
    return changed


async def update_agent(session: AsyncSession, actor: Actor, agent_id: str, draft: AgentDraft) -> tuple[Agent, bool]:
    """Save ``draft`` over the agent; returns it and whether anything changed (nothing is recorded if not)."""
    agent = await get_agent(session, agent_id, for_update=True)
    clean = await validate(session, draft)
    changed = _changed(draft_of(agent), clean)
    if not changed:
        return agent, False
    _apply(agent, clean)
    agent.updated_at = datetime.now(UTC)
    agent.updated_by = actor.user_id
    await session.flush()
    details = {"agent_id": agent.id, "name": agent.name, "changed": ", ".join(changed)}
    await record_in_workspace(session, "agent.updated", actor, details)
    return agent, True


async def clone_agent(session: AsyncSession, actor: Actor, source_id: str, new_id: str, name: str = "") -> Agent:
    """A copy of an agent under a new id (and, if given, a new name); its pulse starts switched off."""
    source = await get_agent(session, source_id)
    draft = draft_of(source)
    draft = draft.with_changes(name=name if name.strip() else f"{source.name} (copy)"[:80])
    draft = draft.with_changes(pulse=draft.pulse.with_changes(enabled=False))
    problems: dict[str, str] = {}
    try:
        new_id = clean_id(new_id)
    except Invalid as invalid:
        problems.update(invalid.errors)
    try:
        draft = await validate(session, draft)
    except Invalid as invalid:
        problems.update(invalid.errors)
    if problems:
        raise Invalid(problems)
    await _room_for(session, 1)
    agent = await _insert(session, actor, new_id, draft, template=source.template)
    details = {"agent_id": agent.id, "name": agent.name, "source_id": source.id, "source": source.name}
    await record_in_workspace(session, "agent.cloned", actor, details)
    return agent


async def delete_agent(session: AsyncSession, actor: Actor, agent_id: str) -> Agent:
    """Delete an agent (its secret grants go with it); refused while something still uses it."""
    agent = await get_agent(session, agent_id, for_update=True)
    uses = await agent_references(session, agent.id)
    if uses:
        raise Refused(f"“{agent.name}” is still used by {', '.join(uses)}; it cannot be deleted until they are done.")
    await session.delete(agent)
    await session.flush()
    await record_in_workspace(session, "agent.deleted", actor, {"agent_id": agent.id, "name": agent.name})
    return agent
