"""Single sign-on: one OpenID Connect provider per workspace, and the identities it vouches for (``public``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class SsoConnection(PublicBase):
    """A workspace's identity provider. The client secret is stored encrypted (AAD ``sso:<workspace id>``)."""

    __tablename__ = "sso_connections"
    # /sso finds the workspace of an e-mail address by its domain.
    __table_args__ = (Index("ix_sso_connections_allowed_domains", "allowed_domains", postgresql_using="gin"),)

    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    # Exactly as the provider names itself in its discovery document (compared byte for byte).
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    # Lower-case domains whose verified addresses may join the workspace on first sign-in.
    allowed_domains: Mapped[list[str]] = mapped_column(
        ARRAY(String(253)), default=list, server_default=text("'{}'::varchar[]")
    )
    default_role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    enforce_sso: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_error: Mapped[str | None] = mapped_column(String(500))


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
