"""Saving pipelines: versions, refusals that change nothing, the starters, audit entries."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from app.audit.actor import Actor
from app.audit.models import AuditEvent
from app.db import Database
from app.pipelines import service
from app.pipelines.models import PipelineRecord, PipelineVersion
from app.pipelines.starters import STARTER_AGENT_IDS, starter_source
from app.workspaces.service import create_workspace

ACTOR = Actor.system("test")


@pytest.fixture
async def workspace_id(db: Database) -> str:
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Pipes", slug=f"pipes-{secrets.token_hex(4)}")
    return workspace.id


async def test_each_save_is_a_version_and_runs_can_pin_one(db: Database, workspace_id: str) -> None:
    source = starter_source("engineering")
    async with db.tenant_session(workspace_id) as session:
        first = await service.save_pipeline(session, yaml=source, actor=ACTOR, known_agents=STARTER_AGENT_IDS)
    edited = source + "\n# a comment: still a new version\n"
    async with db.tenant_session(workspace_id) as session:
        second = await service.save_pipeline(
            session,
            yaml=edited,
            actor=ACTOR,
            known_agents=STARTER_AGENT_IDS,
            editing=first.pipeline_id,
            note="  a  note ",
        )
        versions = await service.list_versions(session, first.pipeline_id)
        current = await service.get_version(session, first.pipeline_id)
        pinned = await service.get_version(session, first.pipeline_id, 1)
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert (first.number, second.number) == (1, 2)
    assert [v.number for v in versions] == [2, 1] and current.yaml == edited and pinned.yaml == source
    assert second.note == "a note"
    assert actions[-2:] == ["pipeline.created", "pipeline.saved"]


async def test_a_pipeline_whose_agents_the_workspace_lacks_is_refused_with_every_problem(
    db: Database, workspace_id: str
) -> None:
    with pytest.raises(service.PipelineRefused) as refused:
        async with db.tenant_session(workspace_id) as session:
            await service.save_pipeline(session, yaml=starter_source("engineering"), actor=ACTOR, known_agents=[])
    codes = {p.code for p in refused.value.problems}
    assert len([p for p in refused.value.problems if p.line > 0]) >= 2
    assert codes, refused.value.problems
    async with db.tenant_session(workspace_id) as session:
        assert list(await session.scalars(select(PipelineRecord))) == []
        assert list(await session.scalars(select(PipelineVersion))) == []


async def test_malformed_yaml_and_a_changed_id_change_nothing(db: Database, workspace_id: str) -> None:
    with pytest.raises(service.PipelineRefused):
        async with db.tenant_session(workspace_id) as session:
            await service.save_pipeline(session, yaml="id: [unclosed", actor=ACTOR, known_agents=STARTER_AGENT_IDS)
    async with db.tenant_session(workspace_id) as session:
        await service.add_starter(session, "bugfix", ACTOR, STARTER_AGENT_IDS)
    with pytest.raises(service.Invalid, match="cannot change"):
        async with db.tenant_session(workspace_id) as session:
            await service.save_pipeline(
                session, yaml=starter_source("feature"), actor=ACTOR, known_agents=STARTER_AGENT_IDS, editing="bugfix"
            )
    async with db.tenant_session(workspace_id) as session:
        assert [p.id for p in await service.list_pipelines(session)] == ["bugfix"]
        deleted = await service.delete_pipeline(session, "bugfix", ACTOR)
        assert deleted.id == "bugfix"
    async with db.tenant_session(workspace_id) as session:
        assert await service.list_pipelines(session) == []
        with pytest.raises(service.NotFound):
            await service.get_version(session, "bugfix")
