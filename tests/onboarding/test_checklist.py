"""The dashboard's "next steps" checklist ticks each item once the workspace has done it (seen in a browser: a
workspace with a provider and a whole roster of agents still listed both as "coming soon")."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from app.agents import service as agents
from app.config import Settings
from app.db import Database
from app.llm.catalogue import DEMO_PRESET
from app.llm.models import LlmProvider
from app.onboarding import checklist
from app.tenants.models import Invitation, Workspace
from app.tenants.permissions import permissions_of
from tests.agents.helpers import add_models, workspace_changes
from tests.helpers import log_in, make_workspace, person, workspace_with


async def states(db: Database, workspace: Workspace) -> dict[str, tuple[bool, bool]]:
    """(available, done) of each item, as the owner's dashboard asks."""
    found = await checklist.progress(db, workspace, permissions_of("owner"))
    return {state.item.key: (state.available, state.done) for state in found}


async def test_agents_and_llm_providers_tick_their_items(client: TestClient, db: Database, settings: Settings) -> None:
    workspace, (owner,) = await workspace_with(db, f"steps-{secrets.token_hex(3)}", [])
    log_in(client, owner.email)  # the app is built: every domain's pages have registered their items
    assert client.get(f"/w/{workspace.slug}").status_code == 200
    before = await states(db, workspace)
    assert before["agent"] == (True, False) and before["llm_provider"] == (True, False)
    # The scripted demo model lets people try Marid; it is not the real provider the item asks for.
    async with db.tenant_session(workspace.id) as session:
        session.add(LlmProvider(slug="demo", label="Demo model", kind="openai", preset=DEMO_PRESET))
    assert (await states(db, workspace))["llm_provider"] == (True, False)
    await add_models(db, workspace.id, "openai/gpt-4.1")
    assert (await states(db, workspace))["llm_provider"] == (True, True)
    assert (await states(db, workspace))["agent"] == (True, False)
    async with workspace_changes(db, settings, workspace.id) as session:
        await agents.add_from_roster(session, person(owner), ["architect"])
    assert (await states(db, workspace))["agent"] == (True, True)
    page = client.get(f"/w/{workspace.slug}").text
    for key in ("llm_provider", "agent"):
        item = page.split(f'data-step="{key}"', 1)[1].split("</li>", 1)[0]
        assert "Done" in item and "Coming soon" not in item and "href=" not in item, item


def _invite_done(page: str) -> bool:
    item = page.split('data-step="invite"', 1)[1].split("</li>", 1)[0]
    return "Done" in item


async def test_the_invite_item_reads_the_team_from_the_session_and_agrees_with_its_check(
    client: TestClient, db: Database
) -> None:
    """The dashboard answers "Invite your team" from the memberships loaded with the session (no transaction
    of its own): it must tick exactly when the check itself says so, on the very next request."""
    team, (owner, _viewer) = await workspace_with(db, f"team-{secrets.token_hex(3)}", ["viewer"])
    log_in(client, owner.email)
    assert _invite_done(client.get(f"/w/{team.slug}").text)
    assert (await states(db, team))["invite"] == (True, True)

    alone = await make_workspace(db, owner, f"alone-{secrets.token_hex(3)}")
    assert not _invite_done(client.get(f"/w/{alone.slug}").text)
    assert (await states(db, alone))["invite"] == (True, False)
    async with db.public_session() as session:
        session.add(
            Invitation(
                workspace_id=alone.id,
                email=f"{secrets.token_hex(4)}@example.com",
                role="member",
                token_hash=secrets.token_hex(32),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
    assert _invite_done(client.get(f"/w/{alone.slug}").text)
    assert (await states(db, alone))["invite"] == (True, True)
