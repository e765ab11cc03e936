"""``/workspaces/{slug}/agents``: JSON twins of the agents pages (list, read, create, change, clone, delete), the
starter roster, and the system prompt (an agent's, or a draft's as a preview), calling the same services."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.agents import service
from app.agents.draft import AgentDraft, check_draft
from app.agents.models import Agent
from app.agents.prompt import assemble_system_prompt
from app.agents.pulse import Blackout
from app.agents.roster import starters
from app.agents.schemas import (
    AgentClone,
    AgentCreate,
    AgentDetail,
    AgentFields,
    AgentList,
    AgentOut,
    AgentPatch,
    AgentPreview,
    AgentsAdded,
    BlackoutOut,
    FieldProblem,
    PulseOut,
    RosterAdd,
    StarterList,
    StarterOut,
    SystemPrompt,
)
from app.agents.tools import TOOLS
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import Scope
from app.errors import Invalid
from app.secrets.service import secrets_of_agent
from app.web.state import db_of, workspace_changes

TAGS = ["Agents"]


def pulse_out(agent: Agent) -> PulseOut:
    pulse = agent.pulse
    return PulseOut(
        enabled=pulse.enabled,
        interval_minutes=pulse.interval_minutes,
        offset_minutes=pulse.offset_minutes,
        blackouts=[BlackoutOut(start=b.start, end=b.end, label=b.label) for b in pulse.blackouts],
        max_consecutive_skips=pulse.max_consecutive_skips,
        max_concurrent=pulse.max_concurrent,
        wake_cooldown_seconds=pulse.wake_cooldown_seconds,
        wake_max_per_day=pulse.wake_max_per_day,
        wake_max_per_pair_per_day=pulse.wake_max_per_pair_per_day,
        wake_max_session_minutes_per_day=pulse.wake_max_session_minutes_per_day,
    )


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        role=agent.role,
        emoji=agent.emoji,
        identity=agent.identity,
        personality=agent.personality,
        procedures=agent.procedures,
        decision_framework=agent.decision_framework,
        model=agent.model,
        tools=list(agent.tools),
        pulse=pulse_out(agent),
        template=agent.template,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
        created_by=agent.created_by,
        updated_by=agent.updated_by,
    )


def draft_from_body(body: AgentFields, base: AgentDraft) -> AgentDraft:
    """``base`` with the fields the body sets (``model``: null or empty means the workspace's default)."""
    changes: dict[str, Any] = {}
    for key in ("name", "role", "emoji", "identity", "personality", "procedures", "decision_framework"):
        value = getattr(body, key)
        if value is not None:
            changes[key] = value
    if "model" in body.model_fields_set:
        changes["model"] = body.model or None
    if body.tools is not None:
        changes["tools"] = tuple(body.tools)
    if body.pulse is not None:
        pulse: dict[str, Any] = {
            key: value
            for key, value in body.pulse.model_dump(exclude={"blackouts"}).items()
            if value is not None and key in body.pulse.model_fields_set
        }
        if body.pulse.blackouts is not None:
            pulse["blackouts"] = tuple(Blackout(b.start, b.end, b.label) for b in body.pulse.blackouts)
        changes["pulse"] = base.pulse.with_changes(**pulse)
    return base.with_changes(**changes)


def _api_fields(error: Invalid) -> Invalid:
    """Form field names as the body names them (``pulse_interval_minutes`` → ``pulse.interval_minutes``)."""
    return Invalid({key.replace("pulse_", "pulse.", 1): text for key, text in error.errors.items()})


@api_route(
    "GET", "/workspaces/{slug}/agents", scope=Scope.READ, permission="workspace.view", query=PageQuery,
    response=AgentList, summary="List agents", tags=TAGS,
)  # fmt: skip
async def list_workspace_agents(call: Call) -> BaseModel:
    """The workspace's agents, by name."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        agents = await service.list_agents(session)
    page = paginate(agents, lambda a: (a.name.lower(), a.id), (str, str), call.query)
    return envelope(AgentList, page, agent_out)


@api_route(
    "GET", "/workspaces/{slug}/agents/{agent}", scope=Scope.READ, permission="workspace.view",
    response=AgentDetail, summary="Get an agent", tags=TAGS,
)  # fmt: skip
async def get_workspace_agent(call: Call) -> AgentDetail:
    """An agent, with the names of the secrets granted to it."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        agent = await service.get_agent(session, call.params["agent"])
        secrets = await secrets_of_agent(session, agent.id)
    return AgentDetail(**agent_out(agent).model_dump(), secrets=[secret.name for secret in secrets])


@api_route(
    "GET", "/workspaces/{slug}/agents/{agent}/system-prompt", scope=Scope.READ, permission="workspace.view",
    response=SystemPrompt, summary="Get an agent's system prompt", tags=TAGS,
)  # fmt: skip
async def get_agent_system_prompt(call: Call) -> SystemPrompt:
    """The system prompt assembled from the agent's persona and tools, as a step receives it."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        agent = await service.get_agent(session, call.params["agent"])
    return SystemPrompt(system_prompt=assemble_system_prompt(agent), problems=[])


@api_route(
    "POST", "/workspaces/{slug}/agents", scope=Scope.WRITE, permission="workspace.work", body=AgentCreate,
    response=AgentOut, status=201, summary="Create an agent", tags=TAGS,
)  # fmt: skip
async def create_workspace_agent(call: Call) -> AgentOut:
    """A new agent. Omitted fields get the defaults of a blank agent (file tools without a shell, pulse off)."""
    body: AgentCreate = call.body
    draft = draft_from_body(body, AgentDraft(name=body.name))
    try:
        async with workspace_changes(call.request, call.workspace.workspace.id) as session:
            agent = await service.create_agent(session, call.workspace.actor, body.id, draft)
    except Invalid as invalid:
        raise _api_fields(invalid) from None
    return agent_out(agent)


@api_route(
    "PATCH", "/workspaces/{slug}/agents/{agent}", scope=Scope.WRITE, permission="workspace.work", body=AgentPatch,
    response=AgentOut, summary="Change an agent", tags=TAGS,
)  # fmt: skip
async def update_workspace_agent(call: Call) -> AgentOut:
    """Change any of an agent's fields; its id never changes (clone it for another id)."""
    workspace_id = call.workspace.workspace.id
    try:
        async with workspace_changes(call.request, workspace_id) as session:
            agent = await service.get_agent(session, call.params["agent"])
            draft = draft_from_body(call.body, service.draft_of(agent))
            agent, _ = await service.update_agent(session, call.workspace.actor, agent.id, draft)
    except Invalid as invalid:
        raise _api_fields(invalid) from None
    return agent_out(agent)


@api_route(
    "POST", "/workspaces/{slug}/agents/{agent}/clone", scope=Scope.WRITE, permission="workspace.work",
    body=AgentClone, response=AgentOut, status=201, summary="Clone an agent", tags=TAGS,
)  # fmt: skip
async def clone_workspace_agent(call: Call) -> AgentOut:
    """A copy under a new id, with everything else the same except that its pulse is off."""
    body: AgentClone = call.body
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        agent = await service.clone_agent(session, call.workspace.actor, call.params["agent"], body.id, body.name)
    return agent_out(agent)


@api_route(
    "DELETE", "/workspaces/{slug}/agents/{agent}", scope=Scope.WRITE, permission="workspace.work",
    summary="Delete an agent", tags=TAGS,
)  # fmt: skip
async def delete_workspace_agent(call: Call) -> None:
    """Delete an agent and its secret grants; refused while something still uses it."""
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        await service.delete_agent(session, call.workspace.actor, call.params["agent"])


@api_route(
    "POST", "/workspaces/{slug}/agent-preview", scope=Scope.READ, permission="workspace.work", body=AgentPreview,
    response=SystemPrompt, summary="Preview a system prompt", tags=TAGS,
)  # fmt: skip
async def preview_agent_prompt(call: Call) -> SystemPrompt:
    """The system prompt a draft would get, and why saving it would be refused, if it would; saves nothing."""
    draft = draft_from_body(call.body, AgentDraft(name="", tools=()))
    problems: list[FieldProblem] = []
    try:
        check_draft(draft)
    except Invalid as invalid:
        problems = [FieldProblem(field=key, message=text) for key, text in _api_fields(invalid).errors.items()]
    shown = draft.with_changes(tools=tuple(name for name in draft.tools if name in TOOLS))
    return SystemPrompt(system_prompt=assemble_system_prompt(shown), problems=problems)


def starter_out(agent_id: str) -> StarterOut:
    item = next(item for item in starters() if item.id == agent_id)
    return StarterOut(
        id=item.id, name=item.name, role=item.role, emoji=item.emoji, summary=item.summary, tools=list(item.draft.tools)
    )


@api_route(
    "GET", "/workspaces/{slug}/agent-roster", scope=Scope.READ, permission="workspace.view",
    response=StarterList, summary="List the starter roster", tags=TAGS,
)  # fmt: skip
async def list_starter_roster(call: Call) -> StarterList:
    """The starter agents Marid ships (the ids the starter pipelines name)."""
    return StarterList(data=[starter_out(item.id) for item in starters()])


@api_route(
    "POST", "/workspaces/{slug}/agent-roster", scope=Scope.WRITE, permission="workspace.work", body=RosterAdd,
    response=AgentsAdded, status=201, summary="Add agents from the starter roster", tags=TAGS,
)  # fmt: skip
async def add_starter_agents(call: Call) -> AgentsAdded:
    """Add starters as agents, all or none (one already in the workspace is refused)."""
    body: RosterAdd = call.body
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        added = await service.add_from_roster(session, call.workspace.actor, body.ids)
    return AgentsAdded(data=[agent_out(agent) for agent in added])
