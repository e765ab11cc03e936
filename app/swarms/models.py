"""Swarms of a workspace (tables in its schema): the swarm, its tasks, and the workspace's swarm limits.

Postgres is the truth for the scheduler: every transition of a task is a conditional UPDATE on its row (the
status and attempt it expects), so a task completes at most once however many workers race for it. A running
task holds a lease that its job renews (``lease_expires_at``); the reaper takes back tasks whose lease ran out.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase

SWARM_STATUSES = ("running", "completed", "failed", "cancelled")
TASK_STATUSES = ("pending", "ready", "running", "completed", "failed", "cancelled", "skipped")
FINISHED_TASK = frozenset({"completed", "failed", "cancelled", "skipped"})


class SwarmSettings(TenantBase):
    """The workspace's limits (one row, id 1; the defaults apply while there is none)."""

    __tablename__ = "swarm_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    max_tasks: Mapped[int] = mapped_column(Integer, default=500, server_default="500")
    max_concurrent: Mapped[int] = mapped_column(Integer, default=32, server_default="32")
    # Running tasks across all of the workspace's swarms at once.
    workspace_concurrency: Mapped[int] = mapped_column(Integer, default=32, server_default="32")


class Swarm(TenantBase):
    __tablename__ = "swarms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    agent_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    max_concurrent: Mapped[int] = mapped_column(Integer)
    global_timeout_seconds: Mapped[int] = mapped_column(Integer)
    deviation_rules: Mapped[str] = mapped_column(Text, default="", server_default="")
    # ui, api, cli or agent; and who (a person's or key's label, or the run and step of the agent).
    origin: Mapped[str] = mapped_column(String(16), default="ui", server_default="ui")
    created_by_label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class SwarmTask(TenantBase):
    __tablename__ = "swarm_tasks"
    __table_args__ = (Index("ix_swarm_tasks_status", "status"),)

    swarm_id: Mapped[str] = mapped_column(ForeignKey("marid_tenant.swarms.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    execution_prompt: Mapped[str] = mapped_column(Text)
    dependencies: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    dependents: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    model: Mapped[str | None] = mapped_column(String(200))
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer)
    # Layer in the DAG (0 for roots), and the longest chain of tasks below it: ready tasks with the longest
    # chain ahead go first, which keeps the critical path moving.
    level: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # Dependencies not completed yet; 0 makes a pending task ready.
    waiting_on: Mapped[int] = mapped_column(Integer)
    # Dispatches so far (the current one's number while running) and failed attempts among them.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sandbox_id: Mapped[str | None] = mapped_column(String(64))
    output: Mapped[str] = mapped_column(Text, default="", server_default="")
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal(0), server_default="0")
    input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
