"""What a pipeline's page shows of its runs: the "Start a run" form and the latest runs of this pipeline."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.pipelines.models import PipelineRecord
from app.runs import service as runs
from app.runs.views import RunFilters
from app.tenants.context import WorkspaceContext
from app.web.state import db_of

LATEST = 5


async def pipeline_runs(request: Request, context: WorkspaceContext, pipeline: PipelineRecord) -> dict[str, Any]:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        latest = await runs.list_runs(session, RunFilters(pipeline_id=pipeline.id, limit=LATEST))
    can_start = context.can("workspace.work")
    return {
        "runs": latest,
        "start_url": f"/w/{context.workspace.slug}/runs" if can_start else None,
        "start_values": {"pipeline": pipeline.id, "task": ""},
    }
