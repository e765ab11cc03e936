"""What the pages, the API and the CLI read about runs: typed, read-only views (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.runs.models import Run, RunLoopItem, RunStep

RUN_STATUSES = ("queued", "running", "paused", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class RunFilters:
    status: str | None = None
    pipeline_id: str | None = None
    limit: int = 50
    # A run id: list the runs created before it (the next page).
    before: str | None = None


@dataclass(frozen=True)
class RunSummary:
    id: str
    pipeline_id: str
    pipeline_name: str
    pipeline_version: int
    task: str
    status: str
    reason: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_by_label: str
    # The step the run is on (its newest visit), if any.
    current_step: str | None
    steps_done: int
    cost: Decimal
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class StepView:
    id: str
    seq: int
    step_id: str
    agent_id: str
    via: str
    loop_item: int | None
    status: str
    attempt: int
    max_retries: int
    attempts: list[dict[str, Any]]
    human_context: str
    input: str
    outputs: dict[str, str]
    summary: str
    error: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal
    commit: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class LoopItemView:
    loop_step: str
    index: int
    item_id: str
    data: str
    status: str


@dataclass(frozen=True)
class RunView:
    id: str
    pipeline_id: str
    pipeline_name: str
    pipeline_version: int
    pipeline_yaml: str
    task: str
    status: str
    reason: str
    outputs: dict[str, str]
    created_by_label: str
    restarted_from: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[StepView] = field(default_factory=list)
    loop_items: list[LoopItemView] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum((step.cost for step in self.steps), Decimal(0))

    @property
    def input_tokens(self) -> int:
        return sum(step.input_tokens for step in self.steps)

    @property
    def output_tokens(self) -> int:
        return sum(step.output_tokens for step in self.steps)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    def step_statuses(self) -> dict[str, str]:
        """Each pipeline step's newest status (for ``render_svg``)."""
        latest: dict[str, str] = {}
        for step in self.steps:
            latest[step.step_id] = step.status
        return latest


def step_view(visit: RunStep) -> StepView:
    return StepView(
        id=visit.id,
        seq=visit.seq,
        step_id=visit.step_id,
        agent_id=visit.agent_id,
        via=visit.via,
        loop_item=visit.loop_item,
        status=visit.status,
        attempt=visit.attempt,
        max_retries=visit.max_retries,
        attempts=list(visit.attempts),
        human_context=visit.human_context,
        input=visit.input,
        outputs=dict(visit.outputs),
        summary=visit.summary,
        error=visit.error,
        model=visit.model,
        input_tokens=visit.input_tokens,
        output_tokens=visit.output_tokens,
        cost=Decimal(visit.cost),
        commit=visit.commit,
        queued_at=visit.queued_at,
        started_at=visit.started_at,
        finished_at=visit.finished_at,
    )


def run_view(run: Run, visits: list[RunStep], items: list[RunLoopItem]) -> RunView:
    return RunView(
        id=run.id,
        pipeline_id=run.pipeline_id,
        pipeline_name=run.pipeline_name,
        pipeline_version=run.pipeline_version,
        pipeline_yaml=run.pipeline_yaml,
        task=run.task,
        status=run.status,
        reason=run.reason,
        outputs=dict(run.outputs),
        created_by_label=run.created_by_label,
        restarted_from=run.restarted_from,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        steps=[step_view(v) for v in visits],
        loop_items=[LoopItemView(i.loop_step, i.index, i.item_id, i.data, i.status) for i in items],
    )
