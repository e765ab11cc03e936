"""What a verified sign-in at a workspace's provider means for Marid: which account it signs in to, whether it
links or creates one, whether the person joins the workspace, or why it is refused. No HTTP here; services
flush, the caller commits.

Identities are bound by (issuer, subject), never by e-mail address alone (ASVS 6.8.1). A workspace's provider
speaks for an address only in a domain that workspace has proven it owns (DNS TXT, :mod:`app.sso.domains`):
there it may create the account, link the existing one, let the person join, and later sign them in. For any
other address the account's owner must be signed in and start single sign-on themselves, which links that
identity explicitly; otherwise anyone running a provider could make or enter accounts at any domain.

An explicit link confirms a session its owner already has (the step-up into a workspace that requires single
sign-on) but never starts one by itself: the provider belongs to a workspace that never proved the account's
address, and a member who had to link to enter that workspace must not hand its admins their whole account.
An identity linked through a domain signs in only while the workspace that linked it still has that domain
verified; its owner, signed in, can keep it as an explicit link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.service import normalise_email, user_by_email
from app.auth.sessions import now
from app.mail import messages
from app.mail.service import queue
from app.security.single_line import control_characters
from app.sso.domains import email_domain, is_verified
from app.sso.models import LinkMethod, SsoConnection, SsoIdentity
from app.sso.oidc import OidcError
from app.tenants.models import Membership, Workspace

# Refusals whose page tells the person to sign in to their Marid account first (and link, or confirm).
LINK_FIRST_REASONS = frozenset({"domain_not_verified", "identity_domain_unverified", "sign_in_first"})


@dataclass
class SignInOutcome:
    user: User
    identity: SsoIdentity
    membership: Membership
    created_user: bool
    # The identity was newly bound to an account that already existed (or an old link was confirmed).
    linked: bool
    provisioned: bool


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or not (verified is True or verified == "true"):
        return None
    return normalise_email(email)


def _unproven(domain: str) -> str:
    return (
        f"This workspace has not proven that it owns {domain}, so its single sign-on cannot create or open "
        f"Marid accounts at {domain} by itself. If you have a Marid account, sign in to your Marid account "
        "first (with your password), then use Continue with SSO: that links your identity provider to it."
    )


async def complete_sign_in(
    db: AsyncSession,
    *,
    connection: SsoConnection,
    claims: dict[str, Any],
    initiator_id: uuid.UUID | None,
) -> SignInOutcome:
    """The user a verified ID token signs in, linked and a member of the workspace.

    ``initiator_id`` is the Marid user who was signed in when this sign-in started (and still is). Raises
    OidcError (reason, message) when the sign-in must be refused; nothing is changed then.
    """
    issuer, subject = connection.issuer, str(claims["sub"])
    email = _verified_email(claims)
    domain = email_domain(email) if email else None
    vouched = domain is not None and await is_verified(db, connection.workspace_id, domain)
    identity = await db.scalar(
        select(SsoIdentity).where(SsoIdentity.issuer == issuer, SsoIdentity.subject == subject).with_for_update()
    )
    created_user = linked = False
    if identity is not None:
        user = await db.get(User, identity.user_id)
        assert user is not None  # the foreign key cascades
        if initiator_id is not None and initiator_id != user.id:
            raise OidcError(
                "identity_linked_elsewhere",
                "This account at your identity provider is linked to another Marid account. "
                "Sign out, then use Continue with SSO again.",
            )
        if not await signs_in_by_itself(db, identity) and initiator_id != user.id:
            if identity.link_method == LinkMethod.SIGNED_IN:
                raise OidcError(
                    "sign_in_first",
                    "This identity provider is linked to your Marid account to confirm your sessions, not to "
                    "sign you in by itself. Sign in to your Marid account first, then use Continue with SSO.",
                )
            raise OidcError("identity_domain_unverified", _unproven(email_domain(identity.email_at_link or "?")))
        if identity.link_method in LinkMethod.BY_DOMAIN and not await _still_vouched_for(db, identity):
            # Its owner, signed in, started this: from now on it is their explicit link.
            identity.link_method, linked = LinkMethod.SIGNED_IN, True
    else:
        user, method = await _account_for_new_identity(db, email, vouched, initiator_id, claims)
        created_user = method == LinkMethod.NEW_ACCOUNT
        other = await db.scalar(
            select(SsoIdentity.id).where(SsoIdentity.issuer == issuer, SsoIdentity.user_id == user.id)
        )
        if other is not None:
            raise OidcError(
                "identity_conflict",
                "Your Marid account is already linked to a different account at this identity provider.",
            )
        identity = SsoIdentity(
            issuer=issuer,
            subject=subject,
            user_id=user.id,
            workspace_id=connection.workspace_id,
            email_at_link=email or "",
            link_method=method,
        )
        db.add(identity)
        linked = not created_user
    if user.email_verified_at is None and email == user.email and vouched:
        user.email_verified_at = now()
    identity.last_login_at = now()

    membership = await db.get(Membership, (connection.workspace_id, user.id))
    provisioned = False
    if membership is None:
        if not vouched:
            raise OidcError(
                "domain_not_allowed",
                "You are not a member of this workspace, and your identity provider did not send a verified "
                "address at a domain this workspace has proven it owns. Ask an admin for an invitation.",
            )
        membership = Membership(workspace_id=connection.workspace_id, user_id=user.id, role=connection.default_role)
        db.add(membership)
        provisioned = True
    await db.flush()
    if linked:
        await _mail_linked(db, user, identity)
    return SignInOutcome(user, identity, membership, created_user, linked, provisioned)


async def _account_for_new_identity(
    db: AsyncSession, email: str | None, vouched: bool, initiator_id: uuid.UUID | None, claims: dict[str, Any]
) -> tuple[User, str]:
    """The account a not-yet-linked identity binds to, and how; raises OidcError when it may bind to none."""
    if initiator_id is not None:
        initiator = await db.get(User, initiator_id)
        assert initiator is not None
        # In a domain the workspace proved, the address names its account: it must be the one signed in.
        if vouched and email is not None:
            owner = await user_by_email(db, email)
            if owner is not None and owner.id != initiator.id:
                raise OidcError(
                    "account_mismatch",
                    f"Your identity provider signed you in as {email}, which is another Marid account. "
                    "Sign out, then use Continue with SSO.",
                )
            if owner is not None:
                return initiator, LinkMethod.VERIFIED_DOMAIN
        return initiator, LinkMethod.SIGNED_IN
    if email is None:
        raise OidcError(
            "email_unverified",
            "Your identity provider did not send a verified e-mail address, so Marid cannot set up your account.",
        )
    if not vouched:
        raise OidcError("domain_not_verified", _unproven(email_domain(email)))
    existing = await user_by_email(db, email)
    if existing is not None:
        return existing, LinkMethod.VERIFIED_DOMAIN
    user = User(email=email, display_name=_display_name(claims), password_hash=None, email_verified_at=now())
    db.add(user)
    await db.flush()
    return user, LinkMethod.NEW_ACCOUNT


async def signs_in_by_itself(db: AsyncSession, identity: SsoIdentity) -> bool:
    """Whether the identity may start a session (not only confirm one): a domain-based link, still vouched for."""
    return identity.link_method in LinkMethod.BY_DOMAIN and await _still_vouched_for(db, identity)


async def _still_vouched_for(db: AsyncSession, identity: SsoIdentity) -> bool:
    """A domain-based link holds while the workspace that made it still has that domain verified."""
    if "@" not in identity.email_at_link:
        return False
    return await is_verified(db, identity.workspace_id, email_domain(identity.email_at_link))


async def _mail_linked(db: AsyncSession, user: User, identity: SsoIdentity) -> None:
    workspace = await db.get(Workspace, identity.workspace_id)
    mail = messages.identity_linked(
        issuer=identity.issuer,
        workspace=workspace.name if workspace else "",
        email_at_link=identity.email_at_link,
        how=LINK_DESCRIPTIONS.get(identity.link_method, identity.link_method),
    )
    await queue(db, mail, kind="sso-identity-linked", to=user.email)


LINK_DESCRIPTIONS = {
    LinkMethod.NEW_ACCOUNT: "created your account through single sign-on",
    LinkMethod.VERIFIED_DOMAIN: "linked automatically: the workspace has verified your address's domain",
    LinkMethod.SIGNED_IN: "linked by you, signed in to Marid; it confirms your sessions, it does not sign you in",
    LinkMethod.LEGACY: "linked before domains had to be verified",
}


def _display_name(claims: dict[str, Any]) -> str:
    """The provider's ``name`` claim if it is one line of plain text (it reaches mail headers), else none."""
    name = claims.get("name")
    if not isinstance(name, str) or control_characters(name):
        return ""
    return " ".join(name.split())[:120]
