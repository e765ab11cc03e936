"""What the run pages share: reading a run or a 404, the run's URLs, kicking the engine after a commit, and the
start form's choices."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.errors import NotFound
from app.pipelines import service as pipelines
from app.queues import Enqueuer
from app.runs import dispatch, service
from app.runs.views import RunView
from app.tenants.context import WorkspaceContext
from app.web.state import db_of


def runs_url(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/runs"


def run_url(context: WorkspaceContext, run_id: str) -> str:
    return f"{runs_url(context)}/{run_id}"


async def run_or_404(request: Request, context: WorkspaceContext) -> RunView:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            return await service.get_run(session, request.path_params["run"])
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None


async def kick(request: Request, context: WorkspaceContext, run_id: str) -> None:
    """Hand the change to the engine (after the commit: the job must see it)."""
    jobs: Enqueuer = request.app.state.jobs
    await dispatch.kick(jobs, context.workspace.id, run_id)


async def pipeline_choices(request: Request, context: WorkspaceContext) -> list[tuple[str, str]]:
    """(id, name) of the workspace's pipelines, for the start form."""
    async with db_of(request).tenant_session(context.workspace.id) as session:
        return [(p.id, p.name) for p in await pipelines.list_pipelines(session)]
