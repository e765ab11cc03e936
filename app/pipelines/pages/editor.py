"""A pipeline's page: its YAML in the editor with live validation and the step graph, save (a new version),
versions (each viewable, with its diff to the one before), export as a file, and delete."""

from __future__ import annotations

import difflib
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.errors import NotFound, ServiceError
from app.pipelines import service
from app.pipelines.models import PipelineRecord
from app.pipelines.pages.common import base_url, known_agents, pipeline_or_404, read_yaml_form, review
from app.pipelines.pages.listing import _errors_of
from app.pipelines.pages.runs_hook import pipeline_runs
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, workspace_changes
from app.web.templating import render, render_block

TEMPLATE = "pipelines/editor.html"


async def show_editor(
    request: Request,
    context: WorkspaceContext,
    pipeline: PipelineRecord,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        versions = await service.list_versions(session, pipeline.id)
        source = request.query_params.get("from_version", "")
        chosen = next((v for v in versions if source.isdigit() and v.number == int(source)), None)
    if values is None:
        current = chosen or versions[0]
        values = {"yaml": current.yaml, "note": f"restored version {chosen.number}" if chosen else ""}
    known = await known_agents(request, context)
    page: dict[str, Any] = {
        "pipeline": pipeline,
        "values": values,
        "review": review(values.get("yaml", ""), known),
        "errors": errors or {},
        "versions": versions,
        "restoring": chosen,
        "action": f"{base_url(context)}/{pipeline.id}",
        "check_url": f"{base_url(context)}/check",
        **await pipeline_runs(request, context, pipeline),
    }
    return render(request, TEMPLATE, page, status_code=status_code)


@workspace_required("workspace.view")
async def pipeline_page(request: Request, context: WorkspaceContext) -> Response:
    return await show_editor(request, context, await pipeline_or_404(request, context))


@workspace_required("workspace.work")
async def check(request: Request, context: WorkspaceContext) -> Response:
    """The live check of the draft as typed (htmx swaps it beside the editor); saves nothing."""
    values = await read_yaml_form(request)
    page = {"review": review(values.get("yaml", ""), await known_agents(request, context))}
    return HTMLResponse(render_block(request, TEMPLATE, "check", page), headers={"Cache-Control": "no-store"})


@workspace_required("workspace.work")
async def save(request: Request, context: WorkspaceContext) -> Response:
    pipeline = await pipeline_or_404(request, context)
    values = await read_yaml_form(request)
    known = await known_agents(request, context)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            version = await service.save_pipeline(
                session, yaml=values.get("yaml", ""), actor=context.actor, known_agents=known,
                note=values.get("note", ""), editing=pipeline.id,
            )  # fmt: skip
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        return await show_editor(
            request, context, pipeline, values=values, errors=_errors_of(refused), status_code=page_status(refused)
        )
    return redirect_with_flash(request, f"{base_url(context)}/{pipeline.id}", f"Saved version {version.number}.")


@workspace_required("workspace.work")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    pipeline = await pipeline_or_404(request, context)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            gone = await service.delete_pipeline(session, pipeline.id, context.actor)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    return redirect_with_flash(request, base_url(context), f"Deleted the pipeline {gone.name}.")


def _version_number(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and 0 < len(raw) < 10 else None


@workspace_required("workspace.view")
async def export(request: Request, context: WorkspaceContext) -> Response:
    """The YAML of the current version (or ``?version=N``) as a file to download."""
    pipeline = await pipeline_or_404(request, context)
    raw = request.query_params.get("version", "")
    number = _version_number(raw)
    if raw and number is None:
        raise HTTPException(404, "No such version of this pipeline.")
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            version = await service.get_version(session, pipeline.id, number)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    name = f"{pipeline.id}.yml" if number is None else f"{pipeline.id}-v{version.number}.yml"
    return Response(
        version.yaml,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def diff_lines(before: str, after: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, text) lines: kind is ``add``, ``del``, ``hunk`` or ``same``."""
    lines: list[tuple[str, str]] = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines


@workspace_required("workspace.view")
async def version_page(request: Request, context: WorkspaceContext) -> Response:
    """One version: its YAML, and what changed from another version (the one before, or ``?against=N``)."""
    pipeline = await pipeline_or_404(request, context)
    number = _version_number(request.path_params["number"])
    against_raw = request.query_params.get("against", "")
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            if number is None:
                raise NotFound("No such version of this pipeline.")
            version = await service.get_version(session, pipeline.id, number)
            versions = await service.list_versions(session, pipeline.id)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    against_number = _version_number(against_raw) if against_raw else None
    others = {v.number: v for v in versions if v.number != version.number}
    if against_number is None or against_number not in others:
        against_number = max((n for n in others if n < version.number), default=None)
    against = others.get(against_number) if against_number is not None else None
    page = {
        "pipeline": pipeline,
        "version": version,
        "versions": versions,
        "against": against,
        "diff": diff_lines(against.yaml, version.yaml) if against else [],
    }
    return render(request, "pipelines/version.html", page)
