"""Workspaces, memberships and invitations (schema ``public``). A workspace's data lives in ``ws_<id>``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class Workspace(PublicBase):
    __tablename__ = "workspaces"

    # 12 lowercase letters and digits; the schema and the role are both ``ws_<id>``.
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    slug: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The tenant revision the schema is at, written in the same transaction as its DDL.
    schema_revision: Mapped[str | None] = mapped_column(String(32))
    # Members without 2FA are sent to enrolment before they can use the workspace.
    require_2fa: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The password of the workspace's login role ``ws_<id>``, encrypted (app.db.roles); NULL only for a
    # workspace made before workspaces had login roles, until `marid migrate` converts it.
    db_password_enc: Mapped[str | None] = mapped_column(Text, deferred=True)


class Membership(PublicBase):
    __tablename__ = "memberships"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invitation(PublicBase):
    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
