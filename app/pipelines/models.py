"""Pipelines of a workspace (tables in its schema): each save is a new, immutable version.

A run pins the version it started with (``runs.pipeline_version``), so editing a pipeline never changes a run
in flight. The YAML text is the truth; the engine and the pages parse it with :mod:`app.pipelines`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase


class PipelineRecord(TenantBase):
    __tablename__ = "pipelines"

    # The YAML's own ``id`` (letters, digits, '-' and '_'): a workspace has one pipeline per id.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The newest version's number (1, 2, ...); what a new run starts with.
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PipelineVersion(TenantBase):
    __tablename__ = "pipeline_versions"

    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("marid_tenant.pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    yaml: Mapped[str] = mapped_column(Text)
    # Who saved it and why, as shown in the version list.
    created_by_label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
