"""``/workspaces/{slug}/pipelines``: JSON twins of the pipeline pages (list, read, create or import, save a new
version, validate, versions, export, delete, the starters), calling the same services.

A pipeline that does not validate is a 422 whose ``details.problems`` lists every problem with its line and
column, as the editor shows them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from starlette.responses import Response

from app.agents import service as agents
from app.api.errors import ApiError
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import Scope
from app.api.schemas import Body, page_of
from app.errors import NotFound
from app.onboarding.first_run import agents_needed, ensure_starter
from app.pipelines import service
from app.pipelines.models import PipelineRecord, PipelineVersion
from app.pipelines.problems import Problem, Severity
from app.pipelines.service import PipelineRefused
from app.pipelines.starters import load_starter, starter_ids
from app.web.state import db_of, workspace_changes

TAGS = ["Pipelines"]
# The API body limit is 64 KB (app.api.operations); a pipeline is a few KB.
MAX_YAML = 60_000


class PipelineProblem(BaseModel):
    line: int
    column: int
    severity: str = Field(description="`error` (the pipeline cannot be saved or run) or `warning`.")
    code: str = Field(description="A stable name of the kind of problem, e.g. `unknown_step`.")
    message: str
    path: str = Field(description="Where in the document, e.g. `steps[2].onResult.APPROVED.goto`.")


class PipelineOut(BaseModel):
    id: str
    name: str
    description: str
    current_version: int
    created_at: datetime
    updated_at: datetime


class PipelineDetail(PipelineOut):
    yaml: str = Field(description="The YAML of the current version.")


class PipelineVersionOut(BaseModel):
    pipeline_id: str
    number: int
    created_by: str = Field(description="Who saved it, as shown in the version list.")
    note: str
    created_at: datetime


class PipelineVersionDetail(PipelineVersionOut):
    yaml: str


PipelineList = page_of(PipelineOut, "PipelineList")


class PipelineVersionList(BaseModel):
    data: list[PipelineVersionOut]


class PipelineSource(Body):
    yaml: str = Field(min_length=1, max_length=MAX_YAML, description="The pipeline as YAML (DjinnBot's format).")
    note: str = Field("", max_length=200, description="Why this version, shown in the version list.")


class PipelineDraft(Body):
    yaml: str = Field(max_length=MAX_YAML)


class PipelineValidation(BaseModel):
    valid: bool = Field(description="True when the pipeline could be saved and run in this workspace.")
    problems: list[PipelineProblem]


class PipelineStarterOut(BaseModel):
    id: str
    name: str
    description: str
    steps: int
    agents: list[str] = Field(description="The agent ids it names (added from the roster when missing).")


class PipelineStarterList(BaseModel):
    data: list[PipelineStarterOut]


class PipelineStarterAdd(Body):
    starter: str = Field(max_length=64, description="A starter's id, e.g. `engineering`.")


class PipelineStarterAdded(BaseModel):
    pipeline: PipelineOut
    added: bool = Field(description="False when the workspace already had it (left unchanged).")
    agents_added: list[str]


def problem_out(problem: Problem) -> PipelineProblem:
    return PipelineProblem(
        line=problem.line,
        column=problem.column,
        severity=problem.severity.value,
        code=problem.code,
        message=problem.message,
        path=problem.path,
    )


def pipeline_out(record: PipelineRecord) -> PipelineOut:
    return PipelineOut(
        id=record.id,
        name=record.name,
        description=record.description,
        current_version=record.current_version,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def version_out(version: PipelineVersion) -> PipelineVersionOut:
    return PipelineVersionOut(
        pipeline_id=version.pipeline_id,
        number=version.number,
        created_by=version.created_by_label,
        note=version.note,
        created_at=version.created_at,
    )


def refusal(refused: PipelineRefused) -> ApiError:
    """Every problem of a refused pipeline, each with its place (and the first few as field errors)."""
    errors = [p for p in refused.problems if p.severity is Severity.ERROR]
    count = len(errors)
    return ApiError(
        422,
        f"The pipeline is not valid: {count} problem{'s' if count != 1 else ''}.",
        code="pipeline_invalid",
        details={
            "errors": [{"field": "yaml", "message": str(p)} for p in errors],
            "problems": [problem_out(p).model_dump() for p in refused.problems],
        },
    )


def _number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise ApiError(404, "No such version of this pipeline.")
    return int(raw)


async def _known_agents(call: Call) -> set[str]:
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        return {agent.id for agent in await agents.list_agents(session)}


@api_route(
    "GET", "/workspaces/{slug}/pipelines", scope=Scope.READ, permission="workspace.view", query=PageQuery,
    response=PipelineList, summary="List pipelines", tags=TAGS,
)  # fmt: skip
async def list_workspace_pipelines(call: Call) -> BaseModel:
    """The workspace's pipelines, by name."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        pipelines = await service.list_pipelines(session)
    page = paginate(pipelines, lambda p: (p.name.lower(), p.id), (str, str), call.query)
    return envelope(PipelineList, page, pipeline_out)


@api_route(
    "GET", "/workspaces/{slug}/pipelines/{pipeline}", scope=Scope.READ, permission="workspace.view",
    response=PipelineDetail, summary="Get a pipeline", tags=TAGS,
)  # fmt: skip
async def get_workspace_pipeline(call: Call) -> PipelineDetail:
    """A pipeline with the YAML of its current version."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        record = await service.get_pipeline(session, call.params["pipeline"])
        version = await service.get_version(session, record.id)
    return PipelineDetail(**pipeline_out(record).model_dump(), yaml=version.yaml)


async def _save(call: Call, body: PipelineSource, editing: str | None) -> PipelineVersionOut:
    known = await _known_agents(call)
    try:
        async with workspace_changes(call.request, call.workspace.workspace.id) as session:
            if editing is not None:
                await service.get_pipeline(session, editing)
            version = await service.save_pipeline(
                session, yaml=body.yaml, actor=call.workspace.actor, known_agents=known, note=body.note,
                editing=editing,
            )  # fmt: skip
    except PipelineRefused as refused:
        raise refusal(refused) from None
    return version_out(version)


@api_route(
    "POST", "/workspaces/{slug}/pipelines", scope=Scope.WRITE, permission="workspace.work", body=PipelineSource,
    response=PipelineVersionOut, status=201, summary="Create or import a pipeline", tags=TAGS,
)  # fmt: skip
async def create_workspace_pipeline(call: Call) -> PipelineVersionOut:
    """Save a pipeline from its YAML: a new pipeline, or the next version of the one with the YAML's id."""
    return await _save(call, call.body, None)


@api_route(
    "PUT", "/workspaces/{slug}/pipelines/{pipeline}", scope=Scope.WRITE, permission="workspace.work",
    body=PipelineSource, response=PipelineVersionOut, summary="Save a new version of a pipeline", tags=TAGS,
)  # fmt: skip
async def update_workspace_pipeline(call: Call) -> PipelineVersionOut:
    """Save the YAML as the pipeline's next version; its id must stay the pipeline's."""
    return await _save(call, call.body, call.params["pipeline"])


@api_route(
    "POST", "/workspaces/{slug}/pipelines/validate", scope=Scope.READ, permission="workspace.work",
    body=PipelineDraft, response=PipelineValidation, summary="Validate a pipeline", tags=TAGS,
)  # fmt: skip
async def validate_workspace_pipeline(call: Call) -> PipelineValidation:
    """Every problem of a draft (with its line and column), including agents this workspace lacks; saves nothing."""
    checked = service.check(call.body.yaml, await _known_agents(call))
    return PipelineValidation(valid=checked.ok, problems=[problem_out(p) for p in checked.problems])


@api_route(
    "GET", "/workspaces/{slug}/pipelines/{pipeline}/versions", scope=Scope.READ, permission="workspace.view",
    response=PipelineVersionList, summary="List a pipeline's versions", tags=TAGS,
)  # fmt: skip
async def list_pipeline_versions(call: Call) -> PipelineVersionList:
    """Every saved version, newest first."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        versions = await service.list_versions(session, call.params["pipeline"])
    return PipelineVersionList(data=[version_out(v) for v in versions])


@api_route(
    "GET", "/workspaces/{slug}/pipelines/{pipeline}/versions/{number}", scope=Scope.READ,
    permission="workspace.view", response=PipelineVersionDetail, summary="Get a version of a pipeline", tags=TAGS,
)  # fmt: skip
async def get_pipeline_version(call: Call) -> PipelineVersionDetail:
    """One saved version with its YAML."""
    number = _number(call.params["number"])
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        version = await service.get_version(session, call.params["pipeline"], number)
    return PipelineVersionDetail(**version_out(version).model_dump(), yaml=version.yaml)


class PipelineExportQuery(BaseModel):
    version: int | None = Field(None, ge=1, le=999_999_999, description="A version's number; omit: the current.")


@api_route(
    "GET", "/workspaces/{slug}/pipelines/{pipeline}/export", scope=Scope.READ, permission="workspace.view",
    query=PipelineExportQuery, summary="Export a pipeline as YAML", tags=TAGS,
)  # fmt: skip
async def export_workspace_pipeline(call: Call) -> Response:
    """The YAML of the current version (or ``?version=``), as ``application/yaml``: it imports unchanged."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        version = await service.get_version(session, call.params["pipeline"], call.query.version)
    name = f"{version.pipeline_id}.yml"
    return Response(
        version.yaml,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@api_route(
    "DELETE", "/workspaces/{slug}/pipelines/{pipeline}", scope=Scope.WRITE, permission="workspace.work",
    summary="Delete a pipeline", tags=TAGS,
)  # fmt: skip
async def delete_workspace_pipeline(call: Call) -> None:
    """Delete a pipeline and all its versions; runs keep their history."""
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        await service.delete_pipeline(session, call.params["pipeline"], call.workspace.actor)


def starter_out(starter_id: str) -> PipelineStarterOut:
    pipeline = load_starter(starter_id)
    return PipelineStarterOut(
        id=starter_id,
        name=pipeline.name,
        description=pipeline.description or "",
        steps=len(pipeline.steps),
        agents=list(agents_needed(starter_id)),
    )


@api_route(
    "GET", "/workspaces/{slug}/pipeline-starters", scope=Scope.READ, permission="workspace.view",
    response=PipelineStarterList, summary="List the starter pipelines", tags=TAGS,
)  # fmt: skip
async def list_pipeline_starters(call: Call) -> PipelineStarterList:
    """The pipelines Marid ships, written for its starter roster of agents."""
    return PipelineStarterList(data=[starter_out(starter_id) for starter_id in starter_ids()])


@api_route(
    "POST", "/workspaces/{slug}/pipeline-starters", scope=Scope.WRITE, permission="workspace.work",
    body=PipelineStarterAdd, response=PipelineStarterAdded, status=201, summary="Add a starter pipeline", tags=TAGS,
)  # fmt: skip
async def add_pipeline_starter(call: Call) -> PipelineStarterAdded:
    """Add a starter and the roster agents it names that the workspace lacks, all or nothing."""
    if call.body.starter not in starter_ids():
        raise NotFound("No such starter pipeline.")
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        ready = await ensure_starter(session, call.body.starter, call.workspace.actor)
    return PipelineStarterAdded(
        pipeline=pipeline_out(ready.pipeline),
        added=ready.pipeline_added,
        agents_added=[agent.id for agent in ready.agents_added],
    )
