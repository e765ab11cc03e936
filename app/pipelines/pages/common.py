"""What the pipeline pages share: the workspace's agent ids (a pipeline's agents must be among them), reading a
pipeline or a 404, the YAML field's limit, and the live check (problems with their places, the step graph)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.agents import service as agents
from app.errors import NotFound
from app.pipelines import service
from app.pipelines.models import PipelineRecord
from app.pipelines.problems import Problem, Severity
from app.pipelines.svg import render_svg
from app.tenants.context import WorkspaceContext
from app.web.forms import read_form
from app.web.state import db_of

logger = logging.getLogger("marid.pipelines")

# A pipeline file is a few KB; 128 KB leaves room for long prompts and still fits the CSRF check's 1 MB form.
MAX_YAML_CHARS = 128 * 1024
NOTE_CHARS = 200
# Page addresses under /pipelines/ that a pipeline id would shadow (its page could not be reached).
RESERVED_IDS = frozenset({"new", "check", "starters"})


def base_url(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/pipelines"


async def known_agents(request: Request, context: WorkspaceContext) -> set[str]:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        return {agent.id for agent in await agents.list_agents(session)}


async def pipeline_or_404(request: Request, context: WorkspaceContext) -> PipelineRecord:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            return await service.get_pipeline(session, request.path_params["pipeline"])
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None


async def read_yaml_form(request: Request) -> dict[str, str]:
    """The editor's fields; a YAML over the limit arrives as empty text (the check then says it is missing)."""
    values = await read_form(request, max_chars=MAX_YAML_CHARS)
    values["note"] = values.get("note", "")[:NOTE_CHARS]
    return values


@dataclass(frozen=True)
class Review:
    """What the editor shows beside a draft: its problems (errors first in count), and its graph if it parses."""

    problems: tuple[Problem, ...]
    graph: Markup | None
    ok: bool

    @property
    def errors(self) -> int:
        return sum(p.severity is Severity.ERROR for p in self.problems)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors


def review(yaml: str, known: set[str]) -> Review:
    checked = service.check(yaml, known)
    graph: Markup | None = None
    if checked.pipeline is not None:
        try:
            # The SVG escapes every name it draws (app.pipelines.svg), so it is safe to place as markup.
            graph = Markup(render_svg(checked.pipeline, id_prefix="editor"))
        except Exception:  # a half-typed draft must never break the editor: show the problems without a graph
            logger.exception("drawing a draft pipeline failed")
    return Review(checked.problems, graph, checked.ok)
