"""From positioned YAML nodes to a :class:`~app.pipelines.spec.Pipeline`, reporting every structural problem.

Structure only: types, required and unknown fields, value ranges, id syntax. Whether the pieces fit together
(agents declared, targets existing, loops fed, the graph sound) is ``validate.py``.
"""

from __future__ import annotations

import json
import math
from types import MappingProxyType
from typing import Any, TypeVar, cast

from app.pipelines.fields import OUTPUT_PATTERN, FieldReader, positions, quoted
from app.pipelines.problems import Pos, Problem
from app.pipelines.source import Document, YMap, YNode, YScalar, YSeq, node_type, plain
from app.pipelines.spec import (
    Defaults,
    Loop,
    Notify,
    OutputMethod,
    OutputSchema,
    Pipeline,
    PipelineAgent,
    ResultBranch,
    Step,
    StepType,
    frozen_positions,
)

# Limits a pipeline must stay within. Generous next to DjinnBot's own pipelines (4,800 s timeouts, 3 retries,
# maxTurns 300, 32k output tokens); they exist so one pipeline cannot hold a worker or a budget hostage.
MAX_STEPS = 500
MAX_AGENTS = 100
MAX_RETRIES = 10
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_TURNS = 1000
MAX_OUTPUT_TOKENS = 1_000_000
MAX_TEMPERATURE = 2.0

_TOP = ("id", "name", "version", "description", "defaults", "agents", "steps")
_DEFAULTS = ("model", "tools", "maxRetries", "timeout", "timeoutSeconds", "maxTurns", "maxOutputTokens", "temperature")
_AGENT = ("id", "name", "persona", "model", "tools")
_AGENT_IGNORED = {"thinkingLevel": "DjinnBot drops it too; set thinking on the workspace agent"}
_STEP = (
    "id", "agent", "description", "type", "model", "input", "outputs", "onComplete", "onResult", "loop",
    "maxRetries", "timeoutSeconds", "maxTurns", "maxOutputTokens", "temperature", "outputSchema", "outputMethod",
)  # fmt: skip
_BRANCH = ("goto", "retry", "maxRetries", "notify", "continueLoop")
_NOTIFY = ("agent", "message")
_LOOP = ("over", "onEachComplete", "onAllComplete")
_SCHEMA = ("name", "strict", "schema")
_STEP_TYPES: tuple[StepType, ...] = ("standard", "loop")
_OUTPUT_METHODS: tuple[OutputMethod, ...] = ("response_format", "tool_use")
_C = TypeVar("_C", bound=str)


def parse_document(document: Document) -> tuple[Pipeline | None, list[Problem]]:
    """The pipeline read from ``document`` (``None`` if it is not a mapping at all) and the problems found."""
    reader = FieldReader()
    if document.root is None:
        return None, []
    top = reader.mapping(document.root, "", "a pipeline file")
    if top is None:
        return None, reader.problems
    return _Parser(reader).pipeline(top), reader.problems


class _Parser:
    def __init__(self, reader: FieldReader) -> None:
        self.r = reader

    def pipeline(self, node: YMap) -> Pipeline:
        what = "the pipeline"
        f = self.r.fields(node, "", what, _TOP, required=("id", "name", "version", "agents", "steps"))
        defaults = Defaults()
        if "defaults" in f and (dnode := self.r.mapping(f["defaults"], "defaults", '"defaults"')) is not None:
            defaults = self.defaults(dnode)
        agents = tuple(
            agent
            for index, item in enumerate(self._items(f, "agents", what, MAX_AGENTS))
            if (agent := self.agent(item, f"agents[{index}]")) is not None
        )
        steps_node = f.get("steps")
        steps = tuple(
            step
            for index, item in enumerate(self._items(f, "steps", what, MAX_STEPS))
            if (step := self.step(item, f"steps[{index}]")) is not None
        )
        if isinstance(steps_node, YSeq) and not steps_node.items:
            self.r.error(steps_node.pos, "required", "the pipeline has no steps; it needs at least one", "steps")
        return Pipeline(
            id=self.r.identifier(f, "id", "", what, "pipeline") or "",
            name=self.r.text(f, "name", "", what) or "",
            version=self.r.text(f, "version", "", what) or "",
            description=self.r.text(f, "description", "", what),
            defaults=defaults,
            agents=agents,
            steps=steps,
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )

    def _items(self, f: dict[str, YNode], key: str, what: str, limit: int) -> tuple[YNode, ...]:
        node = f.get(key)
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return ()
        if not isinstance(node, YSeq):
            self.r.error(node.pos, "type", f"{quoted(key)} of {what} must be a list, not {node_type(node)}", key)
            return ()
        if len(node.items) > limit:
            self.r.error(
                node.pos, "range", f"the pipeline has {len(node.items)} {key}; at most {limit} are allowed", key
            )
            return node.items[:limit]
        return node.items

    def defaults(self, node: YMap) -> Defaults:
        r, path, what = self.r, "defaults", '"defaults"'
        f = r.fields(node, path, what, _DEFAULTS)
        timeout = r.number(f, "timeoutSeconds", path, what, 1, MAX_TIMEOUT_SECONDS)
        legacy_timeout = r.number(f, "timeout", path, what, 1, MAX_TIMEOUT_SECONDS)
        at = positions(f)
        if timeout is None and legacy_timeout is not None:
            at["timeoutSeconds"] = at["timeout"]
        return Defaults(
            model=r.text(f, "model", path, what),
            tools=r.text_list(f, "tools", path, what),
            max_retries=r.integer(f, "maxRetries", path, what, 0, MAX_RETRIES),
            timeout_seconds=timeout if timeout is not None else legacy_timeout,
            max_turns=r.integer(f, "maxTurns", path, what, 1, MAX_TURNS),
            max_output_tokens=r.integer(f, "maxOutputTokens", path, what, 1, MAX_OUTPUT_TOKENS),
            temperature=r.number(f, "temperature", path, what, 0, MAX_TEMPERATURE),
            pos=node.pos,
            at=frozen_positions(at),
        )

    def agent(self, item: YNode, path: str) -> PipelineAgent | None:
        node = self.r.mapping(item, path, f"agent {path}")
        if node is None:
            return None
        what = _label(node, "agent", path)
        f = self.r.fields(node, path, what, _AGENT, required=("id", "name"), ignored=_AGENT_IGNORED)
        return PipelineAgent(
            id=self.r.identifier(f, "id", path, what, "agent") or "",
            name=self.r.text(f, "name", path, what) or "",
            persona=self.r.text(f, "persona", path, what),
            model=self.r.text(f, "model", path, what),
            tools=self.r.text_list(f, "tools", path, what) or (),
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )

    def step(self, item: YNode, path: str) -> Step | None:
        r = self.r
        node = r.mapping(item, path, f"step {path}")
        if node is None:
            return None
        what = _label(node, "step", path)
        f = r.fields(node, path, what, _STEP, required=("id", "agent", "input"))
        step_type = self._choice(f, "type", path, what, _STEP_TYPES)
        loop = None
        if "loop" in f and (lnode := r.mapping(f["loop"], f"{path}.loop", f"the loop of {what}")) is not None:
            loop = self.loop(lnode, f"{path}.loop", f"the loop of {what}")
        if step_type == "loop" and loop is None and "loop" not in f:
            r.error(
                f["type"].pos,
                "loop_missing",
                f'{what} has "type: loop" but no "loop" block saying what it loops over',
                f"{path}.type",
            )
        if step_type == "standard" and loop is not None:
            r.warn(
                f["type"].pos,
                "loop_type",
                f'{what} says "type: standard" but has a loop block, so it runs as a loop',
                f"{path}.type",
            )
        schema = None
        schema_what = f"the outputSchema of {what}"
        if (
            "outputSchema" in f
            and (snode := r.mapping(f["outputSchema"], f"{path}.outputSchema", schema_what)) is not None
        ):
            schema = self.output_schema(snode, f"{path}.outputSchema", schema_what)
        return Step(
            id=r.identifier(f, "id", path, what, "step") or "",
            agent=r.text(f, "agent", path, what) or "",
            description=r.text(f, "description", path, what),
            type=step_type,
            model=r.text(f, "model", path, what),
            input=r.text(f, "input", path, what) or "",
            outputs=self._outputs(f, path, what),
            on_complete=r.text(f, "onComplete", path, what),
            on_result=self._branches(f.get("onResult"), f"{path}.onResult", what),
            loop=loop,
            max_retries=r.integer(f, "maxRetries", path, what, 0, MAX_RETRIES),
            timeout_seconds=r.number(f, "timeoutSeconds", path, what, 1, MAX_TIMEOUT_SECONDS),
            max_turns=r.integer(f, "maxTurns", path, what, 1, MAX_TURNS),
            max_output_tokens=r.integer(f, "maxOutputTokens", path, what, 1, MAX_OUTPUT_TOKENS),
            temperature=r.number(f, "temperature", path, what, 0, MAX_TEMPERATURE),
            output_schema=schema,
            output_method=self._choice(f, "outputMethod", path, what, _OUTPUT_METHODS),
            input_span=(inode.start, inode.end) if isinstance(inode := f.get("input"), YScalar) else None,
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )

    def _choice(self, f: dict[str, YNode], key: str, path: str, what: str, choices: tuple[_C, ...]) -> _C | None:
        value = self.r.text(f, key, path, what)
        if value is None:
            return None
        for choice in choices:
            if value == choice:
                return choice
        allowed = " or ".join(quoted(c) for c in choices)
        self.r.error(
            f[key].pos, "choice", f"{quoted(key)} of {what} is {quoted(value)}; it must be {allowed}", f"{path}.{key}"
        )
        return None

    def _outputs(self, f: dict[str, YNode], path: str, what: str) -> tuple[str, ...]:
        names = self.r.text_list(f, "outputs", path, what) or ()
        node = f.get("outputs")
        items = node.items if isinstance(node, YSeq) else ()
        seen: set[str] = set()
        for name, item in zip(
            names, [i for i in items if isinstance(i, YScalar) and i.value is not None], strict=False
        ):
            if not OUTPUT_PATTERN.match(name):
                message = (
                    f"the output name {quoted(name)} of {what} must be letters, digits and '_' "
                    f"(templates use it as {{{{{name}}}}})"
                )
                self.r.error(item.pos, "invalid_output", message, f"{path}.outputs")
            elif name in seen:
                self.r.error(
                    item.pos, "duplicate_output", f"{what} declares the output {quoted(name)} twice", f"{path}.outputs"
                )
            seen.add(name)
        return tuple(dict.fromkeys(names))

    def _branches(self, node: YNode | None, path: str, what: str) -> tuple[ResultBranch, ...]:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return ()
        mapping = self.r.mapping(node, path, f"onResult of {what}")
        if mapping is None:
            return ()
        branches: list[ResultBranch] = []
        seen: dict[str, str] = {}
        for key, value in mapping.items:
            label = key.raw
            normal = label.strip().upper()
            if not normal:
                self.r.error(key.pos, "required", f"an onResult value of {what} is empty", path)
                continue
            if normal in seen:
                message = (
                    f"onResult {quoted(label)} of {what} matches the same values as {quoted(seen[normal])} "
                    "before it, so it never applies"
                )
                self.r.warn(key.pos, "shadowed_result", message, f"{path}.{label}")
            seen.setdefault(normal, label)
            branch = self.branch(value, label, f"{path}.{label}", f"onResult {label} of {what}")
            if branch is not None:
                branches.append(branch)
        return tuple(branches)

    def branch(self, item: YNode, value: str, path: str, what: str) -> ResultBranch | None:
        r = self.r
        node = r.mapping(item, path, what)
        if node is None:
            return None
        f = r.fields(node, path, what, _BRANCH)
        notify = None
        if "notify" in f and (nnode := r.mapping(f["notify"], f"{path}.notify", f"notify of {what}")) is not None:
            nf = r.fields(nnode, f"{path}.notify", f"notify of {what}", _NOTIFY, required=_NOTIFY)
            notify = Notify(
                agent=r.text(nf, "agent", f"{path}.notify", what) or "",
                message=r.text(nf, "message", f"{path}.notify", what) or "",
                pos=nnode.pos,
                at=frozen_positions(positions(nf)),
            )
        branch = ResultBranch(
            value=value,
            goto=r.text(f, "goto", path, what),
            retry=bool(r.boolean(f, "retry", path, what)),
            max_retries=r.integer(f, "maxRetries", path, what, 0, MAX_RETRIES),
            notify=notify,
            continue_loop=bool(r.boolean(f, "continueLoop", path, what)),
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )
        moves = [
            key
            for key, on in (("goto", branch.goto), ("retry", branch.retry), ("continueLoop", branch.continue_loop))
            if on
        ]
        if len(moves) > 1:
            message = f"{what} combines {' and '.join(moves)}; choose one (notify may go with any)"
            r.error(node.pos, "conflicting_actions", message, path)
        if not moves and notify is None:
            message = f"{what} does nothing (no goto, retry, continueLoop or notify); the step's onComplete applies"
            r.warn(node.pos, "empty_action", message, path)
        if branch.max_retries is not None and not branch.retry:
            r.warn(f["maxRetries"].pos, "ignored_field", f'"maxRetries" of {what} only counts with "retry: true"', path)
        return branch

    def loop(self, node: YMap, path: str, what: str) -> Loop:
        f = self.r.fields(node, path, what, _LOOP, required=("over",))
        return Loop(
            over=self.r.text(f, "over", path, what) or "",
            on_each_complete=self.r.text(f, "onEachComplete", path, what),
            on_all_complete=self.r.text(f, "onAllComplete", path, what),
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )

    def output_schema(self, node: YMap, path: str, what: str) -> OutputSchema:
        f = self.r.fields(node, path, what, _SCHEMA, required=("name", "schema"))
        schema_json: str = "{}"
        schema_at: dict[tuple[str | int, ...], Pos] = {}
        snode = f.get("schema")
        if snode is not None and self.r.mapping(snode, f"{path}.schema", f'"schema" of {what}') is not None:
            value = plain(snode)
            if _json_safe(value):
                schema_json = json.dumps(value, allow_nan=False)
                schema_at = _schema_positions(snode, ())
            else:
                message = f'"schema" of {what} holds a value JSON cannot carry (infinity or not-a-number)'
                self.r.error(snode.pos, "type", message, f"{path}.schema")
        return OutputSchema(
            name=self.r.text(f, "name", path, what) or "",
            strict=self.r.boolean(f, "strict", path, what),
            schema_json=schema_json,
            schema_at=MappingProxyType(schema_at),
            pos=node.pos,
            at=frozen_positions(positions(f)),
        )


def _label(node: YMap, kind: str, path: str) -> str:
    """How messages name a step or agent: by its id when it has a usable one, else by its place."""
    for key, value in node.items:
        if key.raw == "id" and isinstance(value, YScalar) and value.value is not None:
            return f"{kind} {quoted(value.raw)}"
    return f"{kind} {path}"


def _json_safe(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_json_safe(v) for v in cast(dict[str, Any], value).values())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return True


def _schema_positions(node: YNode, path: tuple[str | int, ...]) -> dict[tuple[str | int, ...], Pos]:
    found: dict[tuple[str | int, ...], Pos] = {path: node.pos}
    if isinstance(node, YMap):
        for key, value in node.items:
            found.update(_schema_positions(value, (*path, key.raw)))
    elif isinstance(node, YSeq):
        for index, item in enumerate(node.items):
            found.update(_schema_positions(item, (*path, index)))
    return found
