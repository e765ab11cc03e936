"""What a pipeline's page shows of its runs: the "Start a run" form and the latest runs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.pipelines.models import PipelineRecord
from app.tenants.context import WorkspaceContext


async def pipeline_runs(request: Request, context: WorkspaceContext, pipeline: PipelineRecord) -> dict[str, Any]:
    return {"runs": [], "start_url": None}
