"""The agents service against a real workspace schema: create, roster, change, clone, delete; each change
audited with the person as actor; every refusal leaves the workspace as it was."""

from __future__ import annotations

import secrets

import pytest

from app.agents import service
from app.agents.draft import AgentDraft
from app.agents.pulse import PulseSettings
from app.agents.roster import starter
from app.audit.actor import Actor
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.errors import Invalid, NotFound, Refused
from app.tenants.models import Workspace
from tests.agents.helpers import TEST_MODELS, add_models, agents_in, audit_of, workspace_changes
from tests.helpers import person, workspace_with


@pytest.fixture
async def team(db: Database) -> tuple[Workspace, User]:
    workspace, (owner,) = await workspace_with(db, f"agents-{secrets.token_hex(3)}", [])
    await add_models(db, workspace.id, *TEST_MODELS)
    return workspace, owner


DRAFT = AgentDraft(
    name="Ada",
    role="Analyst",
    emoji="🧮",
    identity="Counts things.",
    personality="Dry.",
    procedures="1. Count.",
    decision_framework="More data.",
    model="openai/gpt-4.1",
    tools=("read", "grep"),
)


async def create(
    db: Database,
    settings: Settings,
    workspace: Workspace,
    actor: Actor,
    agent_id: str = "ada",
    draft: AgentDraft = DRAFT,
) -> None:
    async with workspace_changes(db, settings, workspace.id) as session:
        await service.create_agent(session, actor, agent_id, draft)


async def test_create_read_and_audit(db: Database, settings: Settings, team: tuple[Workspace, User]) -> None:
    workspace, owner = team
    await create(db, settings, workspace, person(owner))
    agent = (await agents_in(db, workspace.id))["ada"]
    assert (agent.name, agent.role, agent.emoji, agent.model, agent.tools) == (
        "Ada",
        "Analyst",
        "🧮",
        "openai/gpt-4.1",
        ["read", "grep"],
    )
    assert agent.pulse == PulseSettings()
    assert (agent.created_by, agent.updated_by, agent.template) == (owner.id, owner.id, None)
    assert await audit_of(db, workspace.id, "agent.") == [
        ("agent.created", {"agent_id": "ada", "name": "Ada"}, str(owner.id))
    ]


async def test_bad_input_changes_nothing(db: Database, settings: Settings, team: tuple[Workspace, User]) -> None:
    workspace, owner = team
    await create(db, settings, workspace, person(owner))
    cases = [
        ("ada", DRAFT, {"id"}),  # duplicate
        ("Bad Id", DRAFT, {"id"}),
        ("other", DRAFT.with_changes(identity="x" * 9_000), {"identity"}),
        (
            "other",
            DRAFT.with_changes(personality="p" * 12_000, procedures="q" * 12_000, decision_framework="d" * 9_000),
            {"persona"},
        ),
        ("other", DRAFT.with_changes(tools=("read", "telnet")), {"tools"}),
        ("other", DRAFT.with_changes(model="gpt-4"), {"model"}),
        # Well formed, but no provider of this workspace serves it: the agent could never run.
        ("other", DRAFT.with_changes(model="openai/gpt-9-unreleased"), {"model"}),
        ("other", DRAFT.with_changes(model="mistral/large"), {"model"}),
        ("x y", DRAFT.with_changes(name=""), {"id", "name"}),
    ]
    for agent_id, draft, fields in cases:
        with pytest.raises(Invalid) as refused:
            await create(db, settings, workspace, person(owner), agent_id, draft)
        assert set(refused.value.errors) == fields, (agent_id, refused.value.errors)
    assert list(await agents_in(db, workspace.id)) == ["ada"]
    assert [action for action, _, _ in await audit_of(db, workspace.id, "agent.")] == ["agent.created"]


async def test_update_records_what_changed(db: Database, settings: Settings, team: tuple[Workspace, User]) -> None:
    workspace, owner = team
    await create(db, settings, workspace, person(owner))
    before = (await agents_in(db, workspace.id))["ada"]
    async with workspace_changes(db, settings, workspace.id) as session:
        _, changed = await service.update_agent(session, person(owner), "ada", DRAFT)
    assert changed is False
    new = DRAFT.with_changes(
        personality="Warm.", tools=("read", "grep", "bash"), pulse=PulseSettings(enabled=True, interval_minutes=60)
    )
    async with workspace_changes(db, settings, workspace.id) as session:
        _, changed = await service.update_agent(session, person(owner), "ada", new)
    assert changed is True
    after = (await agents_in(db, workspace.id))["ada"]
    assert (after.personality, after.tools, after.pulse.enabled, after.pulse.interval_minutes) == (
        "Warm.",
        ["read", "bash", "grep"],
        True,
        60,
    )
    assert after.updated_at > before.updated_at and after.created_at == before.created_at
    entries = await audit_of(db, workspace.id, "agent.updated")
    assert entries == [
        ("agent.updated", {"agent_id": "ada", "name": "Ada", "changed": "persona, tools, pulse"}, str(owner.id))
    ]
    with pytest.raises(Invalid):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.update_agent(session, person(owner), "ada", new.with_changes(identity="i" * 8_001))
    assert (await agents_in(db, workspace.id))["ada"].identity == "Counts things."
    with pytest.raises(NotFound):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.update_agent(session, person(owner), "nobody", DRAFT)


async def test_clone_copies_everything_but_the_id_and_switches_the_pulse_off(
    db: Database, settings: Settings, team: tuple[Workspace, User]
) -> None:
    workspace, owner = team
    await create(db, settings, workspace, person(owner), draft=DRAFT.with_changes(pulse=PulseSettings(enabled=True)))
    async with workspace_changes(db, settings, workspace.id) as session:
        copy = await service.clone_agent(session, person(owner), "ada", "ada-2")
    assert copy.name == "Ada (copy)" and copy.pulse.enabled is False
    source = (await agents_in(db, workspace.id))["ada"]
    for key in ("role", "emoji", "identity", "personality", "procedures", "decision_framework", "model", "tools"):
        assert getattr(copy, key) == getattr(source, key), key
    async with workspace_changes(db, settings, workspace.id) as session:
        named = await service.clone_agent(session, person(owner), "ada", "ada-3", "Ada Three")
    assert named.name == "Ada Three"
    for new_id in ("ada", "ada-2", "Not Ok"):
        with pytest.raises(Invalid):
            async with workspace_changes(db, settings, workspace.id) as session:
                await service.clone_agent(session, person(owner), "ada", new_id)
    assert sorted(await agents_in(db, workspace.id)) == ["ada", "ada-2", "ada-3"]
    entries = await audit_of(db, workspace.id, "agent.cloned")
    assert [details for _, details, _ in entries] == [
        {"agent_id": "ada-2", "name": "Ada (copy)", "source_id": "ada", "source": "Ada"},
        {"agent_id": "ada-3", "name": "Ada Three", "source_id": "ada", "source": "Ada"},
    ]


async def test_delete(db: Database, settings: Settings, team: tuple[Workspace, User]) -> None:
    workspace, owner = team
    await create(db, settings, workspace, person(owner))
    async with workspace_changes(db, settings, workspace.id) as session:
        await service.delete_agent(session, person(owner), "ada")
    assert await agents_in(db, workspace.id) == {}
    assert (await audit_of(db, workspace.id, "agent.deleted"))[0][:2] == (
        "agent.deleted",
        {"agent_id": "ada", "name": "Ada"},
    )
    with pytest.raises(NotFound):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.delete_agent(session, person(owner), "ada")


async def test_delete_is_refused_while_something_uses_the_agent(
    db: Database, settings: Settings, team: tuple[Workspace, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook later domains fill in (app/agents/references.py) stops a delete with its reason."""
    workspace, owner = team
    await create(db, settings, workspace, person(owner))

    async def in_use(session: object, agent_id: str) -> list[str]:
        return ["1 running pipeline run"]

    monkeypatch.setattr(service, "agent_references", in_use)
    with pytest.raises(Refused, match="still used by 1 running pipeline run"):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.delete_agent(session, person(owner), "ada")
    assert "ada" in await agents_in(db, workspace.id)


async def test_the_roster_is_added_all_or_none(db: Database, settings: Settings, team: tuple[Workspace, User]) -> None:
    workspace, owner = team
    async with workspace_changes(db, settings, workspace.id) as session:
        added = await service.add_from_roster(session, person(owner), ["architect", "sre", "architect"])
    assert [agent.id for agent in added] == ["architect", "sre"]
    architect = (await agents_in(db, workspace.id))["architect"]
    template = starter("architect")
    assert template is not None
    assert (architect.name, architect.identity, architect.template) == (
        template.name,
        template.draft.identity,
        "architect",
    )
    for ids, message in (
        (["sre", "ux-designer"], "Already in this workspace: sre"),
        (["ux-designer", "janitor"], "Not in the starter roster: janitor"),
        ([], "at least one"),
    ):
        with pytest.raises(Invalid, match=message):
            async with workspace_changes(db, settings, workspace.id) as session:
                await service.add_from_roster(session, person(owner), ids)
    assert sorted(await agents_in(db, workspace.id)) == ["architect", "sre"]
    entries = await audit_of(db, workspace.id, "agent.created")
    assert [details for _, details, _ in entries] == [
        {"agent_id": "architect", "name": template.name, "template": "architect"},
        {"agent_id": "sre", "name": "Beatriz", "template": "sre"},
    ]


async def test_a_workspace_holds_a_bounded_number_of_agents(
    db: Database, settings: Settings, team: tuple[Workspace, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, owner = team
    monkeypatch.setattr(service, "MAX_AGENTS", 2)
    await create(db, settings, workspace, person(owner), "a1")
    with pytest.raises(Invalid, match="at most 2 agents"):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.add_from_roster(session, person(owner), ["sre", "architect"])
    await create(db, settings, workspace, person(owner), "a2")
    with pytest.raises(Invalid, match="at most 2 agents"):
        await create(db, settings, workspace, person(owner), "a3")
    assert sorted(await agents_in(db, workspace.id)) == ["a1", "a2"]


async def test_the_model_hook_can_refuse_a_model(
    db: Database, settings: Settings, team: tuple[Workspace, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the gateway will plug in (app/agents/model_hook.py): an unknown model is a field error."""
    workspace, owner = team

    async def only_demo(session: object, model: str) -> bool:
        return model == "demo/demo"

    monkeypatch.setattr(service, "is_known_model", only_demo)
    with pytest.raises(Invalid) as refused:
        await create(db, settings, workspace, person(owner))
    assert "not a model of this workspace" in refused.value.errors["model"]
    await create(db, settings, workspace, person(owner), draft=DRAFT.with_changes(model="demo/demo"))
    await create(db, settings, workspace, person(owner), "ada-default", draft=DRAFT.with_changes(model=None))
    assert sorted(await agents_in(db, workspace.id)) == ["ada", "ada-default"]
