"""Loading a pipeline: read the YAML, parse it, check everything, and report every problem at once.

``load_pipeline`` is the entry point for the editor (live validation), the API (``validate``, ``PUT``) and the
engine (which refuses a pipeline with errors). The graph checks live here: steps nothing reaches, loops fed
by something that never ran first, ``continueLoop`` outside a loop, and cycles with no way out.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.pipelines.checks import (
    check_duplicates,
    check_output_schemas,
    check_references,
    check_step_shapes,
    check_templates,
)
from app.pipelines.fields import quoted
from app.pipelines.graph import (
    END,
    enclosing_loops,
    predecessors,
    reachable,
    step_edges,
    strongly_connected,
    successors,
)
from app.pipelines.parse import parse_document
from app.pipelines.problems import Problem, Severity, error, sort_problems, warning
from app.pipelines.source import Document, read_yaml
from app.pipelines.spec import Pipeline


@dataclass(frozen=True)
class LoadResult:
    # Best effort even with errors (so the editor can still draw it); None when the YAML could not be read.
    pipeline: Pipeline | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """Whether the pipeline may run: it was read and has no errors (warnings are fine)."""
        return self.pipeline is not None and not self.errors


class PipelineInvalid(ValueError):
    def __init__(self, problems: tuple[Problem, ...]) -> None:
        errors = [p for p in problems if p.severity is Severity.ERROR]
        super().__init__(
            "; ".join(str(p) for p in errors[:5]) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        )
        self.problems = problems


def load_pipeline(source: str | bytes) -> LoadResult:
    """Read, parse and validate pipeline YAML; every problem, sorted top to bottom."""
    document = read_yaml(source)
    pipeline, problems = parse_document(document)
    problems = [*document.problems, *problems]
    if pipeline is not None:
        problems.extend(validate_pipeline(pipeline, document))
    return LoadResult(pipeline, sort_problems(problems))


def load_valid_pipeline(source: str | bytes) -> Pipeline:
    """The pipeline, or :class:`PipelineInvalid` if it has any error (for the engine and the starters)."""
    result = load_pipeline(source)
    if result.pipeline is None or not result.ok:
        raise PipelineInvalid(result.problems)
    return result.pipeline


def validate_pipeline(pipeline: Pipeline, document: Document) -> list[Problem]:
    """The cross-reference and graph checks of a parsed pipeline (structure was checked while parsing)."""
    problems: list[Problem] = []
    check_duplicates(pipeline, problems)
    check_references(pipeline, problems)
    check_step_shapes(pipeline, problems)
    check_output_schemas(pipeline, problems)
    check_templates(pipeline, document, problems)
    _check_graph(pipeline, problems)
    return problems


def _check_graph(pipeline: Pipeline, problems: list[Problem]) -> None:
    first = pipeline.first_step
    if first is None or not first.id:
        return
    edges = step_edges(pipeline)
    succ = successors(edges)
    order = [s.id for s in pipeline.steps if s.id]
    index: dict[str, int] = {}  # the first step with each id (duplicates are reported elsewhere)
    for i, step in enumerate(pipeline.steps):
        index.setdefault(step.id, i)
    reached = set(reachable([first.id], succ))

    for i, step in enumerate(pipeline.steps):
        if step.id and step.id not in reached and index.get(step.id) == i:
            message = (
                f"step {quoted(step.id)} can never run: no path leads to it from the first step {quoted(first.id)}"
            )
            problems.append(warning(step.pos, "unreachable", message, f"steps[{i}]"))

    # continueLoop must have a loop to return to.
    loops = enclosing_loops(pipeline, edges)
    for i, step in enumerate(pipeline.steps):
        for branch in step.on_result:
            if branch.continue_loop and not step.is_loop and step.id not in loops:
                message = (
                    f"onResult {branch.value} of step {quoted(step.id)} says continueLoop, but no loop's "
                    "onEachComplete leads to this step, so there is no loop to continue"
                )
                problems.append(
                    error(branch.where("continueLoop"), "continue_outside_loop", message, f"steps[{i}].onResult")
                )

    # After each item the run must come back to the loop (continueLoop or a goto), or the other items never run.
    for i, step in enumerate(pipeline.steps):
        if step.loop is None:
            continue
        each = step.loop.on_each_complete
        if each and each in index and step.id not in reachable([each], succ):
            message = (
                f"after each item, loop step {quoted(step.id)} hands over to {quoted(each)}, but nothing from there "
                "leads back to it (a continueLoop or a goto), so only its first item would ever run"
            )
            problems.append(
                warning(step.loop.where("onEachComplete"), "loop_never_continues", message, f"steps[{i}].loop")
            )

    # A loop's items come from an output of a step that runs before it.
    before_of = predecessors(edges)
    producers = {s.id: s.outputs for s in pipeline.steps if s.id}
    for i, step in enumerate(pipeline.steps):
        if step.loop is None or not step.loop.over:
            continue
        over = step.loop.over
        before = [a for a in reachable(before_of.get(step.id, []), before_of) if a != step.id and a in reached]
        if any(over in producers.get(a, ()) for a in before):
            continue
        makers = [s.id for s in pipeline.steps if over in s.outputs and s.id != step.id]
        if makers:
            why = f"only {', '.join(map(quoted, makers))} outputs it, and it never runs before this loop"
        elif over in step.outputs:
            why = "only the loop step itself outputs it, and the items must exist before the loop starts"
        else:
            why = "no step declares it among its outputs"
        message = f"the loop of step {quoted(step.id)} goes over {quoted(over)}, but {why}"
        problems.append(error(step.loop.where("over"), "loop_over", message, f"steps[{i}].loop.over"))

    # A cycle the run can enter but never leave for the end of the run (bounded retries do not count).
    unbounded = successors(e for e in edges if not e.bounded)
    backwards = predecessors(e for e in edges if not e.bounded)
    finishes = set(reachable([END], backwards))
    for component in strongly_connected(order, unbounded):
        cyclic = len(component) > 1 or component[0] in unbounded.get(component[0], [])
        if not cyclic or any(member in finishes for member in component):
            continue
        members = sorted(component, key=index.__getitem__)
        head = pipeline.steps[index[members[0]]]
        names = ", ".join(map(quoted, members))
        message = (
            f"steps {names} form a cycle with no way out to the end of the run: add an onComplete or an "
            "onResult goto that leaves it"
            if len(members) > 1
            else f"step {names} leads only back to itself and never to the end of the run"
        )
        problems.append(error(head.pos, "cycle_without_exit", message, f"steps[{index[members[0]]}]"))
