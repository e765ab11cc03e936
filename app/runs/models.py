"""Runs of a workspace's pipelines (tables in its schema): the run, each visit of a step, loop items.

Postgres is the truth of a run: the engine's jobs read it, change it with guarded (conditional) updates and
publish events after the commit, so a page or a CLI can always re-read where a run stands.

A ``run_steps`` row is one visit of a pipeline step (a loop's IMPLEMENT runs once per item, a review may send
the run back to it): ``seq`` orders the visits; ``attempt`` counts tries of that visit (retries), and
``attempts`` keeps the history of the earlier ones. ``routed`` says the engine has acted on the visit's end,
so acting twice is impossible. The lease (owner, expiry, heartbeat) says which worker runs it right now.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase

COST = Numeric(14, 6)


class Run(TenantBase):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(64), index=True)
    pipeline_version: Mapped[int] = mapped_column(Integer)
    pipeline_name: Mapped[str] = mapped_column(String(200))
    # The YAML of the pinned version, copied: deleting the pipeline never takes a run's history with it.
    pipeline_yaml: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(Text)
    # queued, running, paused, completed, failed, cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    # Why it ended (or paused): a sentence for people.
    reason: Mapped[str] = mapped_column(Text, server_default="")
    # Accumulated step outputs by name (later values replace earlier ones), for templates and the pages.
    outputs: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # The loop the run is inside (its step id), if any.
    active_loop: Mapped[str | None] = mapped_column(String(64))
    model_override: Mapped[str | None] = mapped_column(String(200))
    created_by_label: Mapped[str] = mapped_column(String(200), server_default="")
    # The run this one restarts, if any.
    restarted_from: Mapped[str | None] = mapped_column(String(32))
    # The status last announced on the run's stream (RUN_STATUS_CHANGED): controls change ``status`` in a
    # request, the next engine job announces it, exactly once.
    announced_status: Mapped[str] = mapped_column(String(16), server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RunStep(TenantBase):
    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_run_steps_run_id_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("marid_tenant.runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    # How the run came here: "start", "onComplete", "goto", "next item", "restart" ...
    via: Mapped[str] = mapped_column(String(32), server_default="")
    loop_item: Mapped[int | None] = mapped_column(Integer)
    # queued, running, completed, failed, cancelled
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    max_retries: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Added by people (restart with context, inject) and by retries ("[RETRY n/m] ...").
    human_context: Mapped[str] = mapped_column(Text, server_default="")
    # Context people injected while the visit ran, in order; the worker running it delivers the new ones.
    injections: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    input: Mapped[str] = mapped_column(Text, server_default="")
    outputs: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    summary: Mapped[str] = mapped_column(Text, server_default="")
    error: Mapped[str] = mapped_column(Text, server_default="")
    model: Mapped[str] = mapped_column(String(200), server_default="")
    input_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cost: Mapped[Decimal] = mapped_column(COST, server_default=text("0"))
    # The earlier attempts of this visit: [{attempt, status, error, started_at, finished_at, ...}]
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # The engine acted on this visit's end (routed it): never twice.
    routed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The git commit of the run's files after this visit (app/runs/files.py).
    commit: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped when the reaper hands the visit to another worker: part of the execute job's id.
    lease_generation: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # How often this attempt lost its worker (lease expired): past a few, the attempt fails rather than loop.
    takeovers: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunLoopItem(TenantBase):
    __tablename__ = "run_loop_items"

    run_id: Mapped[str] = mapped_column(ForeignKey("marid_tenant.runs.id", ondelete="CASCADE"), primary_key=True)
    loop_step: Mapped[str] = mapped_column(String(64), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(100))
    data: Mapped[str] = mapped_column(Text)
    # pending, running, completed, failed
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
