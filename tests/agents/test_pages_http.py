"""The agents pages over HTTP: list, create (blank and from the roster), edit with the live preview, clone,
delete; viewers see but cannot change, members can; bad input is a form error that changes nothing."""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from tests.agents.helpers import TEST_MODELS, add_models, agents_in, audit_of
from tests.helpers import csrf_of, log_in, workspace_with


@dataclass
class Team:
    workspace: Workspace
    owner: User
    member: User
    viewer: User

    @property
    def url(self) -> str:
        return f"/w/{self.workspace.slug}/agents"


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, member, viewer) = await workspace_with(
        db, f"agentpages-{secrets.token_hex(3)}", ["member", "viewer"]
    )
    await add_models(db, workspace.id, *TEST_MODELS)
    return Team(workspace, owner, member, viewer)


def agent_form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "id": "analyst",
        "name": "Ada",
        "role": "Data analyst",
        "emoji": "🧮",
        "model": "openai/gpt-4.1",
        "identity": "You count things.",
        "personality": "Dry and exact.",
        "procedures": "1. Read the data.\n2. Count.",
        "decision_framework": "Prefer more data.",
        "tools_form": "1",
        "tools": ["read", "grep"],
        "pulse_form": "1",
        "pulse_interval_minutes": "30",
        "pulse_offset_minutes": "0",
        "pulse_max_consecutive_skips": "5",
        "pulse_max_concurrent": "2",
        "pulse_blackouts": "23:00-07:00 Night",
        "pulse_wake_cooldown_seconds": "300",
        "pulse_wake_max_per_day": "12",
        "pulse_wake_max_per_pair_per_day": "5",
        "pulse_wake_max_session_minutes_per_day": "120",
    }
    form.update(changes)
    return form


def submit(client: TestClient, page: str, action: str, form: dict[str, str | list[str]], **headers: str) -> object:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **form}, headers=headers or None)


async def test_a_member_creates_edits_clones_and_deletes(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    response = submit(client, f"{team.url}/new", team.url, agent_form())
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    assert response.headers["location"] == f"{team.url}/analyst"  # type: ignore[attr-defined]
    agent = (await agents_in(db, team.workspace.id))["analyst"]
    assert (agent.name, agent.model, agent.tools, agent.created_by) == (
        "Ada",
        "openai/gpt-4.1",
        ["read", "grep"],
        team.member.id,
    )

    listing = client.get(team.url)
    assert listing.status_code == 200 and 'data-agent="analyst"' in listing.text and "Data analyst" in listing.text
    detail = client.get(f"{team.url}/analyst")
    assert detail.status_code == 200
    assert "You count things." in detail.text and "## Working procedures" in detail.text
    assert "Member" in detail.text  # created by

    edit = client.get(f"{team.url}/analyst/edit")
    assert edit.status_code == 200 and "Dry and exact." in edit.text and 'hx-post="' in edit.text
    response = submit(
        client, f"{team.url}/analyst/edit", f"{team.url}/analyst", agent_form(personality="Warm now.", id="ignored")
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    agent = (await agents_in(db, team.workspace.id))["analyst"]
    assert agent.personality == "Warm now." and agent.updated_by == team.member.id

    response = submit(client, f"{team.url}/analyst", f"{team.url}/analyst/clone", {"id": "analyst-2", "name": ""})
    assert response.headers["location"] == f"{team.url}/analyst-2"  # type: ignore[attr-defined]
    response = submit(client, f"{team.url}/analyst", f"{team.url}/analyst/delete", {})
    assert response.headers["location"] == team.url  # type: ignore[attr-defined]
    assert sorted(await agents_in(db, team.workspace.id)) == ["analyst-2"]
    actions = [(action, actor) for action, _, actor in await audit_of(db, team.workspace.id, "agent.")]
    member = str(team.member.id)
    assert actions == [
        ("agent.created", member),
        ("agent.updated", member),
        ("agent.cloned", member),
        ("agent.deleted", member),
    ]


async def test_the_preview_shows_the_prompt_as_typed_and_saves_nothing(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.member.email)
    submit(client, f"{team.url}/new", team.url, agent_form())
    page = f"{team.url}/analyst/edit"
    form = agent_form(personality="A <b>bold</b> new personality.", tools=["read", "bash"])
    response = submit(client, page, f"{team.url}/preview", form, **{"HX-Request": "true"})
    assert response.status_code == 200  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert "<html" not in text and 'id="prompt-text"' in text
    assert "A &lt;b&gt;bold&lt;/b&gt; new personality." in text  # agent text is escaped
    assert "`bash`" in html.unescape(text) and "`grep`" not in html.unescape(text)
    assert "Saving now would be refused" not in text
    # A draft that could not be saved still previews, and says why it would be refused.
    response = submit(client, page, f"{team.url}/preview", agent_form(identity="x" * 8_500, model="nope"))
    text = response.text  # type: ignore[attr-defined]
    assert response.status_code == 200 and "Saving now would be refused" in text  # type: ignore[attr-defined]
    assert "the limit is 8,000" in text and "provider/model" in text
    agent = (await agents_in(db, team.workspace.id))["analyst"]
    assert agent.personality == "Dry and exact." and agent.identity == "You count things."
    assert [a for a, _, _ in await audit_of(db, team.workspace.id, "agent.")] == ["agent.created"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"id": "Bad Id!"}, "id", "lowercase letters"),
        ({"id": "analyst"}, "id", "already has an agent"),
        ({"identity": "i" * 8_001}, "identity", "the limit is 8,000"),
        (
            {"personality": "p" * 12_000, "procedures": "q" * 12_000, "decision_framework": "d" * 9_000},
            "persona",
            "32,000",
        ),
        ({"tools": ["read", "rm-rf"]}, "tools", "Unknown tool: rm-rf"),
        ({"model": "gpt-4"}, "model", "provider/model"),
        ({"pulse_interval_minutes": "0"}, "pulse_interval_minutes", "from 5 to 1440"),
        ({"pulse_blackouts": "bedtime"}, "pulse_blackouts", "23:00-07:00"),
        ({"emoji": "smile"}, "emoji", "one emoji"),
        ({"name": ""}, "name", "required"),
    ],
)
async def test_bad_input_is_a_form_error_that_changes_nothing(
    client: TestClient, db: Database, team: Team, changes: dict[str, str | list[str]], field: str, message: str
) -> None:
    log_in(client, team.member.email)
    submit(client, f"{team.url}/new", team.url, agent_form())
    before = {key: (a.name, a.updated_at) for key, a in (await agents_in(db, team.workspace.id)).items()}
    entries = await audit_of(db, team.workspace.id, "agent.")
    form = agent_form(**{"id": "other", **changes})
    for page, action in ((f"{team.url}/new", team.url), (f"{team.url}/analyst/edit", f"{team.url}/analyst")):
        if action.endswith("/analyst") and field == "id":
            continue  # the edit form has no id
        response = submit(client, page, action, form)
        assert response.status_code == 422, (action, response.status_code)  # type: ignore[attr-defined]
        text = html.unescape(response.text)  # type: ignore[attr-defined]
        assert message in text, (action, field)
        if field != "persona":
            assert f'id="e-{field}"' in text
        assert "Saving now would be refused" not in text
    after = {key: (a.name, a.updated_at) for key, a in (await agents_in(db, team.workspace.id)).items()}
    assert after == before and await audit_of(db, team.workspace.id, "agent.") == entries


async def test_a_too_long_section_is_refused_not_dropped(client: TestClient, db: Database, team: Team) -> None:
    """The form reader drops fields past its limit; a section that long is a clear error, never a blank."""
    log_in(client, team.member.email)
    submit(client, f"{team.url}/new", team.url, agent_form())
    response = submit(client, f"{team.url}/analyst/edit", f"{team.url}/analyst", agent_form(identity="x" * 70_000))
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "far longer than its limit" in response.text  # type: ignore[attr-defined]
    assert (await agents_in(db, team.workspace.id))["analyst"].identity == "You count things."


async def test_viewers_see_agents_but_cannot_change_them(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    submit(client, f"{team.url}/new", team.url, agent_form())
    client.cookies.clear()
    log_in(client, team.viewer.email)
    listing = client.get(team.url)
    assert listing.status_code == 200 and "Ada" in listing.text and "New agent" not in listing.text
    detail = client.get(f"{team.url}/analyst")
    assert detail.status_code == 200 and "You count things." in detail.text
    assert "/clone" not in detail.text and "/delete" not in detail.text and "/edit" not in detail.text
    for path in ("/new", "/analyst/edit", "/roster"):
        assert client.get(team.url + path).status_code == 403
    token = csrf_of(listing.text)
    for path, form in (
        ("", agent_form(id="sneaky")),
        ("/analyst", agent_form(name="Hijacked")),
        ("/analyst/clone", {"id": "copy"}),
        ("/analyst/delete", {}),
        ("/roster", {"roster": "sre"}),
        ("/preview", agent_form()),
    ):
        response = client.post(team.url + path, data={"csrf_token": token, **form})
        assert response.status_code == 403, path
    assert sorted(await agents_in(db, team.workspace.id)) == ["analyst"]
    assert (await agents_in(db, team.workspace.id))["analyst"].name == "Ada"


async def test_add_several_from_the_roster_and_create_one_from_a_starter(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.owner.email)
    page = client.get(f"{team.url}/roster")
    assert page.status_code == 200
    assert page.text.count('name="roster"') == 6 and page.text.count("checked") >= 6
    response = submit(client, f"{team.url}/roster", f"{team.url}/roster", {"roster": ["product-owner", "architect"]})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert sorted(await agents_in(db, team.workspace.id)) == ["architect", "product-owner"]
    page = client.get(f"{team.url}/roster")
    assert page.text.count("already added") == 2
    response = submit(client, f"{team.url}/roster", f"{team.url}/roster", {"roster": ["architect", "sre"]})
    assert response.status_code == 422 and "Already in this workspace: architect" in response.text  # type: ignore[attr-defined]
    response = submit(client, f"{team.url}/roster", f"{team.url}/roster", {"roster": "nobody"})
    assert response.status_code == 422 and "Not in the starter roster" in response.text  # type: ignore[attr-defined]
    assert sorted(await agents_in(db, team.workspace.id)) == ["architect", "product-owner"]

    form = client.get(f"{team.url}/new?template=sre")
    assert form.status_code == 200 and 'value="sre"' in form.text and "Beatriz" in form.text
    assert 'name="template" value="sre"' in form.text
    response = submit(
        client, f"{team.url}/new?template=sre", team.url, agent_form(id="ops", name="Ops", template="sre")
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert (await agents_in(db, team.workspace.id))["ops"].template == "sre"


async def test_pages_answer_htmx_with_their_content_only(client: TestClient, team: Team) -> None:
    log_in(client, team.owner.email)
    submit(client, f"{team.url}/roster", f"{team.url}/roster", {"roster": ["sre"]})
    for path in ("", "/new", "/roster", "/sre", "/sre/edit"):
        full = client.get(team.url + path)
        fragment = client.get(team.url + path, headers={"HX-Request": "true"})
        assert full.status_code == fragment.status_code == 200, path
        assert "<html" in full.text and "<html" not in fragment.text, path
    assert client.get(f"{team.url}/nobody").status_code == 404
    assert client.get(f"{team.url}/nobody/edit").status_code == 404
    assert client.get(f"{team.url}/{'x' * 300}").status_code == 404


async def test_the_sidebar_links_agents_and_secrets(client: TestClient, settings: Settings, team: Team) -> None:
    log_in(client, team.viewer.email)
    page = client.get(f"/w/{team.workspace.slug}")
    assert f'href="/w/{team.workspace.slug}/agents"' in page.text
    assert f'href="/w/{team.workspace.slug}/secrets"' in page.text
