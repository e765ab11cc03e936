"""The step graph: every way control can pass from one step to another, as the engine routes it.

Shared by validation (reachability, cycles without an exit) and the SVG drawing, so what is checked is what
is drawn. The edges follow DjinnBot's routing (inventory section 2.4):

* a standard step goes to each ``onResult`` ``goto`` target; ``retry`` re-runs it; ``continueLoop`` returns
  to the loop it is part of; otherwise (no value matched, or the branch only notifies) ``onComplete``, or
  the end of the run if it is the last step (a non-last step without ``onComplete`` fails the run);
* a loop step goes to ``onEachComplete`` after each item (else straight to its next item), and when the
  items run out to ``onAllComplete``, else ``onComplete``, else the end of the run. Its ``onResult`` is
  never consulted.

``continueLoop`` has no target in the YAML: it returns to the loop whose ``onEachComplete`` led to the step.
We find that statically as the loops whose *body* (what ``onEachComplete`` reaches without passing back
through the loop step) contains the step.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.pipelines.spec import Pipeline, Step

END = "__end__"


class EdgeKind(enum.StrEnum):
    COMPLETE = "complete"  # onComplete (or a branch that only notifies, which falls through to it)
    GOTO = "goto"  # onResult VALUE: goto
    RETRY = "retry"  # onResult VALUE: retry (back to the same step, bounded by maxRetries)
    CONTINUE = "continue"  # onResult VALUE: continueLoop (back to the enclosing loop step)
    EACH = "each"  # loop: onEachComplete
    NEXT_ITEM = "next-item"  # loop without onEachComplete: the same step on the next item
    ALL_DONE = "all-done"  # loop exhausted: onAllComplete, else onComplete
    END = "end"  # the run completes


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str  # a step id or END
    kind: EdgeKind
    label: str = ""  # the onResult VALUE for goto / retry / continue

    @property
    def bounded(self) -> bool:
        """Edges that cannot loop forever on their own (retries and items are counted by the engine)."""
        return self.kind in (EdgeKind.RETRY, EdgeKind.NEXT_ITEM)


def step_edges(pipeline: Pipeline) -> tuple[Edge, ...]:
    """Every edge, in YAML order, to targets that exist (validation reports the others)."""
    ids = {step.id for step in pipeline.steps}
    raw: list[Edge] = []
    for index, step in enumerate(pipeline.steps):
        raw.extend(_edges_of(step, index == len(pipeline.steps) - 1))
    edges = [edge for edge in raw if edge.target in ids or edge.target == END or edge.kind is EdgeKind.CONTINUE]
    loops = enclosing_loops(pipeline, edges)
    resolved: list[Edge] = []
    for edge in edges:
        if edge.kind is EdgeKind.CONTINUE:
            resolved.extend(Edge(edge.source, loop, edge.kind, edge.label) for loop in loops.get(edge.source, ()))
        else:
            resolved.append(edge)
    return tuple(dict.fromkeys(resolved))


def _edges_of(step: Step, is_last: bool) -> Iterable[Edge]:
    if step.loop is not None:
        loop = step.loop
        if loop.on_each_complete:
            yield Edge(step.id, loop.on_each_complete, EdgeKind.EACH)
        else:
            yield Edge(step.id, step.id, EdgeKind.NEXT_ITEM)
        after = loop.on_all_complete or step.on_complete
        yield Edge(step.id, after, EdgeKind.ALL_DONE) if after else Edge(step.id, END, EdgeKind.END)
        return
    for branch in step.on_result:
        if branch.goto:
            yield Edge(step.id, branch.goto, EdgeKind.GOTO, branch.value)
        elif branch.retry:
            yield Edge(step.id, step.id, EdgeKind.RETRY, branch.value)
        elif branch.continue_loop:
            yield Edge(step.id, "", EdgeKind.CONTINUE, branch.value)  # resolved to the enclosing loop(s)
    if step.on_complete:
        yield Edge(step.id, step.on_complete, EdgeKind.COMPLETE)
    elif is_last:
        yield Edge(step.id, END, EdgeKind.END)


def enclosing_loops(pipeline: Pipeline, edges: Iterable[Edge]) -> dict[str, tuple[str, ...]]:
    """For each step, the loop steps whose body contains it (the loops a ``continueLoop`` there resumes)."""
    succ = successors(e for e in edges if e.kind is not EdgeKind.CONTINUE)
    found: dict[str, list[str]] = {}
    for step in pipeline.steps:
        if step.loop is None or not step.loop.on_each_complete:
            continue
        for member in reachable([step.loop.on_each_complete], succ, avoid=step.id):
            found.setdefault(member, []).append(step.id)
    return {member: tuple(loops) for member, loops in found.items()}


def successors(edges: Iterable[Edge]) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {}
    for edge in edges:
        targets = succ.setdefault(edge.source, [])
        if edge.target not in targets:
            targets.append(edge.target)
    return succ


def predecessors(edges: Iterable[Edge]) -> dict[str, list[str]]:
    return successors(Edge(edge.target, edge.source, edge.kind, edge.label) for edge in edges)


def reachable(starts: Iterable[str], succ: Mapping[str, list[str]], avoid: str | None = None) -> list[str]:
    """Breadth-first, in a stable order; ``avoid`` is never entered."""
    order: list[str] = []
    seen: set[str] = set()
    queue = deque(s for s in starts if s != avoid)
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        queue.extend(t for t in succ.get(node, ()) if t not in seen and t != avoid)
    return order


def strongly_connected(nodes: Iterable[str], succ: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion (a 500-step chain would exhaust Python's stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = succ.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components
