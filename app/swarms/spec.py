"""A swarm request (DjinnBot's swarm DAG shape, §2.6) and its validation: pure, no I/O.

A request names an agent, a list of tasks (``key, title, execution_prompt, dependencies[], model,
timeout_seconds``, plus ``max_retries``), ``max_concurrent``, ``global_timeout_seconds`` and
``deviation_rules``. :func:`parse_request` reports every problem at once (each with the field it is about), so
the composer, the API and the CLI can show them all together; :func:`preview` says what the DAG looks like
(depth, roots, the layer of each task) and warns about things that are legal but probably unintended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_AGENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class SwarmLimits:
    """What a workspace allows (its swarm settings); the defaults are the platform's."""

    max_tasks: int = 500
    max_concurrent: int = 32
    min_task_timeout: int = 30
    max_task_timeout: int = 3600
    min_global_timeout: int = 60
    max_global_timeout: int = 24 * 3600
    max_retries: int = 5
    max_prompt_chars: int = 50_000


DEFAULT_LIMITS = SwarmLimits()
DEFAULT_MAX_CONCURRENT = 3
DEFAULT_GLOBAL_TIMEOUT = 1800
DEFAULT_TASK_TIMEOUT = 300
DEFAULT_MAX_RETRIES = 1


@dataclass(frozen=True)
class TaskSpec:
    key: str
    title: str
    execution_prompt: str
    dependencies: tuple[str, ...] = ()
    model: str | None = None
    timeout_seconds: int = DEFAULT_TASK_TIMEOUT
    # Attempts after the first when the task fails (a sandbox error, a ``fail``, a timeout).
    max_retries: int = DEFAULT_MAX_RETRIES

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "execution_prompt": self.execution_prompt,
            "dependencies": list(self.dependencies),
            "model": self.model,
            "timeout_seconds": self.timeout_seconds,
            "max_retries": self.max_retries,
        }


@dataclass(frozen=True)
class SwarmSpec:
    agent_id: str
    tasks: tuple[TaskSpec, ...]
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    global_timeout_seconds: int = DEFAULT_GLOBAL_TIMEOUT
    deviation_rules: str = ""
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "title": self.title,
            "max_concurrent": self.max_concurrent,
            "global_timeout_seconds": self.global_timeout_seconds,
            "deviation_rules": self.deviation_rules,
            "tasks": [task.to_json() for task in self.tasks],
        }


@dataclass(frozen=True)
class Problem:
    # Where: ``tasks[3].dependencies[0]``, ``max_concurrent``, or "" for the whole request.
    path: str
    # Stable kind (tests, the API's error list); the message is for people.
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RequestError(ValueError):
    """A request that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def load_text(text: str) -> tuple[Any, list[Problem]]:
    """JSON or YAML text (JSON is YAML, but its errors read better as JSON's own)."""
    stripped = text.strip()
    if not stripped:
        return None, [Problem("", "empty", "the request is empty")]
    if stripped[0] in "{[":
        try:
            return json.loads(stripped), []
        except json.JSONDecodeError as exc:
            return None, [Problem("", "json", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
    try:
        return yaml.safe_load(stripped), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "malformed"
        return None, [Problem("", "yaml", f"not valid YAML: {reason}{where}")]


def _pick(data: Mapping[str, Any], *names: str) -> Any:
    # The board launch spells fields in camelCase (maxConcurrent); the internal API in snake_case.
    for name in names:
        if name in data:
            return data[name]
    return None


def _int(value: Any, path: str, default: int, low: int, high: int, problems: list[Problem], what: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            problems.append(Problem(path, "type", f"{what} must be a whole number"))
            return default
    if not low <= value <= high:
        problems.append(Problem(path, "limit", f"{what} must be between {low} and {high} (got {value})"))
    return int(value)


def _text(value: Any, path: str, problems: list[Problem], what: str, *, required: bool, limit: int) -> str:
    if value is None:
        if required:
            problems.append(Problem(path, "required", f"{what} is required"))
        return ""
    if not isinstance(value, str):
        problems.append(Problem(path, "type", f"{what} must be text"))
        return ""
    if required and not value.strip():
        problems.append(Problem(path, "required", f"{what} is required"))
    if len(value) > limit:
        problems.append(Problem(path, "limit", f"{what} is longer than {limit} characters"))
    return value


def parse_request(data: Any, limits: SwarmLimits = DEFAULT_LIMITS) -> tuple[SwarmSpec | None, list[Problem]]:
    """The request as a :class:`SwarmSpec`, or None with every problem found (never stops at the first)."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        return None, [Problem("", "type", "the request must be an object with an agent and tasks")]
    agent = _pick(data, "agent_id", "agentId", "agent")
    if not isinstance(agent, str) or not agent.strip():
        problems.append(Problem("agent_id", "required", "name the agent that runs the tasks"))
        agent = ""
    elif not _AGENT.fullmatch(agent.strip()):
        problems.append(Problem("agent_id", "format", f"{agent!r} is not an agent id"))
    title = _text(_pick(data, "title", "name"), "title", problems, "the title", required=False, limit=200)
    concurrency = _int(
        _pick(data, "max_concurrent", "maxConcurrent"),
        "max_concurrent",
        DEFAULT_MAX_CONCURRENT,
        1,
        limits.max_concurrent,
        problems,
        "max_concurrent",
    )
    global_timeout = _int(
        _pick(data, "global_timeout_seconds", "globalTimeoutSeconds"),
        "global_timeout_seconds",
        DEFAULT_GLOBAL_TIMEOUT,
        limits.min_global_timeout,
        limits.max_global_timeout,
        problems,
        "the global timeout (seconds)",
    )
    rules = _text(
        _pick(data, "deviation_rules", "deviationRules"),
        "deviation_rules",
        problems,
        "the deviation rules",
        required=False,
        limit=limits.max_prompt_chars,
    )
    raw_tasks = data.get("tasks")
    tasks: list[TaskSpec] = []
    if not isinstance(raw_tasks, list) or not raw_tasks:
        problems.append(Problem("tasks", "required", "a swarm needs at least one task"))
    else:
        if len(raw_tasks) > limits.max_tasks:
            problems.append(
                Problem("tasks", "limit", f"{len(raw_tasks)} tasks; this workspace allows up to {limits.max_tasks}")
            )
        for index, raw in enumerate(raw_tasks):
            task = _parse_task(raw, f"tasks[{index}]", limits, problems)
            if task is not None:
                tasks.append(task)
        problems.extend(check_graph(tasks))
    if problems:
        return None, problems
    spec = SwarmSpec(
        agent_id=agent.strip(),
        tasks=tuple(tasks),
        max_concurrent=concurrency,
        global_timeout_seconds=global_timeout,
        deviation_rules=rules,
        title=title.strip(),
    )
    return spec, []


def _parse_task(raw: Any, path: str, limits: SwarmLimits, problems: list[Problem]) -> TaskSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(path, "type", "each task must be an object with a key, a title and a prompt"))
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        problems.append(Problem(f"{path}.key", "required", "every task needs a key"))
        key = ""
    elif not _KEY.fullmatch(key):
        problems.append(
            Problem(f"{path}.key", "format", f"{key!r}: keys are letters, digits, '.', '_' and '-' (up to 64)")
        )
    title = _text(raw.get("title"), f"{path}.title", problems, "the title", required=True, limit=200)
    prompt = _text(
        _pick(raw, "execution_prompt", "executionPrompt", "prompt"),
        f"{path}.execution_prompt",
        problems,
        "the execution prompt",
        required=True,
        limit=limits.max_prompt_chars,
    )
    deps_raw = raw.get("dependencies", [])
    deps: list[str] = []
    if deps_raw is None:
        deps_raw = []
    if not isinstance(deps_raw, list) or not all(isinstance(d, str) for d in deps_raw):
        problems.append(Problem(f"{path}.dependencies", "type", "dependencies must be a list of task keys"))
    else:
        deps = list(dict.fromkeys(deps_raw))
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or len(model) > 200):
        problems.append(Problem(f"{path}.model", "type", "the model must be a model name"))
        model = None
    timeout = _int(
        _pick(raw, "timeout_seconds", "timeoutSeconds"),
        f"{path}.timeout_seconds",
        DEFAULT_TASK_TIMEOUT,
        limits.min_task_timeout,
        limits.max_task_timeout,
        problems,
        "the task timeout (seconds)",
    )
    retries = _int(
        _pick(raw, "max_retries", "maxRetries"),
        f"{path}.max_retries",
        DEFAULT_MAX_RETRIES,
        0,
        limits.max_retries,
        problems,
        "max_retries",
    )
    if not key:
        return None
    task = TaskSpec(key, title.strip(), prompt, tuple(deps), model or None, timeout, retries)
    # A task with field problems still takes part in the graph checks, so those are reported too.
    return task


def check_graph(tasks: Sequence[TaskSpec]) -> list[Problem]:
    """Duplicate keys, unknown and self dependencies, and every cycle (one per tangle) with its path."""
    problems: list[Problem] = []
    index_of: dict[str, int] = {}
    for index, task in enumerate(tasks):
        if task.key in index_of:
            problems.append(
                Problem(
                    f"tasks[{index}].key",
                    "duplicate_key",
                    f"the key {task.key!r} is already used by tasks[{index_of[task.key]}]",
                )
            )
        else:
            index_of[task.key] = index
    edges: dict[str, list[str]] = {key: [] for key in index_of}
    for index, task in enumerate(tasks):
        for d, dep in enumerate(task.dependencies):
            where = f"tasks[{index}].dependencies[{d}]"
            if dep == task.key:
                problems.append(Problem(where, "self_dependency", f"task {task.key!r} depends on itself"))
            elif dep not in index_of:
                problems.append(
                    Problem(where, "unknown_dependency", f"task {task.key!r} depends on {dep!r}, which is not a task")
                )
            elif index_of.get(task.key) == index:
                edges[task.key].append(dep)
    for cycle in find_cycles(edges):
        path = " → ".join([*cycle, cycle[0]])
        problems.append(Problem(f"tasks[{index_of[cycle[0]]}].dependencies", "cycle", f"dependency cycle: {path}"))
    return problems


def find_cycles(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected tangle of the graph (iterative Tarjan, then a walk inside it).

    Listing every elementary cycle can be exponential; one path per tangle names every place to fix.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    tangles: list[list[str]] = []
    counter = 0
    for root in depends_on:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = depends_on.get(node, ())
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.append(top)
                    if top == node:
                        break
                if len(members) > 1:
                    tangles.append(members)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles: list[list[str]] = []
    order = {key: n for n, key in enumerate(depends_on)}
    for members in tangles:
        inside = set(members)
        start = min(members, key=order.__getitem__)
        # Walk from start inside the tangle until a node repeats: that loop is a cycle.
        seen: dict[str, int] = {}
        path: list[str] = []
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(d for d in depends_on[node] if d in inside)
        cycle = path[seen[node] :]
        turn = cycle.index(min(cycle, key=order.__getitem__))
        cycles.append(cycle[turn:] + cycle[:turn])
    cycles.sort(key=lambda c: order[c[0]])
    return cycles


@dataclass(frozen=True)
class Preview:
    total_tasks: int
    # Longest chain of dependencies, counted in tasks (a swarm of independent tasks has depth 1).
    depth: int
    roots: tuple[str, ...]
    # Key -> layer (0 for roots): what the DAG drawing and the scheduler's order use.
    levels: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # The longest chain by timeouts: a worst case the global timeout should cover.
    critical_timeout_seconds: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "total_tasks": self.total_tasks,
            "dag_depth": self.depth,
            "root_tasks": list(self.roots),
            "levels": dict(self.levels),
            "warnings": list(self.warnings),
            "critical_timeout_seconds": self.critical_timeout_seconds,
        }


def levels_of(tasks: Sequence[TaskSpec]) -> dict[str, int]:
    """Each task's layer: 0 without dependencies, else one more than its deepest dependency (needs a DAG)."""
    by_key = {task.key: task for task in tasks}
    level: dict[str, int] = {}
    for task in tasks:
        work = [task.key]
        while work:
            key = work[-1]
            if key in level:
                work.pop()
                continue
            pending = [d for d in by_key[key].dependencies if d not in level]
            if pending:
                work.extend(pending)
                continue
            work.pop()
            level[key] = 1 + max((level[d] for d in by_key[key].dependencies), default=-1)
    return level


def preview(spec: SwarmSpec) -> Preview:
    tasks = spec.tasks
    level = levels_of(tasks)
    by_key = {task.key: task for task in tasks}
    finish: dict[str, int] = {}
    for key in sorted(level, key=level.__getitem__):
        task = by_key[key]
        finish[key] = task.timeout_seconds + max((finish[d] for d in task.dependencies), default=0)
    depth = 1 + max(level.values(), default=-1)
    roots = tuple(task.key for task in tasks if not task.dependencies)
    width = max((list(level.values()).count(n) for n in set(level.values())), default=0)
    dependents = {d for task in tasks for d in task.dependencies}
    warnings: list[str] = []
    critical = max(finish.values(), default=0)
    if critical > spec.global_timeout_seconds:
        warnings.append(
            f"the longest chain may take up to {critical} s, more than the global timeout of "
            f"{spec.global_timeout_seconds} s: later tasks could be cut off"
        )
    if spec.max_concurrent > width and len(tasks) > 1:
        warnings.append(
            f"at most {width} tasks can run at once in this DAG; max_concurrent {spec.max_concurrent} adds nothing"
        )
    lonely = [t.key for t in tasks if not t.dependencies and t.key not in dependents]
    if len(tasks) > 1 and 0 < len(lonely) < len(tasks):
        shown = ", ".join(lonely[:5]) + (" …" if len(lonely) > 5 else "")
        warnings.append(f"{len(lonely)} task(s) neither depend on nor feed another: {shown}")
    prompts: dict[str, str] = {}
    for task in tasks:
        other = prompts.setdefault(task.execution_prompt.strip(), task.key)
        if other != task.key:
            warnings.append(f"tasks {other!r} and {task.key!r} have the same execution prompt")
    return Preview(len(tasks), depth, roots, level, tuple(warnings), critical)
