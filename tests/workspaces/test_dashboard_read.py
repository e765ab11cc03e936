"""The dashboard reads its feed and its checklist's workspace checks in one statement: both answers must be
the same as asking each on its own, also when the viewer may see no activity at all."""

from __future__ import annotations

import app.routes  # noqa: F401  (every domain's pages register their checklist items when imported)
from app.agents.models import Agent
from app.audit.service import recent_visible
from app.db import Database
from app.onboarding import checklist
from app.tenants.permissions import permissions_of
from app.workspaces.live import feed_and_checks
from tests.helpers import make_user, make_workspace


async def test_one_statement_gives_the_feed_and_the_checks(db: Database) -> None:
    owner = await make_user(db, "reader")
    workspace = await make_workspace(db, owner, "oneread")
    probes = checklist.workspace_probes()
    assert {key for key, _ in probes} >= {"agent", "llm_provider", "pipeline_run"}
    owners = permissions_of("owner")

    async with db.direct(workspace.id) as connection:
        items, answers = await feed_and_checks(connection, owners, probes)
    async with db.tenant_session(workspace.id) as session:
        expected = await recent_visible(session, owners, 20)
    assert [item.audit_id for item in items] == [entry.id for entry in expected]
    assert answers["agent"] is False and answers["pipeline_run"] is False

    # A viewer who may see nothing still gets the checks (the feed's side of the row is empty).
    async with db.direct(workspace.id) as connection:
        items, answers = await feed_and_checks(connection, frozenset(), probes)
    assert items == [] and set(answers) == {key for key, _ in probes}

    async with db.tenant_session(workspace.id) as session:
        session.add(Agent(id="scout", name="Scout"))
    async with db.direct(workspace.id) as connection:
        _, answers = await feed_and_checks(connection, owners, probes)
    assert answers["agent"] is True
