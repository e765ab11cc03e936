"""Onboarding's last step: "Run the engineering pipeline on a sample task". One button adds the engineering
starter and the roster agents it needs (whichever are missing), starts the run, and opens the run's page, where
it streams live (on the demo model under ``marid dev``: no key needed)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.agents import service as agents
from app.errors import Invalid, ServiceError
from app.llm import service as llm
from app.onboarding.first_run import FIRST_PIPELINE, SAMPLE_TASK, agents_needed, ensure_starter
from app.onboarding.steps import STEPS, next_step
from app.pipelines.models import PipelineRecord
from app.queues import Enqueuer
from app.runs import dispatch
from app.runs import service as runs
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.idempotency import submit_once
from app.web.pages import redirect_with_flash
from app.web.state import db_of, workspace_changes
from app.web.templating import render

STEP = "first_run"


async def _show(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        existing = {agent.id for agent in await agents.list_agents(session)}
        has_pipeline = await session.get(PipelineRecord, FIRST_PIPELINE) is not None
        models = await llm.model_strings(session)
    slug = context.workspace.slug
    page: dict[str, Any] = {
        "steps": STEPS,
        "current_step": STEP,
        "missing_agents": [agent_id for agent_id in agents_needed(FIRST_PIPELINE) if agent_id not in existing],
        "has_pipeline": has_pipeline,
        "model": models[0] if models else None,
        "values": values or {"task": SAMPLE_TASK},
        "errors": errors or {},
        "action": f"/w/{slug}/onboarding/run",
        "skip_url": next_step(STEP, slug),
        "llm_url": f"/w/{slug}/onboarding/llm",
    }
    return render(request, "onboarding/first_run.html", page, status_code=status_code)


@workspace_required("workspace.work")
async def first_run_page(request: Request, context: WorkspaceContext) -> Response:
    return await _show(request, context)


@workspace_required("workspace.work")
async def start_first_run(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request, max_chars=runs.MAX_TASK + 1)
    values = {"task": form.get("task", "")}

    async def act() -> Response:
        try:
            async with workspace_changes(request, context.workspace.id) as session:
                await ensure_starter(session, FIRST_PIPELINE, context.actor)
                run = await runs.start_run(
                    session, pipeline_id=FIRST_PIPELINE, task=values["task"], actor=context.actor
                )
        except ServiceError as refused:
            errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
            errors = {key if key == "task" else "_form": text for key, text in errors.items()}
            return await _show(request, context, values=values, errors=errors, status_code=page_status(refused))
        jobs: Enqueuer = request.app.state.jobs
        await dispatch.kick(jobs, context.workspace.id, run.id)
        url = f"/w/{context.workspace.slug}/runs/{run.id}"
        return redirect_with_flash(request, url, "Your first run has started: watch each step arrive below.")

    return await submit_once(request, form, scope=f"first-run:{context.workspace.id}", act=act)


routes: list[BaseRoute] = [
    Route("/w/{slug}/onboarding/run", first_run_page, methods=["GET"]),
    Route("/w/{slug}/onboarding/run", start_first_run, methods=["POST"]),
]
