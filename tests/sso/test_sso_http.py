"""SSO over HTTP: the settings page (validation, the encrypted secret, Test connection), /sso and its callback,
and "Require single sign-on" (a step-up into that workspace) and managed accounts against password sign-in."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text
from starlette.testclient import TestClient

from app.auth.models import UserSession
from app.config import Settings
from app.db import Database
from app.embedded.util import free_port
from app.main import create_app
from app.security.crypto import DecryptionError
from app.security.secrets import SecretsService
from app.sso.models import SsoConnection
from app.sso.pages import NOT_FOUND
from app.sso.service import SECRET_PURPOSE
from app.tenants.models import Workspace
from tests.dns_server import TestDns
from tests.helpers import http_client, post
from tests.helpers import sign_in as log_in  # the answer, not an assertion: some sign-ins here are refused
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, StartProvider
from tests.sso.helpers import add_member, audit_actions, configure, count, make_user, make_workspace, unique_domain

pytestmark = pytest.mark.timeout(60)


def other_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


async def row_of(db: Database, workspace: Workspace) -> dict[str, object] | None:
    async with db.public_session() as session:
        row = await session.get(SsoConnection, workspace.id)
        if row is None:
            return None
        return {column.name: getattr(row, column.key) for column in SsoConnection.__table__.columns}


async def owned_workspace(db: Database, label: str = "sso") -> tuple[str, Workspace]:
    owner = await make_user(db, "owner")
    return owner.email, await make_workspace(db, owner, label)


GOOD = {
    "issuer": "https://login.example.com",
    "client_id": CLIENT_ID,
    "client_secret": "",
    "default_role": "member",
    "enabled": "on",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": ""}, "Enter the provider&#39;s issuer URL"),
        ({"issuer": "ftp://login.example.com"}, "must be an absolute https:// URL"),
        ({"issuer": "login.example.com"}, "must be an absolute https:// URL"),
        ({"issuer": "https://login.example.com/?tenant=1"}, "must not have a query or a fragment"),
        ({"issuer": "https://login.example.com/#x"}, "must not have a query or a fragment"),
        ({"issuer": "http://login.example.com"}, "must use https://"),
        ({"client_id": ""}, "Enter the client ID"),
        ({"client_id": "x" * 256}, "Enter the client ID"),
        ({"default_role": "owner"}, "Choose admin, member or viewer"),
        ({"enabled": "", "enforce_sso": "on"}, "Turn single sign-on on before requiring it"),
        ({"managed_accounts": "on"}, "Require single sign-on before making members"),
        ({"enforce_sso": "on", "managed_accounts": "on"}, "then confirm that their accounts become managed"),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(
    client: TestClient, db: Database, settings: Settings, changes: dict[str, str], message: str
) -> None:
    email, workspace = await owned_workspace(db)
    await configure(db, settings, workspace, "https://login.example.com", "example.com")
    before = await row_of(db, workspace)
    log_in(client, email)
    page = f"/w/{workspace.slug}/settings/sso"
    posted_secret = f"posted-secret-{secrets.token_hex(6)}"
    response = post(client, page, page, {**GOOD, "client_secret": posted_secret, **changes})
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in response.text  # type: ignore[attr-defined]
    assert posted_secret not in response.text  # type: ignore[attr-defined]
    assert await row_of(db, workspace) == before
    assert "sso.configured" not in [action for action, _ in await audit_actions(db, workspace)][-1:]


async def test_the_first_configuration_needs_a_secret(client: TestClient, db: Database) -> None:
    email, workspace = await owned_workspace(db)
    log_in(client, email)
    page = f"/w/{workspace.slug}/settings/sso"
    response = post(client, page, page, GOOD)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Enter the client secret" in response.text  # type: ignore[attr-defined]
    assert await row_of(db, workspace) is None


async def test_the_client_secret_is_stored_encrypted_and_never_shown(
    client: TestClient, db: Database, secrets_service: SecretsService
) -> None:
    email, workspace = await owned_workspace(db)
    log_in(client, email)
    page = f"/w/{workspace.slug}/settings/sso"
    secret = f"s3cret-{secrets.token_hex(12)}"
    saved = post(client, page, page, {**GOOD, "client_secret": secret})
    assert saved.status_code == 303  # type: ignore[attr-defined]

    async with db.public_session() as session:
        raw = (await session.execute(text("SELECT * FROM public.sso_connections WHERE workspace_id = :id"),
                                     {"id": workspace.id})).one()  # fmt: skip
    assert secret not in str(tuple(raw))
    row = await row_of(db, workspace)
    assert row is not None
    ciphertext = str(row["client_secret_enc"])
    opened = await secrets_service.open(None, workspace.id, SECRET_PURPOSE, workspace.id, ciphertext)
    assert opened == secret
    with pytest.raises(DecryptionError):  # bound to this workspace
        await secrets_service.open(None, workspace.id, SECRET_PURPOSE, "someotherid", ciphertext)

    html = client.get(page).text
    assert secret not in html and ciphertext not in html
    assert "A secret is saved (encrypted)" in html

    # Saving with the field left empty keeps the secret.
    again = post(client, page, page, {**GOOD, "default_role": "viewer"})
    assert again.status_code == 303  # type: ignore[attr-defined]
    row = await row_of(db, workspace)
    assert row is not None and row["client_secret_enc"] == ciphertext
    assert row["default_role"] == "viewer"

    events = await audit_actions(db, workspace)
    assert [action for action, _ in events].count("sso.configured") == 2
    assert secret not in str(events)


async def test_only_owners_and_admins_manage_sso(client: TestClient, db: Database) -> None:
    email, workspace = await owned_workspace(db)
    member = await make_user(db, "member")
    admin = await make_user(db, "admin")
    await add_member(db, workspace, member, "member")
    await add_member(db, workspace, admin, "admin")
    page = f"/w/{workspace.slug}/settings/sso"
    log_in(client, member.email)
    assert client.get(page).status_code == 403
    csrf = client.cookies.get("marid_csrf") or ""
    assert client.post(page, data={**GOOD, "csrf_token": csrf}).status_code == 403
    client.cookies.clear()
    log_in(client, admin.email)
    assert client.get(page).status_code == 200


async def test_required_sso_sends_members_to_its_sso_and_lets_the_owner_in(
    client: TestClient, db: Database, settings: Settings
) -> None:
    owner_email, workspace = await owned_workspace(db, "enforced")
    member = await make_user(db, "member")
    admin = await make_user(db, "admin")
    await add_member(db, workspace, member, "member")
    await add_member(db, workspace, admin, "admin")
    await configure(db, settings, workspace, "https://login.example.com", "", enforce_sso="on")

    for user in (member, admin):
        client.cookies.clear()
        assert log_in(client, user.email).status_code == 303  # type: ignore[attr-defined]
        sent = client.get(f"/w/{workspace.slug}/members")
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/sso?workspace={workspace.slug}&next=%2Fw%2F{workspace.slug}%2Fmembers"
        step_up = client.get(sent.headers["location"]).text
        assert f"“{workspace.name}” requires single sign-on" in step_up
        assert f'name="next" value="/w/{workspace.slug}/members"' in step_up
        # htmx requests get the same detour as a full-page redirect.
        fragment = client.get(f"/w/{workspace.slug}/members", headers={"HX-Request": "true"})
        assert fragment.status_code == 204 and fragment.headers["hx-redirect"].startswith("/sso?workspace=")

    # Break-glass: the owner still opens it with a password, and can turn the requirement off.
    client.cookies.clear()
    assert log_in(client, owner_email).status_code == 303  # type: ignore[attr-defined]
    assert client.get(f"/w/{workspace.slug}").status_code == 200
    page = f"/w/{workspace.slug}/settings/sso"
    assert post(client, page, page, GOOD).status_code == 303  # type: ignore[attr-defined]
    events = await audit_actions(db, workspace)
    assert ("sso.enforced_changed", {"enforce_sso": False, "managed_accounts": False}) in events
    client.cookies.clear()
    log_in(client, member.email)
    assert client.get(f"/w/{workspace.slug}").status_code == 200


async def test_the_step_up_page_says_nothing_about_workspaces_one_is_not_in(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _, workspace = await owned_workspace(db, "secret")
    await configure(db, settings, workspace, "https://login.example.com", "", enforce_sso="on")
    stranger = await make_user(db, "stranger")
    log_in(client, stranger.email)
    page = client.get(f"/sso?workspace={workspace.slug}&next=/w/{workspace.slug}").text
    assert workspace.name not in page and "requires single sign-on" not in page


async def test_sso_start_is_neutral_about_unknown_addresses_and_workspaces(
    client: TestClient, db: Database, settings: Settings, dns: TestDns, providers: StartProvider
) -> None:
    _, without_sso = await owned_workspace(db, "plain")
    _, disabled = await owned_workspace(db, "disabled")
    domain = f"off-{secrets.token_hex(4)}.test"
    await configure(db, settings, disabled, "https://login.example.com", domain, enabled="")
    for identifier in (
        f"nobody@nowhere-{secrets.token_hex(4)}.test",
        f"no-such-workspace-{secrets.token_hex(4)}",
        without_sso.slug,
        disabled.slug,
        f"someone@{domain}",
    ):
        response = post(client, "/sso", "/sso", {"identifier": identifier})
        assert response.status_code == 422, identifier  # type: ignore[attr-defined]
        assert NOT_FOUND in response.text  # type: ignore[attr-defined]

    # Two workspaces list one domain and only the second proved it: its people go to the second one.
    shared = f"shared-{secrets.token_hex(4)}.test"
    _, first = await owned_workspace(db, "first")
    await configure(db, settings, first, "https://login.example.com", shared)
    assert NOT_FOUND in post(client, "/sso", "/sso", {"identifier": f"ada@{shared}"}).text  # type: ignore[attr-defined]
    _, second = await owned_workspace(db, "second")
    issuer = providers(settings.base_url + "/sso/callback")
    await configure(db, settings, second, issuer, shared, dns=dns)
    response = post(client, "/sso", "/sso", {"identifier": f"ada@{shared}"})
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.headers["refresh"].startswith(f"0;url={issuer}/auth?")  # type: ignore[attr-defined]


async def test_the_callback_needs_the_browser_that_started_and_works_once(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    issuer = providers(settings.base_url + "/sso/callback")
    _, workspace = await owned_workspace(db, "callback")
    await configure(db, settings, workspace, issuer, "example.test")

    started = post(client, "/sso", "/sso", {"identifier": workspace.slug})
    assert started.status_code == 200  # type: ignore[attr-defined]
    refresh = started.headers["refresh"]  # type: ignore[attr-defined]
    assert refresh.startswith(f"0;url={issuer}/auth?")
    query = parse_qs(urlsplit(refresh.split("url=", 1)[1]).query)
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [settings.base_url + "/sso/callback"]
    assert "openid" in query["scope"][0].split()
    state, nonce = query["state"][0], query["nonce"][0]
    assert len(state) >= 43 and len(nonce) >= 43
    assert CLIENT_SECRET not in started.text  # type: ignore[attr-defined]

    # Another browser (no state cookie) cannot finish it: no login CSRF.
    with other_client(settings) as stranger:
        refused = stranger.get("/sso/callback", params={"state": state, "code": "x", "iss": issuer})
        assert refused.status_code == 400 and "Start again" in refused.text

    # A provider error is shown, audited, and uses the sign-in up.
    denied = client.get("/sso/callback", params={"state": state, "error": "access_denied", "iss": issuer})
    assert denied.status_code == 401 and "access_denied" in denied.text
    failures = [d for action, d in await audit_actions(db, workspace) if action == "sso.login_failed"]
    assert [d["reason"] for d in failures] == ["provider_error"]
    replay = client.get("/sso/callback", params={"state": state, "code": "x", "iss": issuer})
    assert replay.status_code == 400


async def test_a_response_from_another_provider_is_refused(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    issuer = providers(settings.base_url + "/sso/callback")
    _, workspace = await owned_workspace(db, "mixup")
    await configure(db, settings, workspace, issuer, "example.test")
    started = post(client, "/sso", "/sso", {"identifier": workspace.slug})
    state = parse_qs(urlsplit(started.headers["refresh"].split("url=", 1)[1]).query)["state"][0]  # type: ignore[attr-defined]
    mixed = client.get("/sso/callback", params={"state": state, "code": "x", "iss": "https://evil.example"})
    assert mixed.status_code == 401 and "did not come from this workspace" in mixed.text
    failures = [d for action, d in await audit_actions(db, workspace) if action == "sso.login_failed"]
    assert [d["reason"] for d in failures] == ["issuer_mismatch"]


async def test_test_connection_reports_failures_inline(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    email, workspace = await owned_workspace(db, "tested")
    nothing_there = f"http://127.0.0.1:{free_port()}"
    await configure(db, settings, workspace, nothing_there, "example.com")
    log_in(client, email)
    page = f"/w/{workspace.slug}/settings/sso"
    action = page + "/test"

    fragment = post(client, page, action, {"issuer": nothing_there}, **{"HX-Request": "true"})
    assert fragment.status_code == 200  # type: ignore[attr-defined]
    assert fragment.text.lstrip().startswith('<div id="sso-test-result"')  # type: ignore[attr-defined]
    assert "Connection failed." in fragment.text and "Could not reach" in fragment.text  # type: ignore[attr-defined]
    row = await row_of(db, workspace)
    assert row is not None and row["last_test_ok"] is False and row["last_tested_at"] is not None

    # The issuer must be exactly what the provider calls itself (here: no trailing slash).
    issuer = providers(settings.base_url + "/sso/callback")
    fragment = post(client, page, action, {"issuer": issuer + "/"}, **{"HX-Request": "true"})
    assert "Connection failed." in fragment.text and f"calls itself “{issuer}”" in fragment.text  # type: ignore[attr-defined]

    # Without htmx the whole page comes back, with the result in it.
    full = post(client, page, action, {"issuer": issuer})
    assert full.status_code == 200 and "<h1>Single sign-on</h1>" in full.text  # type: ignore[attr-defined]
    assert "Connection works." in full.text  # type: ignore[attr-defined]
    tested = [d for a, d in await audit_actions(db, workspace) if a == "sso.tested"]
    assert [d["ok"] for d in tested] == [False, False, True]


async def test_sso_settings_page_renders_for_a_new_workspace(client: TestClient, db: Database) -> None:
    email, workspace = await owned_workspace(db)
    log_in(client, email)
    html = client.get(f"/w/{workspace.slug}/settings/sso").text
    assert "Not set up" in html
    assert 'id="sso-callback-url"' in html
    # The login page offers SSO.
    client.cookies.clear()
    assert 'href="/sso"' in client.get("/login").text
    async with db.public_session() as session:
        assert await session.scalar(select(SsoConnection).where(SsoConnection.workspace_id == workspace.id)) is None


async def test_managed_accounts_end_only_managed_members_password_sessions(
    settings: Settings, db: Database, dns: TestDns
) -> None:
    domain = unique_domain()
    owner = await make_user(db, "owner", email=f"owner-{secrets.token_hex(3)}@{domain}")
    workspace = await make_workspace(db, owner, "managed")
    managed = await make_user(db, "kim", email=f"kim-{secrets.token_hex(3)}@{domain}")
    guest = await make_user(db, "guest")
    for user in (managed, guest):
        await add_member(db, workspace, user, "member")
    await configure(db, settings, workspace, "https://login.example.com", domain, dns=dns, enforce_sso="on")
    page = f"/w/{workspace.slug}/settings/sso"
    with (
        http_client(create_app(settings)) as admin,
        http_client(create_app(settings)) as kim,
        http_client(create_app(settings)) as visitor,
    ):
        log_in(kim, managed.email)
        log_in(visitor, guest.email)
        log_in(admin, owner.email)
        fields = {**GOOD, "enforce_sso": "on", "managed_accounts": "on"}
        # First the page shows whom it affects and asks for a confirmation; nothing changes yet.
        asked = post(admin, page, page, fields)
        assert asked.status_code == 422  # type: ignore[attr-defined]
        assert managed.email in asked.text and 'id="f-confirm_managed"' in asked.text  # type: ignore[attr-defined]
        row = await row_of(db, workspace)
        assert row is not None and row["managed_accounts"] is False
        assert post(admin, page, page, {**fields, "confirm_managed": "on"}).status_code == 303  # type: ignore[attr-defined]

        # The managed member's password session is over; the guest's and the owner's are not.
        assert kim.get("/account/security").headers["location"].startswith("/login")
        assert await count(db, UserSession, UserSession.user_id == managed.id) == 0
        assert await count(db, UserSession, UserSession.user_id == guest.id) == 1
        assert admin.get(page).status_code == 200
        refused = log_in(kim, managed.email)
        assert refused.status_code == 403  # type: ignore[attr-defined]
        assert f"managed by the workspace “{workspace.name}”" in refused.text  # type: ignore[attr-defined]
        assert visitor.get("/account/security").status_code == 200
        assert visitor.get(f"/w/{workspace.slug}").headers["location"].startswith("/sso?workspace=")
    events = await audit_actions(db, workspace)
    changed = {"enforce_sso": True, "managed_accounts": True, "password_sessions_ended": 1}
    assert ("sso.enforced_changed", changed) in events
    assert "sso.password_login_blocked" in [action for action, _ in events]
