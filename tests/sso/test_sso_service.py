"""What a verified sign-in may do: identities bind by (issuer, subject); a provider speaks for an address only
at a domain its workspace verified (there it creates, links and admits); elsewhere only the signed-in owner of
an account links it; managed accounts are the only ones refused a password."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.sso.domains import DomainError, normalise_domain
from app.sso.enforcement import password_login_blocked
from app.sso.models import LinkMethod, SsoConnection, SsoIdentity
from app.sso.oidc import OidcError
from app.sso.signin import complete_sign_in
from app.tenants.models import Membership, Workspace
from tests.dns_server import TestDns
from tests.sso.helpers import add_member, configure, count, make_user, make_workspace, unique_domain


async def _setup(db: Database, settings: Settings, dns: TestDns) -> tuple[Workspace, SsoConnection, str]:
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner)
    domain = unique_domain()
    issuer = f"https://idp-{secrets.token_hex(4)}.example.com"
    connection = await configure(db, settings, workspace, issuer, domain, dns=dns, default_role="viewer")
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


async def test_a_new_person_is_provisioned_then_found_by_subject(
    db: Database, settings: Settings, dns: TestDns
) -> None:
    workspace, connection, domain = await _setup(db, settings, dns)
    first = await _sign_in(db, connection, _claims("s-1", f"Ada@{domain}"))
    assert first.created_user and first.provisioned and first.membership.role == "viewer"
    assert first.user.email == f"ada@{domain}" and first.user.password_hash is None
    assert first.identity.link_method == LinkMethod.NEW_ACCOUNT
    # The provider changed the address: the subject still finds the same person, who is not re-provisioned.
    again = await _sign_in(db, connection, _claims("s-1", f"ada.lovelace@{domain}"))
    assert again.user.id == first.user.id and not (again.created_user or again.provisioned or again.linked)
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 2


async def test_an_existing_account_at_a_verified_domain_is_linked_by_its_address(
    db: Database, settings: Settings, dns: TestDns
) -> None:
    workspace, connection, domain = await _setup(db, settings, dns)
    existing = await make_user(db, "grace", email=f"grace-{secrets.token_hex(3)}@{domain}")
    linked = await _sign_in(db, connection, _claims("g-1", existing.email))
    assert linked.user.id == existing.id and linked.linked and linked.provisioned
    assert linked.identity.link_method == LinkMethod.VERIFIED_DOMAIN
    # Someone else signed in cannot take that address's identity for their own account.
    mallory = await make_user(db, "mallory")
    await add_member(db, workspace, mallory, "member")
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, _claims("g-2", existing.email), initiator=mallory.id)
    assert refused.value.reason == "account_mismatch"


async def test_linking_ones_own_address_at_a_verified_domain_signs_in_by_itself_later(
    db: Database, settings: Settings, dns: TestDns
) -> None:
    _, connection, domain = await _setup(db, settings, dns)
    existing = await make_user(db, "ada", email=f"ada-{secrets.token_hex(3)}@{domain}")
    linked = await _sign_in(db, connection, _claims("a-1", existing.email), initiator=existing.id)
    assert linked.identity.link_method == LinkMethod.VERIFIED_DOMAIN
    assert (await _sign_in(db, connection, _claims("a-1", existing.email))).user.id == existing.id


async def test_an_account_elsewhere_is_linked_only_by_its_signed_in_owner(
    db: Database, settings: Settings, dns: TestDns
) -> None:
    workspace, connection, _ = await _setup(db, settings, dns)
    existing = await make_user(db, "grace", email=f"grace-{secrets.token_hex(3)}@{unique_domain()}")
    await add_member(db, workspace, existing, "member")
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, _claims("g-1", existing.email))
    assert refused.value.reason == "domain_not_verified"
    someone_else = await make_user(db, "mallory")
    with pytest.raises(OidcError):  # linked to mallory, who is no member and has no verified address: refused
        await _sign_in(db, connection, _claims("g-1", existing.email), initiator=someone_else.id)
    assert await count(db, SsoIdentity, SsoIdentity.subject == "g-1", SsoIdentity.issuer == connection.issuer) == 0

    linked = await _sign_in(db, connection, _claims("g-1", existing.email), initiator=existing.id)
    assert linked.linked and not linked.created_user and linked.user.id == existing.id and not linked.provisioned
    assert linked.identity.link_method == LinkMethod.SIGNED_IN
    # It confirms its owner's sessions but never starts one: the workspace never proved that address.
    with pytest.raises(OidcError) as alone:
        await _sign_in(db, connection, _claims("g-1", existing.email))
    assert alone.value.reason == "sign_in_first"
    again = await _sign_in(db, connection, _claims("g-1", existing.email), initiator=existing.id)
    assert again.user.id == existing.id and not again.linked
    # Another subject at this issuer for the same account is refused.
    with pytest.raises(OidcError) as conflict:
        await _sign_in(db, connection, _claims("g-2", existing.email), initiator=existing.id)
    assert conflict.value.reason == "identity_conflict"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"email_verified": False}, "email_unverified"),
        ({"email_verified": None}, "email_unverified"),
        ({"email": None}, "email_unverified"),
        ({"email": "ada@elsewhere.example"}, "domain_not_verified"),
    ],
)
async def test_new_people_need_a_verified_address_at_a_verified_domain(
    db: Database, settings: Settings, dns: TestDns, claims: dict[str, Any], reason: str
) -> None:
    workspace, connection, domain = await _setup(db, settings, dns)
    base = _claims(f"n-{secrets.token_hex(3)}", f"ada-{secrets.token_hex(3)}@{domain}")
    merged = {k: v for k, v in (base | claims).items() if v is not None}
    users = await count(db, User)
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, merged)
    assert refused.value.reason == reason
    assert await count(db, User) == users
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 1


async def test_a_subject_linked_to_one_account_does_not_sign_in_another(
    db: Database, settings: Settings, dns: TestDns
) -> None:
    _, connection, domain = await _setup(db, settings, dns)
    first = await _sign_in(db, connection, _claims("x-1", f"x-{secrets.token_hex(3)}@{domain}"))
    other = await make_user(db, "other")
    with pytest.raises(OidcError) as refused:
        await _sign_in(db, connection, _claims("x-1", first.user.email), initiator=other.id)
    assert refused.value.reason == "identity_linked_elsewhere"


async def test_only_managed_accounts_are_refused_a_password(db: Database, settings: Settings, dns: TestDns) -> None:
    domain = unique_domain()
    managed = await make_user(db, "managed", email=f"kim-{secrets.token_hex(3)}@{domain}")
    elsewhere = await make_user(db, "elsewhere")
    boss = await make_user(db, "boss", email=f"boss-{secrets.token_hex(3)}@{domain}")
    theirs = await make_workspace(db, boss, "theirs")
    for user in (managed, elsewhere):
        await add_member(db, theirs, user, "member")
    issuer = "https://login.example.com"
    await configure(db, settings, theirs, issuer, domain, dns=dns, enforce_sso="on")

    async def blocked(user: User) -> str | None:
        async with db.public_session() as session:
            return await password_login_blocked(session, user)

    # Requiring SSO binds the workspace's pages, not anyone's password.
    assert [await blocked(user) for user in (managed, elsewhere, boss)] == [None, None, None]
    fields = {"enforce_sso": "on", "managed_accounts": "on", "confirm_managed": "on"}
    await configure(db, settings, theirs, issuer, "", **fields)
    assert await blocked(managed) == (
        f"Your account is managed by the workspace “{theirs.name}”, which requires single sign-on. "
        "Use Continue with SSO."
    )
    # Not at a verified domain; the owner (break-glass): still passwords.
    assert await blocked(elsewhere) is None and await blocked(boss) is None
    # Turned off, the requirement no longer applies.
    await configure(db, settings, theirs, issuer, "", enabled="", enforce_sso="")
    assert await blocked(managed) is None


def test_domains_are_normalised() -> None:
    assert normalise_domain(" Example.COM. ") == "example.com"
    assert normalise_domain("@example.org") == "example.org"
    assert normalise_domain("bücher.example") == "xn--bcher-kva.example"
    for bad in ("", "-bad.com", "a..b", "1.2.3.4", "exa_mple.com", "x" * 64 + ".com", "localhost", "a b.com"):
        with pytest.raises(DomainError):
            normalise_domain(bad)
