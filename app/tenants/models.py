"""Workspaces and memberships (schema ``public``). A workspace's own data lives in schema ``ws_<id>``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class Workspace(PublicBase):
    __tablename__ = "workspaces"

    # 12 lowercase base32/hex characters; the schema and the role are both ``ws_<id>``.
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    slug: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The tenant revision the schema is at, written in the same transaction as its DDL.
    schema_revision: Mapped[str | None] = mapped_column(String(32))


class Membership(PublicBase):
    __tablename__ = "memberships"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
