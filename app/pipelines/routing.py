"""What the engine does next, as pure functions of the pipeline and what just happened (inventory 2.4).

The engine owns state (runs, steps, loop items, retry counts); these functions own the rules, so the rules
are tested without a database and read in one place:

* :func:`route_completed_step`: a step completed with these outputs; where does the run go?
* :func:`after_loop_item`: a loop item finished (or a step said ``continueLoop``); what next?
* :func:`route_failed_step`: a step failed; retry it or fail the run?
* :func:`loop_items`: the items of a loop, from the output it goes over.
* :func:`resolve_model` and :func:`step_limits`: the model and limits a step runs with.

Where DjinnBot is silent or surprising we chose, and say so: a branch that only notifies falls through to
``onComplete`` (DjinnBot's run would sit idle), and a branch with ``notify`` and ``goto`` does both
(DjinnBot skips the notification).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from app.pipelines.spec import Notify, Pipeline, ResultBranch, Step

_T = TypeVar("_T")

DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT_SECONDS = 300.0
# DjinnBot's executor default; the pipeline's maxTurns and the workspace's budget are the real limits.
DEFAULT_MAX_TURNS = 999
# Enough for any real task list; a bigger array is more likely a mistake than a plan.
MAX_LOOP_ITEMS = 500


@dataclass(frozen=True, slots=True)
class GoTo:
    step_id: str
    # Why: "onComplete", "goto", "onEachComplete", "onAllComplete" or "next item" (for the run's timeline).
    via: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the same step again if it has been retried fewer than ``max_retries`` times, else fail the run."""

    step_id: str
    max_retries: int


@dataclass(frozen=True, slots=True)
class LoopItemDone:
    """The current item of a loop is done: mark it, then ask :func:`after_loop_item`.

    ``loop_step_id`` is the loop step when it just completed; ``None`` for ``continueLoop``, meaning the
    run's active loop (the engine knows which loop has state). ``from_each_complete`` is true when we come
    back from the loop's ``onEachComplete`` (so it must not be queued again for the same item).
    """

    loop_step_id: str | None
    from_each_complete: bool


@dataclass(frozen=True, slots=True)
class CompleteRun:
    pass


@dataclass(frozen=True, slots=True)
class FailRun:
    error: str


Action = GoTo | Retry | LoopItemDone | CompleteRun | FailRun


@dataclass(frozen=True, slots=True)
class ResultMatch:
    output: str  # the output key whose value matched
    branch: ResultBranch


@dataclass(frozen=True, slots=True)
class Route:
    action: Action
    # Publish this (an AGENT_MESSAGE from the system) before acting.
    notify: Notify | None = None
    matched: ResultMatch | None = None


def match_result(step: Step, outputs: Mapping[str, str]) -> ResultMatch | None:
    """The first ``onResult`` branch matched by an output value, outputs in order, as DjinnBot matches.

    A value matches when, trimmed, it equals the key, or trimmed and upper-cased equals the upper-cased key.
    """
    for key, value in outputs.items():
        trimmed = value.strip()
        normal = trimmed.upper()
        for branch in step.on_result:
            if normal == branch.value.upper() or trimmed == branch.value:
                return ResultMatch(key, branch)
    return None


def route_completed_step(pipeline: Pipeline, step_id: str, outputs: Mapping[str, str]) -> Route:
    """Where the run goes after ``step_id`` completed with ``outputs`` (in the order the agent gave them)."""
    step = pipeline.step(step_id)
    if step is None:
        return Route(FailRun(f"step {step_id} is not in pipeline {pipeline.id}"))
    if step.is_loop:
        # A loop step's onResult is never consulted: its loop block decides.
        return Route(LoopItemDone(step.id, from_each_complete=False))
    matched = match_result(step, outputs)
    if matched is not None:
        branch = matched.branch
        if branch.goto:
            return Route(GoTo(branch.goto, "goto"), branch.notify, matched)
        if branch.retry:
            limit = branch.max_retries if branch.max_retries is not None else step_limits(pipeline, step).max_retries
            return Route(Retry(step.id, limit), branch.notify, matched)
        if branch.continue_loop:
            return Route(LoopItemDone(None, from_each_complete=True), branch.notify, matched)
        return Route(_default_next(pipeline, step), branch.notify, matched)
    return Route(_default_next(pipeline, step))


def _default_next(pipeline: Pipeline, step: Step) -> Action:
    if step.on_complete:
        return GoTo(step.on_complete, "onComplete")
    if step is pipeline.last_step:
        return CompleteRun()
    return FailRun(f"Step {step.id} has no onComplete configured")


def after_loop_item(pipeline: Pipeline, loop_step_id: str, *, from_each_complete: bool, items_left: bool) -> Action:
    """Next, once the current item of loop ``loop_step_id`` is marked done.

    ``items_left``: whether another item remains after the one just finished.
    """
    step = pipeline.step(loop_step_id)
    if step is None or step.loop is None:
        return FailRun(f"step {loop_step_id} is not a loop step")
    if not from_each_complete and step.loop.on_each_complete:
        return GoTo(step.loop.on_each_complete, "onEachComplete")
    if items_left:
        return GoTo(step.id, "next item")
    if step.loop.on_all_complete:
        return GoTo(step.loop.on_all_complete, "onAllComplete")
    if step.on_complete:
        return GoTo(step.on_complete, "onComplete")
    return CompleteRun()


def route_failed_step(pipeline: Pipeline, step_id: str, retry_count: int, error: str) -> Route:
    """After a step failed: :class:`Retry` while ``retry_count`` is under the step's maxRetries, else fail."""
    step = pipeline.step(step_id)
    if step is None:
        return Route(FailRun(f"step {step_id} is not in pipeline {pipeline.id}"))
    limit = step_limits(pipeline, step).max_retries
    if retry_count < limit:
        return Route(Retry(step.id, limit))
    return Route(FailRun(f"Step {step.id} failed after {limit} retries: {error}"))


def retry_context(human_context: str | None, attempt: int, max_retries: int, error: str) -> str:
    """The step's human context for a retry, with the previous error appended (the contract's wording)."""
    return f"{human_context or ''}\n\n[RETRY {attempt}/{max_retries}] Previous attempt failed: {error}"


class LoopItemsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LoopItem:
    id: str  # "{STEP}_item_{index}", as DjinnBot names them
    index: int
    # What {{current_item}} shows: a string item as is, anything else as compact JSON.
    data: str


def loop_items(step_id: str, over: str, value: str | None) -> tuple[LoopItem, ...]:
    """The items of a loop from the text of its ``over`` output, which must hold a JSON array.

    A JSON object with exactly one property holding an array is unwrapped too: structured output must be
    an object at the top (``{"tasks": [...]}``), and a loop over it means the list inside.
    """
    if value is None or not value.strip():
        raise LoopItemsError(f"Loop variable {over} not found")
    try:
        data: Any = json.loads(value)
    except ValueError:
        raise LoopItemsError(f"Loop variable {over} is not a valid JSON array") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))
    if not isinstance(data, list):
        raise LoopItemsError(f"Loop variable {over} is not a valid JSON array")
    if len(data) > MAX_LOOP_ITEMS:
        raise LoopItemsError(f"Loop variable {over} has {len(data)} items; a loop may have at most {MAX_LOOP_ITEMS}")
    return tuple(
        LoopItem(f"{step_id}_item_{index}", index, item if isinstance(item, str) else json.dumps(item))
        for index, item in enumerate(data)
    )


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: str
    # Which rule chose it: "run", "step", "pipeline agent", "pipeline defaults", "workspace agent", "platform".
    source: str


def resolve_model(
    pipeline: Pipeline,
    step_id: str,
    *,
    platform_default: str,
    run_override: str | None = None,
    workspace_agent_model: str | None = None,
) -> ResolvedModel:
    """The model a step runs on: run override > step.model > pipeline agent model > defaults.model >
    the workspace agent's model > the platform default. Blank values are skipped."""
    step = pipeline.step(step_id)
    agent = pipeline.agent(step.agent) if step is not None else None
    candidates = (
        (run_override, "run"),
        (step.model if step else None, "step"),
        (agent.model if agent else None, "pipeline agent"),
        (pipeline.defaults.model, "pipeline defaults"),
        (workspace_agent_model, "workspace agent"),
    )
    for model, source in candidates:
        if model and model.strip():
            return ResolvedModel(model.strip(), source)
    return ResolvedModel(platform_default, "platform")


@dataclass(frozen=True, slots=True)
class StepLimits:
    timeout_seconds: float
    max_retries: int
    max_turns: int
    max_output_tokens: int | None  # None: the provider's own default
    temperature: float | None  # None: the provider's own default
    tools: tuple[str, ...] | None  # None: the workspace agent's own tools


def step_limits(pipeline: Pipeline, step: Step) -> StepLimits:
    """The step's own value, else the pipeline's ``defaults``, else the contract's default."""
    d = pipeline.defaults
    agent = pipeline.agent(step.agent)
    return StepLimits(
        timeout_seconds=_first(step.timeout_seconds, d.timeout_seconds, DEFAULT_TIMEOUT_SECONDS),
        max_retries=_first(step.max_retries, d.max_retries, DEFAULT_MAX_RETRIES),
        max_turns=_first(step.max_turns, d.max_turns, DEFAULT_MAX_TURNS),
        max_output_tokens=step.max_output_tokens if step.max_output_tokens is not None else d.max_output_tokens,
        temperature=step.temperature if step.temperature is not None else d.temperature,
        tools=agent.tools if agent is not None and agent.tools else d.tools,
    )


def _first(value: _T | None, default: _T | None, fallback: _T) -> _T:
    if value is not None:
        return value
    return default if default is not None else fallback
