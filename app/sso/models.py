"""Single sign-on (``public``): one OpenID Connect provider per workspace, the e-mail domains a workspace proved
it owns, the identities providers vouch for, and which sessions did a workspace's single sign-on (step-ups)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class SsoConnection(PublicBase):
    """A workspace's identity provider. The client secret is sealed by the secrets service (``app.sso.service``)."""

    __tablename__ = "sso_connections"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    # Exactly as the provider names itself in its discovery document (compared byte for byte).
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    default_role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    # Members (but the owner) enter this workspace only after its single sign-on, in each session.
    enforce_sso: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # With enforce_sso: members whose address is in a verified domain of this workspace may not use a
    # password anywhere on Marid (their accounts are managed by this workspace).
    managed_accounts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_error: Mapped[str | None] = mapped_column(String(500))


class SsoDomain(PublicBase):
    """An e-mail domain a workspace claims. It counts (sign-ups, links, /sso lookup) only once verified: its
    owner published ``marid-domain-verification=<token>`` in TXT at ``_marid-verify.<domain>``."""

    __tablename__ = "sso_domains"
    __table_args__ = (
        UniqueConstraint("workspace_id", "domain"),
        UniqueConstraint("token"),
        # A verified domain belongs to one workspace at a time; any number may have it pending.
        Index(
            "uq_sso_domains_verified_domain",
            "domain",
            unique=True,
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"))
    # Lower-case ASCII (IDNA) without a trailing dot.
    domain: Mapped[str] = mapped_column(String(253))
    token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))


class LinkMethod:
    """How an identity came to be bound to its account (``SsoIdentity.link_method``)."""

    # Single sign-on created the account: the address was in a domain the workspace verified.
    NEW_ACCOUNT = "new_account"
    # An existing account whose address is in a domain the workspace verified.
    VERIFIED_DOMAIN = "verified_domain"
    # The account's owner was signed in and started single sign-on themselves.
    SIGNED_IN = "signed_in"
    # Linked before domains had to be verified; it counts like VERIFIED_DOMAIN (so only once it is).
    LEGACY = "legacy"

    # These hold only while the address's domain is verified by the workspace that linked them.
    BY_DOMAIN = frozenset({NEW_ACCOUNT, VERIFIED_DOMAIN, LEGACY})


class SsoIdentity(PublicBase):
    """An account at a provider, bound to one Marid user by (issuer, subject): never by e-mail address alone."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="CASCADE"), index=True
    )
    # The workspace whose connection linked it.
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), index=True)
    email_at_link: Mapped[str] = mapped_column(String(320), default="")
    link_method: Mapped[str] = mapped_column(String(16), default=LinkMethod.SIGNED_IN, server_default=LinkMethod.LEGACY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SsoStepUp(PublicBase):
    """This session did this workspace's single sign-on (with this identity), so it may enter the workspace
    while it requires single sign-on. Ends with the session, the workspace or the identity (cascades)."""

    __tablename__ = "sso_step_ups"

    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.user_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.sso_identities.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
