"""The per-workspace audit log (a tenant table: one per workspace schema), and the public outbox that carries
entries of platform changes into it.

A change to platform tables (memberships, settings, SSO, API keys, mail...) runs on the application role's
connection; the audit log lives in the workspace's schema, reached only on the workspace role's own
connection. The two cannot share a transaction, so the change writes its entry into ``audit_outbox`` in its
own transaction, and the relay (``app.audit.relay``) copies it into the workspace's log, publishes it live,
and deletes it: one change, one transaction, and no entry lost to a crash in between.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase, TenantBase


class AuditEvent(TenantBase):
    __tablename__ = "audit_events"
    # The workspace role may INSERT and SELECT only (app.tenants.grants); a trigger refuses the rest to all.
    __table_args__ = {"info": {"append_only": True}}

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # person, agent or system (app.audit.actor); NULL for entries older than actors (a person if actor_id is
    # set): the log is append-only, so they cannot be filled in.
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    # How the actor was named when it happened (a member who leaves is still named).
    actor_label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The outbox row this entry was relayed from: a relay that runs twice inserts it once.
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class AuditOutbox(PublicBase):
    __tablename__ = "audit_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Deleting a workspace drops its log, and with it what was still on the way there.
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
