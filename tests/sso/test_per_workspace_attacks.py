"""Issue 8, defect 2, from the attacker's side: the admin of workspace E turns on "Require single sign-on" to
lock its members out of every other workspace they belong to.

Enforcement binds E's pages only: members keep their password sessions and password sign-in for everything
else, and entering E asks for E's single sign-on, bound to the session they already have.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.auth.models import User, UserSession
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from tests.helpers import http_client, log_in, post_form, sign_in
from tests.sso.conftest import CLIENT_ID, StartProvider
from tests.sso.flow import sso
from tests.sso.helpers import add_member, configure, count, make_user, make_workspace

pytestmark = pytest.mark.timeout(60)


async def _member_of_both(db: Database) -> tuple[User, User, Workspace, Workspace]:
    """A person who is a member of E (run by the attacker) and of their own team's workspace."""
    person = await make_user(db, "person")
    attacker = await make_user(db, "attacker")
    evil = await make_workspace(db, attacker, "evil")
    await add_member(db, evil, person, "member")
    boss = await make_user(db, "boss")
    theirs = await make_workspace(db, boss, "theirs")
    await add_member(db, theirs, person, "member")
    return person, attacker, evil, theirs


async def test_requiring_sso_in_one_workspace_leaves_password_sign_in_for_the_others(
    client: TestClient, db: Database, settings: Settings
) -> None:
    person, _, evil, theirs = await _member_of_both(db)
    await configure(db, settings, evil, "https://login.example.com", "", enforce_sso="on")

    assert sign_in(client, person.email).status_code == 303
    assert client.get(f"/w/{theirs.slug}").status_code == 200
    entering = client.get(f"/w/{evil.slug}/members")
    assert entering.status_code == 303
    assert entering.headers["location"].startswith(f"/sso?workspace={evil.slug}&next=")


async def test_turning_on_require_sso_keeps_members_password_sessions_for_other_workspaces(
    settings: Settings, db: Database, client: TestClient
) -> None:
    person, attacker, evil, theirs = await _member_of_both(db)
    await configure(db, settings, evil, "https://login.example.com", "")
    log_in(client, person.email)
    assert client.get(f"/w/{theirs.slug}").status_code == 200

    from app.main import create_app

    with http_client(create_app(settings)) as admin:
        log_in(admin, attacker.email)
        page = f"/w/{evil.slug}/settings/sso"
        fields = {"issuer": "https://login.example.com", "client_id": CLIENT_ID, "default_role": "member"}
        saved = post_form(admin, page, page, {**fields, "enabled": "on", "enforce_sso": "on"})
        assert saved.status_code == 303, saved.text

    assert await count(db, UserSession, UserSession.user_id == person.id) == 1
    assert client.get(f"/w/{theirs.slug}").status_code == 200
    assert client.get(f"/w/{evil.slug}").headers["location"].startswith(f"/sso?workspace={evil.slug}")


async def test_the_sso_step_up_lets_the_member_in_with_the_same_session(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    person, _, evil, theirs = await _member_of_both(db)
    issuer = providers(settings.base_url + "/sso/callback", "elsewhere.test")
    await configure(db, settings, evil, issuer, "", enforce_sso="on")
    log_in(client, person.email)
    cookie = client.cookies.get(settings.session_cookie)

    sent = client.get(f"/w/{evil.slug}/members")
    assert sent.status_code == 303
    step_up_page = sent.headers["location"]
    assert "requires single sign-on" in client.get(step_up_page).text
    # Their address is not in a domain E proved, so this is an explicit link by the signed-in owner.
    back = sso(client, evil.slug, "person-at-e", page=step_up_page, next=f"/w/{evil.slug}/members")

    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"/w/{evil.slug}/members"
    assert client.cookies.get(settings.session_cookie) == cookie  # the same session, stepped up
    assert client.get(f"/w/{evil.slug}/members").status_code == 200
    assert client.get(f"/w/{theirs.slug}").status_code == 200
    assert await count(db, UserSession, UserSession.user_id == person.id) == 1


async def test_the_owner_keeps_password_access_to_their_sso_workspace(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _, attacker, evil, _ = await _member_of_both(db)
    await configure(db, settings, evil, "https://login.example.com", "", enforce_sso="on")
    log_in(client, attacker.email)
    assert client.get(f"/w/{evil.slug}").status_code == 200


async def test_the_identity_a_member_linked_to_step_up_does_not_let_the_provider_into_their_account(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    # E's admin runs the provider, so they can sign in as the identity the member had to link to enter E.
    person, _, evil, theirs = await _member_of_both(db)
    issuer = providers(settings.base_url + "/sso/callback", "elsewhere.test")
    await configure(db, settings, evil, issuer, "", enforce_sso="on")
    log_in(client, person.email)
    assert sso(client, evil.slug, "person-at-e").status_code == 303

    from app.main import create_app

    with http_client(create_app(settings)) as attacker:
        answer = sso(attacker, evil.slug, "person-at-e")
        assert answer.status_code == 403, answer.text
        assert "Sign in to your Marid account first" in answer.text
        assert settings.session_cookie not in attacker.cookies
        assert attacker.get(f"/w/{theirs.slug}").headers["location"].startswith("/login")
    assert await count(db, UserSession, UserSession.user_id == person.id) == 1
