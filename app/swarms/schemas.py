"""The JSON shapes of the swarms API. The request is checked by :mod:`app.swarms.spec` (every problem at once,
each with its path, e.g. ``tasks[3].dependencies[0]``); the shapes here only keep absurd bodies out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.api.schemas import Body, page_of


class TaskIn(BaseModel):
    """A task of the request (DjinnBot's shape; ``project_id``/``task_id`` are accepted and ignored)."""

    model_config = {"extra": "allow"}

    key: Any = Field(None, description="Unique in the swarm: letters, digits, '.', '_' and '-' (up to 64).")
    title: Any = None
    execution_prompt: Any = Field(None, description="All an executor session is told (plus the deviation rules).")
    dependencies: Any = Field(default_factory=list, description="Keys of the tasks that must complete first.")
    model: Any = Field(None, description="The model for this task; null: the agent's (then the workspace's).")
    timeout_seconds: Any = Field(None, description="30-3600 (default 300).")
    max_retries: Any = Field(None, description="Attempts after a failure, 0-5 (default 1).")


class SwarmStart(Body):
    model_config = {"extra": "forbid", "strict": False}

    agent_id: str = Field(max_length=64, description="The workspace agent every task runs as.")
    title: str = Field("", max_length=200)
    max_concurrent: int | None = Field(None, description="Tasks at once, 1 up to the workspace's limit (32).")
    global_timeout_seconds: int | None = Field(None, description="60-86400 (default 1800).")
    deviation_rules: str = Field("", max_length=50_000, description="Added to every task's prompt.")
    tasks: list[TaskIn] = Field(max_length=10_000)

    def request(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        data["tasks"] = [task.model_dump(exclude_none=True) for task in self.tasks]
        return data


class SwarmPreview(BaseModel):
    valid: bool
    problems: list[dict[str, str]] = Field(description="Each `{field, code, message}`; empty when valid.")
    total_tasks: int = 0
    dag_depth: int = 0
    root_tasks: list[str] = []
    warnings: list[str] = []


class SwarmOut(BaseModel):
    id: str
    title: str
    agent_id: str
    status: str = Field(description="running, completed, failed or cancelled.")
    origin: str = Field(description="ui, api, cli or agent.")
    created_by: str
    max_concurrent: int
    global_timeout_seconds: int
    created_at: datetime
    deadline_at: datetime
    finished_at: datetime | None
    error: str | None
    counts: dict[str, int] = Field(description="Tasks by status.")
    cost_usd: str


class TaskOut(BaseModel):
    key: str
    title: str
    status: str = Field(description="pending, ready, running, completed, failed, cancelled or skipped.")
    dependencies: list[str]
    level: int
    model: str | None
    timeout_seconds: int
    max_retries: int
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    outputs: dict[str, Any] | None
    cost_usd: str


class SwarmDetail(SwarmOut):
    deviation_rules: str
    summary: dict[str, Any] | None
    tasks: list[TaskOut]


class TaskDetail(TaskOut):
    execution_prompt: str
    output: str


class EventOut(BaseModel):
    id: str = Field(description="The stream id: pass the last one as `after` to read on.")
    type: str
    at: datetime
    payload: dict[str, Any]


class SwarmEvents(BaseModel):
    events: list[EventOut]
    after: str = Field(description="Where the next read starts (the last id returned, or the one given).")
    status: str = Field(description="The swarm's status when read: stop following once it is not running.")


SwarmList = page_of(SwarmOut, "SwarmList")


class SwarmLimitsIn(Body):
    model_config = {"extra": "forbid", "strict": True}

    max_tasks: int = Field(description="Tasks in one swarm, 1 up to the platform's 500.")
    max_concurrent: int = Field(description="Tasks of one swarm at once, 1 up to 32 (and not above the next).")
    workspace_concurrency: int = Field(description="Tasks of all the workspace's swarms at once, 1 up to 32.")


class SwarmLimitsOut(BaseModel):
    max_tasks: int
    max_concurrent: int
    workspace_concurrency: int
    ceilings: dict[str, int] = Field(description="The platform's ceilings for each limit.")
