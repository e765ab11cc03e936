"""Cross-reference checks: ids unique, agents declared, targets existing, structured output and templates sound.

Each check appends :class:`Problem` objects and never stops early: the editor shows everything at once.
The graph checks (reachability, loops fed, cycles) are in ``validate.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from app.pipelines.fields import quoted
from app.pipelines.problems import Pos, Problem, error, warning
from app.pipelines.source import Document
from app.pipelines.spec import OutputSchema, Pipeline, Step
from app.pipelines.templates import BUILTIN_VARIABLES, Template, TemplateSyntaxError, parse_template


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {quoted(close[0])}?)" if close else ""


def check_duplicates(pipeline: Pipeline, problems: list[Problem]) -> None:
    steps = [(s.id, s.where("id")) for s in pipeline.steps]
    agents = [(a.id, a.where("id")) for a in pipeline.agents]
    for kind, items, path in (("step", steps, "steps"), ("agent", agents, "agents")):
        first: dict[str, Pos] = {}
        for index, (item_id, pos) in enumerate(items):
            if not item_id:
                continue
            if item_id in first:
                message = f"the {kind} id {quoted(item_id)} is used twice (first on line {first[item_id].line})"
                problems.append(error(pos, f"duplicate_{kind}", message, f"{path}[{index}].id"))
            else:
                first[item_id] = pos


def check_references(pipeline: Pipeline, problems: list[Problem]) -> None:
    """Every agent, notify agent and step target named in a step exists in this pipeline."""
    agents = [a.id for a in pipeline.agents if a.id]
    steps = [s.id for s in pipeline.steps if s.id]

    def target(owner: Step, key: str, value: str | None, pos: Pos, path: str, what: str) -> None:
        if value is not None and value not in steps:
            message = (
                f"{what} of step {quoted(owner.id)} goes to {quoted(value)}, "
                f"which is not a step of this pipeline{_suggest(value, steps)}"
            )
            problems.append(error(pos, "unknown_step", message, f"{path}.{key}"))

    for index, step in enumerate(pipeline.steps):
        path = f"steps[{index}]"
        if step.agent and step.agent not in agents:
            message = (
                f"step {quoted(step.id)} is run by agent {quoted(step.agent)}, which is not declared under "
                f'"agents"{_suggest(step.agent, agents)}'
            )
            problems.append(error(step.where("agent"), "unknown_agent", message, f"{path}.agent"))
        target(step, "onComplete", step.on_complete, step.where("onComplete"), path, "onComplete")
        if step.loop is not None:
            loop, lpath = step.loop, f"{path}.loop"
            target(
                step,
                "onEachComplete",
                loop.on_each_complete,
                loop.where("onEachComplete"),
                lpath,
                "loop.onEachComplete",
            )
            target(
                step, "onAllComplete", loop.on_all_complete, loop.where("onAllComplete"), lpath, "loop.onAllComplete"
            )
        for branch in step.on_result:
            bpath = f"{path}.onResult.{branch.value}"
            target(step, "goto", branch.goto, branch.where("goto"), bpath, f"onResult {branch.value}")
            notify = branch.notify
            if notify is not None and notify.agent and notify.agent not in agents:
                message = (
                    f"onResult {branch.value} of step {quoted(step.id)} notifies agent {quoted(notify.agent)}, "
                    f'which is not declared under "agents"{_suggest(notify.agent, agents)}'
                )
                problems.append(error(notify.where("agent"), "unknown_notify_agent", message, f"{bpath}.notify.agent"))


def check_step_shapes(pipeline: Pipeline, problems: list[Problem]) -> None:
    """Fields that are legal alone but meaningless (or fatal) together."""
    last = pipeline.last_step
    for index, step in enumerate(pipeline.steps):
        path = f"steps[{index}]"
        name = quoted(step.id)
        if step.is_loop:
            if step.on_result:
                message = f"onResult of loop step {name} is ignored: a loop step moves on through its loop block"
                problems.append(warning(step.where("onResult"), "ignored_field", message, f"{path}.onResult"))
            if step.loop is not None and step.loop.on_all_complete and step.on_complete:
                message = f"onComplete of loop step {name} is never used: loop.onAllComplete says where to go instead"
                problems.append(warning(step.where("onComplete"), "ignored_field", message, f"{path}.onComplete"))
        elif step is not last and not step.on_complete and not step.on_result:
            message = (
                f"step {name} is not the last step and has no onComplete or onResult, "
                "so the run would fail after it (no onComplete configured)"
            )
            problems.append(error(step.pos, "no_next_step", message, path))
        if step.output_method is not None and step.output_schema is None:
            message = f"outputMethod of step {name} only applies to a step with an outputSchema"
            problems.append(warning(step.where("outputMethod"), "ignored_field", message, f"{path}.outputMethod"))


def check_output_schemas(pipeline: Pipeline, problems: list[Problem]) -> None:
    for index, step in enumerate(pipeline.steps):
        if step.output_schema is not None:
            _check_output_schema(step, step.output_schema, f"steps[{index}].outputSchema", problems)


def _check_output_schema(step: Step, spec: OutputSchema, path: str, problems: list[Problem]) -> None:
    schema = spec.schema
    name = quoted(step.id)
    declared = schema.get("$schema")
    cls: Any = (
        validator_for(schema, default=Draft202012Validator) if isinstance(declared, str) else Draft202012Validator
    )
    found = sorted(cls(cls.META_SCHEMA).iter_errors(schema), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for err in found:
        where = tuple(err.absolute_path)
        while where not in spec.schema_at and where:
            where = where[:-1]
        detail = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        location = "/".join(str(p) for p in err.absolute_path) or "the top level"
        message = f"the outputSchema of step {name} is not a valid JSON Schema at {location}: {detail}"
        problems.append(
            error(spec.schema_at.get(where, spec.where("schema")), "output_schema", message, f"{path}.schema")
        )
    if found:
        return
    if not step.outputs:
        message = f"step {name} has an outputSchema but declares no outputs to receive the result"
        problems.append(error(step.where("outputSchema"), "schema_outputs", message, path))
        return
    if len(step.outputs) == 1:
        return  # the whole JSON document goes into the only output
    properties = schema.get("properties")
    props = list(properties) if isinstance(properties, dict) else []
    for output in step.outputs:
        if output not in props:
            message = (
                f"output {quoted(output)} of step {name} is not a top-level property of its outputSchema, so it "
                f"would stay empty (properties: {', '.join(props) or 'none'})"
            )
            problems.append(error(step.where("outputs"), "schema_outputs", message, path))
    for prop in props:
        if prop not in step.outputs:
            message = f"the outputSchema property {quoted(prop)} of step {name} is not among its outputs and is dropped"
            problems.append(
                warning(spec.schema_at.get(("properties", prop), spec.pos), "schema_outputs", message, path)
            )


def check_templates(pipeline: Pipeline, document: Document, problems: list[Problem]) -> None:
    """Template syntax (errors) and variables nothing provides (warnings), placed inside the template."""
    known = set(BUILTIN_VARIABLES) | {output for step in pipeline.steps for output in step.outputs}
    for index, step in enumerate(pipeline.steps):
        path = f"steps[{index}].input"
        locate = _Locator(document, step)
        try:
            template: Template = parse_template(step.input)
        except TemplateSyntaxError as exc:
            where = locate(step.input[exc.offset : exc.offset + exc.length], exc.offset)
            problems.append(
                error(where, "template_syntax", f"in the input of step {quoted(step.id)}: {exc.message}", path)
            )
            continue
        for tag in template.unknown_tags:
            message = (
                f"{tag.text} in the input of step {quoted(step.id)} is not a template tag here "
                "(only {% if name %}, {% else %} and {% endif %}); it is kept as written"
            )
            problems.append(warning(locate(tag.text, tag.offset), "template_tag", message, path))
        reported: set[str] = set()
        for use in template.variables():
            if use.name in known or use.name in reported:
                continue
            reported.add(use.name)
            message = (
                f"the input of step {quoted(step.id)} uses {quoted(use.name)}, which no step outputs and the run "
                f"does not provide, so it is always empty{_suggest(use.name, known)}"
            )
            text = step.input[use.offset : use.offset + use.length]
            problems.append(warning(locate(text, use.offset), "template_variable", message, path))


class _Locator:
    """Finds a piece of a template in the source to give its own line and column.

    The template was unescaped and unindented by YAML, so offsets differ from the source; the piece's text
    itself (a ``{{var}}`` or ``{% tag %}``) is almost always written verbatim, so we look for its n-th
    occurrence within the scalar's source span, and fall back to where the value starts.
    """

    def __init__(self, document: Document, step: Step) -> None:
        self.document, self.step = document, step

    def __call__(self, piece: str, offset: int) -> Pos:
        span = self.step.input_span
        fallback = self.step.where("input")
        if span is None or not piece:
            return fallback
        nth = self.step.input.count(piece, 0, offset)
        source = self.document.text[span[0] : span[1]]
        found = -1
        for _ in range(nth + 1):
            found = source.find(piece, found + 1)
            if found < 0:
                return fallback
        return self.document.pos_at(span[0] + found)


def check_workspace_agents(pipeline: Pipeline, known_agent_ids: Collection[str]) -> list[Problem]:
    """Errors for the pipeline's agents that are not agents of the workspace (matched by id, as in DjinnBot)."""
    problems: list[Problem] = []
    for index, agent in enumerate(pipeline.agents):
        if not agent.id or agent.id in known_agent_ids:
            continue
        users = [s.id for s in pipeline.steps if s.agent == agent.id]
        used = f" (it runs {', '.join(users)})" if users else ""
        message = (
            f"agent {quoted(agent.id)} is not an agent of this workspace{used}; create it or change the id"
            f"{_suggest(agent.id, known_agent_ids)}"
        )
        problems.append(error(agent.where("id"), "workspace_agent", message, f"agents[{index}].id"))
    return problems
