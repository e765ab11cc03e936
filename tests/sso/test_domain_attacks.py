"""Issue 8, defect 1, from the attacker's side: the admin of workspace E points single sign-on at a provider
they run, lists victim.example as one of "their" domains without proving it, and signs in as people there.

A domain counts only once the workspace proved it owns it (DNS TXT): listing it does nothing for accounts,
for identities, or for where /sso sends that domain's people.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.auth.models import User, UserSession
from app.config import Settings
from app.db import Database
from app.sso.models import SsoIdentity
from app.sso.pages import NOT_FOUND
from app.tenants.models import Workspace
from tests.helpers import post_form
from tests.sso.conftest import StartProvider
from tests.sso.flow import sso
from tests.sso.helpers import add_member, configure, count, make_user, make_workspace, unique_domain, users_with_email

pytestmark = pytest.mark.timeout(60)


async def _attacker_workspace(db: Database, settings: Settings, issuer: str, victim_domain: str) -> Workspace:
    """Workspace E, SSO on with the attacker's provider and the victim's domain listed (never proved)."""
    attacker = await make_user(db, "attacker")
    evil = await make_workspace(db, attacker, "evil")
    await configure(db, settings, evil, issuer, victim_domain)
    return evil


async def test_a_provider_cannot_create_accounts_at_a_domain_its_workspace_never_proved(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    victim_domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", victim_domain)
    evil = await _attacker_workspace(db, settings, issuer, victim_domain)
    users = await count(db, User)

    answer = sso(client, evil.slug, "newhire")

    assert answer.status_code == 403, answer.text
    assert f"has not proven that it owns {victim_domain}" in answer.text
    assert "sign in to your Marid account first" in answer.text  # and how to link instead
    assert await users_with_email(db, f"newhire@{victim_domain}") == []
    assert await count(db, User) == users
    assert await count(db, SsoIdentity, SsoIdentity.issuer == issuer) == 0
    assert settings.session_cookie not in client.cookies


async def test_an_identity_made_through_an_unproven_domain_no_longer_signs_in(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    # Before the fix, E's provider made newhire@victim.example and its identity. The real person later reset
    # the password and joined the victim's workspace: E's provider must not sign them in any more.
    victim_domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", victim_domain)
    evil = await _attacker_workspace(db, settings, issuer, victim_domain)
    newhire = await make_user(db, "newhire", email=f"newhire@{victim_domain}")
    victim_owner = await make_user(db, "victim")
    victim = await make_workspace(db, victim_owner, "victim")
    await add_member(db, victim, newhire, "member")
    async with db.public_session() as session:
        session.add(
            SsoIdentity(
                issuer=issuer, subject="newhire", user_id=newhire.id, workspace_id=evil.id, email_at_link=newhire.email
            )
        )

    answer = sso(client, evil.slug, "newhire")

    assert answer.status_code == 403, answer.text
    assert settings.session_cookie not in client.cookies
    assert await count(db, UserSession, UserSession.user_id == newhire.id) == 0
    assert client.get(f"/w/{victim.slug}").status_code == 303  # to the sign-in page


async def test_listing_a_domain_does_not_send_its_people_to_the_attackers_provider(
    client: TestClient, db: Database, settings: Settings, providers: StartProvider
) -> None:
    victim_domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", victim_domain)
    await _attacker_workspace(db, settings, issuer, victim_domain)

    answer = post_form(client, "/sso", "/sso", {"identifier": f"ada@{victim_domain}"})

    assert answer.status_code == 422
    assert NOT_FOUND in answer.text
    assert "refresh" not in answer.headers
