"""Ticks "Run a pipeline" on a new workspace's checklist once the workspace has started a run."""

from __future__ import annotations

from sqlalchemy import select

from app.onboarding.checklist import Tables, register
from app.runs.models import Run

# Done once the workspace has started a run (asked with the other items in one statement).
register("pipeline_run", select(Run.id), tables=Tables.WORKSPACE)
