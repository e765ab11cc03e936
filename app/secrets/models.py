"""Workspace secrets and which agents get them (workspace tables).

A secret's value is sealed by the secrets service (``app.security.secrets``) under the workspace's data key,
bound to this table's purpose and the secret's id; only a masked preview, computed when the value is written,
is kept readable. A grant gives a secret to an agent: a later step hands granted secrets to the agent's
sandbox through the platform.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TENANT_SCHEMA, TenantBase


class WorkspaceSecret(TenantBase):
    __tablename__ = "secrets"

    # Made by the application before the value is sealed: the ciphertext is bound to it.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # Like an environment variable: ^[A-Z][A-Z0-9_]{0,63}$.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), server_default="")
    sealed_value: Mapped[str] = mapped_column(Text)
    preview: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # When the value itself was last written (creation or replacement).
    value_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SecretGrant(TenantBase):
    __tablename__ = "secret_grants"

    secret_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey(f"{TENANT_SCHEMA}.secrets.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        String(48), ForeignKey(f"{TENANT_SCHEMA}.agents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
