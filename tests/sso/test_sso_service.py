"""What a verified sign-in may do: identities bind by (issuer, subject); an e-mail address alone never links an
existing account; new people join only with a verified address at an allowed domain."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.sso.models import SsoConnection, SsoIdentity
from app.sso.oidc import OidcError
from app.sso.service import SsoConfigError, complete_sign_in, parse_domains, password_login_blocked
from app.tenants.models import Membership, Workspace
from tests.sso.helpers import add_member, configure, count, make_user, make_workspace, unique_domain


async def _setup(db: Database, settings: Settings) -> tuple[Workspace, SsoConnection, str]:
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner)
    domain = unique_domain()
    issuer = f"https://idp-{secrets.token_hex(4)}.example.com"
    connection = await configure(db, settings, workspace, issuer, domain, default_role="viewer")
    return workspace, connection, domain


async def _sign_in(
    db: Database, connection: SsoConnection, claims: dict[str, Any], initiator: uuid.UUID | None = None
) -> Any:
    async with db.public_session() as session:
        fresh = await session.get(SsoConnection, connection.workspace_id)
        assert fresh is not None
        return await complete_sign_in(session, connection=fresh, claims=claims, initiator_id=initiator)


def _claims(sub: str, email: str, **more: Any) -> dict[str, Any]:
    return {"sub": sub, "email": email, "email_verified": True, "name": "Ada", **more}


async def test_a_new_person_is_provisioned_then_found_by_subject(db: Database, settings: Settings) -> None:
    workspace, connection, domain = await _setup(db, settings)
    first = await _sign_in(db, connection, _claims("s-1", f"Ada@{domain}"))
    assert first.created_user and first.provisioned and first.membership.role == "viewer"
    assert first.user.email == f"ada@{domain}" and first.user.password_hash is None
    # The provider changed the address: the subject still finds the same person, who is not re-provisioned.
    again = await _sign_in(db, connection, _claims("s-1", f"ada.lovelace@{domain}"))
    assert again.user.id == first.user.id and not (again.created_user or again.provisioned or again.linked)
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 2


async def test_an_existing_account_is_linked_only_by_its_signed_in_owner(db: Database, settings: Settings) -> None:
    workspace, connection, domain = await _setup(db, settings)
    existing = await make_user(db, "grace", email=f"grace-{secrets.token_hex(3)}@{domain}")
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, _claims("g-1", existing.email))
    assert refused.value.reason == "account_exists"
    someone_else = await make_user(db, "mallory")
    with pytest.raises(OidcError):
        await _sign_in(db, connection, _claims("g-1", existing.email), initiator=someone_else.id)
    assert await count(db, SsoIdentity, SsoIdentity.user_id == existing.id) == 0

    linked = await _sign_in(db, connection, _claims("g-1", existing.email), initiator=existing.id)
    assert linked.linked and not linked.created_user and linked.user.id == existing.id and linked.provisioned
    # Linked to one subject at this issuer; another subject claiming the same address is refused.
    with pytest.raises(OidcError) as conflict:
        await _sign_in(db, connection, _claims("g-2", existing.email), initiator=existing.id)
    assert conflict.value.reason == "identity_conflict"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"email_verified": False}, "email_unverified"),
        ({"email_verified": None}, "email_unverified"),
        ({"email": None}, "email_unverified"),
        ({"email": "ada@elsewhere.example"}, "domain_not_allowed"),
    ],
)
async def test_new_people_need_a_verified_address_at_an_allowed_domain(
    db: Database, settings: Settings, claims: dict[str, Any], reason: str
) -> None:
    workspace, connection, domain = await _setup(db, settings)
    base = _claims(f"n-{secrets.token_hex(3)}", f"ada-{secrets.token_hex(3)}@{domain}")
    merged = {k: v for k, v in (base | claims).items() if v is not None}
    users = await count(db, User)
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, merged)
    assert refused.value.reason == reason
    assert await count(db, User) == users
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 1


async def test_a_subject_linked_to_one_account_does_not_sign_in_another(db: Database, settings: Settings) -> None:
    _, connection, domain = await _setup(db, settings)
    first = await _sign_in(db, connection, _claims("x-1", f"x-{secrets.token_hex(3)}@{domain}"))
    other = await make_user(db, "other")
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, _claims("x-1", first.user.email), initiator=other.id)
    assert refused.value.reason == "identity_linked_elsewhere"


async def test_password_login_is_blocked_by_any_enforcing_workspace_unless_owner(
    db: Database, settings: Settings
) -> None:
    person = await make_user(db, "person")
    mine = await make_workspace(db, person, "mine")
    other_owner = await make_user(db, "boss")
    theirs = await make_workspace(db, other_owner, "theirs")
    await add_member(db, theirs, person, "admin")
    async with db.public_session() as session:
        assert await password_login_blocked(session, person) is None
    # Their own workspace enforcing SSO does not lock out its owner (break-glass).
    await configure(db, settings, mine, "https://login.example.com", "example.com", enforce_sso="on")
    async with db.public_session() as session:
        assert await password_login_blocked(session, person) is None
    await configure(db, settings, theirs, "https://login.example.com", "example.com", enforce_sso="on")
    async with db.public_session() as session:
        message = await password_login_blocked(session, person)
        assert message == f"Your workspace “{theirs.name}” requires single sign-on. Use Continue with SSO."
    # Turned off, the requirement no longer applies.
    await configure(db, settings, theirs, "https://login.example.com", "example.com", enabled="", enforce_sso="")
    async with db.public_session() as session:
        assert await password_login_blocked(session, person) is None


def test_domains_are_normalised() -> None:
    assert parse_domains(" Example.COM, @example.org\nexample.com. ") == ["example.com", "example.org"]
    assert parse_domains("") == []
    for bad in ("-bad.com", "a..b", "1.2.3.4", "exa_mple.com", "x" * 64 + ".com"):
        with pytest.raises(SsoConfigError):
            parse_domains(bad)
