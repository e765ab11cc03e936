"""Single-line fields refuse control characters everywhere they are accepted, with a clear error, changing nothing.

The attack (issue 8, defect 3): a name with CR/LF reached a mail header and stopped the outbox. Each surface
that takes a name (sign-up, workspace creation and renaming, API key names, invitation addresses; on the pages
and in /api/v1) is fed the same poison.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.apikeys.models import ApiKey
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.main import create_app
from app.security.single_line import clean_single_line, control_characters, single_line_problem
from app.tenants.models import Invitation, Workspace
from tests.api.helpers import api_client, error_of, session_cookie
from tests.helpers import STRONG_PASSWORD, count, http_client, log_in, post_form, workspace_with

POISON = [
    "Eve\r\nBcc: everyone@example.com",
    "Eve\nSmith",
    "tab\there",
    "bell\x07",
    "del\x7f",
    "c1\x85next",
    "line\u2028separator",
    "para\u2029graph",
    "invoice\u202etxt.exe",
    "isolate\u2066x\u2069",
]
CONTROL_MESSAGE = "no line breaks, tabs or other control characters"


@pytest.mark.parametrize("value", POISON)
def test_the_validator_refuses_control_characters(value: str) -> None:
    assert control_characters(value)
    assert single_line_problem(value, "The name") is not None
    with pytest.raises(ValueError, match="one line of plain text"):
        clean_single_line(value, "The name", max_length=120)


@pytest.mark.parametrize(
    "value",
    ["Ada Lovelace", "José Ñúñez-O'Brien", "李小龍", "محمد\u200f علي", "👩\u200d💻 Dev team", "Ünïcödé  spaced  "],
)
def test_the_validator_accepts_real_names(value: str) -> None:
    assert single_line_problem(value, "The name") is None
    assert clean_single_line(value, "The name", max_length=120) == " ".join(value.split())


@pytest.fixture
def browser(settings: Settings) -> TestClient:
    with http_client(create_app(settings)) as client:
        yield client  # type: ignore[misc]


async def test_signup_refuses_a_display_name_with_control_characters(browser: TestClient, db: Database) -> None:
    for name in POISON[:3] + POISON[-2:]:
        email = f"poison-{secrets.token_hex(4)}@example.com"
        users, mails = await count(db, User), await count(db, OutboxMessage)
        response = post_form(
            browser, "/signup", "/signup", {"email": email, "password": STRONG_PASSWORD, "display_name": name}
        )
        assert response.status_code == 422, response.text
        assert CONTROL_MESSAGE in response.text
        assert (await count(db, User), await count(db, OutboxMessage)) == (users, mails)


async def test_creating_a_workspace_refuses_a_name_with_control_characters(browser: TestClient, db: Database) -> None:
    _workspace, (owner,) = await workspace_with(db, f"wsname-{secrets.token_hex(3)}", [])
    log_in(browser, owner.email)
    for name in POISON[:3] + POISON[-2:]:
        slug = f"poison-{secrets.token_hex(4)}"
        response = post_form(browser, "/workspaces/new", "/workspaces/new", {"name": name, "slug": slug})
        assert response.status_code == 422, response.text
        assert CONTROL_MESSAGE in response.text
        assert await count(db, Workspace, Workspace.slug == slug) == 0


async def test_renaming_a_workspace_refuses_control_characters_on_the_page_and_in_the_api(
    browser: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner,) = await workspace_with(db, f"rename-{secrets.token_hex(3)}", [])
    log_in(browser, owner.email)
    page = f"/w/{workspace.slug}/settings"
    cookie = await session_cookie(db, settings, owner)
    for name in POISON:
        response = post_form(browser, page, page, {"name": name})
        assert response.status_code == 422, response.text
        assert CONTROL_MESSAGE in response.text
        with api_client(settings, cookie) as api:
            answer = api.patch(f"/api/v1/workspaces/{workspace.slug}", json={"name": name})
        assert answer.status_code == 422, answer.text
        assert CONTROL_MESSAGE in error_of(answer)["message"]
    async with db.public_session() as session:
        assert await session.scalar(select(Workspace.name).where(Workspace.id == workspace.id)) == workspace.name


async def test_api_key_names_refuse_control_characters_on_the_page_and_in_the_api(
    browser: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner,) = await workspace_with(db, f"keyname-{secrets.token_hex(3)}", [])
    log_in(browser, owner.email)
    page = f"/w/{workspace.slug}/api-keys"
    cookie = await session_cookie(db, settings, owner)
    for name in POISON:
        form = {"name": name, "kind": "personal", "scope": "read", "expires": "90"}
        response = post_form(browser, page, page, form)
        assert response.status_code == 422, response.text
        assert CONTROL_MESSAGE in response.text
        with api_client(settings, cookie) as api:
            answer = api.post(f"/api/v1/workspaces/{workspace.slug}/api-keys", json={"name": name})
        assert answer.status_code == 422, answer.text
        assert CONTROL_MESSAGE in error_of(answer)["message"]
    assert await count(db, ApiKey, ApiKey.workspace_id == workspace.id) == 0


async def test_invitations_refuse_addresses_with_control_characters(
    browser: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner,) = await workspace_with(db, f"invite-{secrets.token_hex(3)}", [])
    log_in(browser, owner.email)
    page = f"/w/{workspace.slug}/members"
    cookie = await session_cookie(db, settings, owner)
    for address in ["bell\x07@example.com", "del\x7f@example.com", "rlo\u202e@example.com"]:
        response = post_form(browser, page, page + "/invite", {"emails": address, "role": "member"})
        assert response.status_code == 422, response.text
        with api_client(settings, cookie) as api:
            answer = api.post(f"/api/v1/workspaces/{workspace.slug}/invitations", json={"emails": [address]})
        assert answer.status_code == 422, answer.text
    assert await count(db, Invitation, Invitation.workspace_id == workspace.id) == 0
