"""Pipelines as a pure library: DjinnBot-compatible YAML, validation, templates, routing rules, the step graph.

No database, no HTTP: the engine (arq jobs), the editor pages and the API build on these functions.

* ``load_pipeline(yaml) -> LoadResult``: parse and validate, every problem with line and column.
* ``check_workspace_agents(pipeline, ids)``: the pipeline's agents that the workspace lacks.
* ``render_template`` / ``parse_template``: ``{{var}}`` and ``{% if var %}``, not Jinja.
* ``route_completed_step``, ``after_loop_item``, ``route_failed_step``, ``loop_items``, ``resolve_model``,
  ``step_limits``: what the engine does next.
* ``render_svg(pipeline, statuses)``: the step graph.
"""

from app.pipelines.checks import check_workspace_agents
from app.pipelines.graph import END, Edge, EdgeKind, step_edges
from app.pipelines.problems import Pos, Problem, Severity
from app.pipelines.routing import (
    Action,
    CompleteRun,
    FailRun,
    GoTo,
    LoopItem,
    LoopItemDone,
    LoopItemsError,
    ResolvedModel,
    Retry,
    Route,
    StepLimits,
    after_loop_item,
    loop_items,
    resolve_model,
    retry_context,
    route_completed_step,
    route_failed_step,
    step_limits,
)
from app.pipelines.spec import Defaults, Loop, Notify, OutputSchema, Pipeline, PipelineAgent, ResultBranch, Step
from app.pipelines.svg import render_svg
from app.pipelines.templates import BUILTIN_VARIABLES, TemplateSyntaxError, parse_template, render_template
from app.pipelines.validate import LoadResult, PipelineInvalid, load_pipeline, load_valid_pipeline

__all__ = [
    "BUILTIN_VARIABLES",
    "END",
    "Action",
    "CompleteRun",
    "Defaults",
    "Edge",
    "EdgeKind",
    "FailRun",
    "GoTo",
    "LoadResult",
    "Loop",
    "LoopItem",
    "LoopItemDone",
    "LoopItemsError",
    "Notify",
    "OutputSchema",
    "Pipeline",
    "PipelineAgent",
    "PipelineInvalid",
    "Pos",
    "Problem",
    "ResolvedModel",
    "ResultBranch",
    "Retry",
    "Route",
    "Severity",
    "Step",
    "StepLimits",
    "TemplateSyntaxError",
    "after_loop_item",
    "check_workspace_agents",
    "load_pipeline",
    "load_valid_pipeline",
    "loop_items",
    "parse_template",
    "render_svg",
    "render_template",
    "resolve_model",
    "retry_context",
    "route_completed_step",
    "route_failed_step",
    "step_edges",
    "step_limits",
]
