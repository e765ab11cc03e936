"""The pipelines list (with the starters to add) and a new pipeline: written, pasted or imported from a file."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Invalid, ServiceError
from app.onboarding.first_run import agents_needed, ensure_starter
from app.pipelines import service
from app.pipelines.pages.common import RESERVED_IDS, base_url, known_agents, read_yaml_form, review
from app.pipelines.service import PipelineRefused
from app.pipelines.starters import load_starter, starter_ids
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, workspace_changes
from app.web.templating import render

# What "New pipeline" starts from: the smallest valid shape, for the author to fill in.
SKELETON = """id: my-pipeline
name: My pipeline
version: 1.0.0
description: What this pipeline is for.

agents:
  - id: software-engineer
    name: Software engineer

steps:
  - id: IMPLEMENT
    agent: software-engineer
    input: |
      {{task_description}}
    outputs: [summary]
"""


def starters_offered(existing: set[str]) -> list[dict[str, Any]]:
    offered = []
    for starter_id in starter_ids():
        pipeline = load_starter(starter_id)
        offered.append(
            {
                "id": starter_id,
                "name": pipeline.name,
                "description": pipeline.description or "",
                "steps": len(pipeline.steps),
                "agents": agents_needed(starter_id),
                "added": starter_id in existing,
            }
        )
    return offered


async def _list(request: Request, context: WorkspaceContext, *, errors: dict[str, str] | None = None,
                status_code: int = 200) -> Response:  # fmt: skip
    async with db_of(request).tenant_session(context.workspace.id) as session:
        pipelines = await service.list_pipelines(session)
    page = {
        "pipelines": pipelines,
        "starters": starters_offered({p.id for p in pipelines}),
        "errors": errors or {},
    }
    return render(request, "pipelines/index.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def pipelines_page(request: Request, context: WorkspaceContext) -> Response:
    return await _list(request, context)


@workspace_required("workspace.work")
async def add_starter(request: Request, context: WorkspaceContext) -> Response:
    """Add a starter and the roster agents it names that the workspace lacks, all or nothing."""
    form = await read_form(request)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            ready = await ensure_starter(session, form.get("starter", ""), context.actor)
    except ServiceError as refused:
        return await _list(
            request, context, errors={"_form": refused.message}, status_code=page_status(refused, not_found=422)
        )
    pipeline = ready.pipeline
    if not ready.pipeline_added:
        return redirect_with_flash(
            request, f"{base_url(context)}/{pipeline.id}", f"{pipeline.name} is already here.", "info"
        )
    extra = f" and {len(ready.agents_added)} agents it needs" if ready.agents_added else ""
    return redirect_with_flash(
        request, f"{base_url(context)}/{pipeline.id}", f"Added the {pipeline.name} pipeline{extra}."
    )


async def show_new(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    known = await known_agents(request, context)
    page: dict[str, Any] = {
        "pipeline": None,
        "values": values,
        "review": review(values.get("yaml", ""), known),
        "errors": errors or {},
        "versions": [],
        "restoring": None,
        "runs": [],
        "start_url": None,
        "action": base_url(context),
        "check_url": f"{base_url(context)}/check",
    }
    return render(request, "pipelines/editor.html", page, status_code=status_code)


@workspace_required("workspace.work")
async def new_page(request: Request, context: WorkspaceContext) -> Response:
    return await show_new(request, context, values={"yaml": SKELETON, "note": ""})


@workspace_required("workspace.work")
async def create(request: Request, context: WorkspaceContext) -> Response:
    """Save a new pipeline (typed, pasted or loaded from a file); an existing id gets this as its next version."""
    values = await read_yaml_form(request)
    known = await known_agents(request, context)
    draft = service.check(values.get("yaml", ""), known).pipeline
    if draft is not None and draft.id in RESERVED_IDS:
        taken = {"yaml": f"“{draft.id}” is the address of one of these pages; give the pipeline another id."}
        return await show_new(request, context, values=values, errors=taken, status_code=422)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            version = await service.save_pipeline(
                session, yaml=values.get("yaml", ""), actor=context.actor, known_agents=known,
                note=values.get("note", "") or "imported",
            )  # fmt: skip
    except ServiceError as refused:
        errors = _errors_of(refused)
        return await show_new(request, context, values=values, errors=errors, status_code=page_status(refused))
    what = "Created" if version.number == 1 else f"Saved version {version.number} of"
    return redirect_with_flash(request, f"{base_url(context)}/{version.pipeline_id}", f"{what} the pipeline.")


def _errors_of(refused: ServiceError) -> dict[str, str]:
    if isinstance(refused, PipelineRefused):
        count = sum(1 for p in refused.problems if p.severity.value == "error")
        return {"yaml": f"Not saved: {count} problem{'s' if count != 1 else ''} to fix (listed beside the YAML)."}
    if isinstance(refused, Invalid):
        return {"yaml" if key == "_form" else key: text for key, text in refused.errors.items()}
    return {"_form": refused.message}
