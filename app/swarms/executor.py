"""How a swarm task is run: a small protocol between the scheduler and whatever executes an agent step.

The worker's jobs ask :func:`app.swarms.agent_executor.executor_for` for one. In production that is
:class:`~app.swarms.agent_executor.AgentStepExecutor` (the shared agent-step execution of ``app.execution``: a
gateway token, the agent's prompt, a sandbox under the supervisor, events relayed, the token revoked); the
benchmark installs a no-op executor, and tests may install one in the worker processes they start (``install``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from app.sandbox.step import StepControl, StepEvent

if TYPE_CHECKING:
    pass


def step_id_of(swarm_id: str, key: str, attempt: int) -> str:
    """An id for one attempt of a task (sandbox labels, the gateway token's purpose, the events' ``runId``)."""
    return f"{swarm_id}-{key}-{attempt}"[:64]


@dataclass(frozen=True)
class TaskRun:
    """One attempt at one task, with everything the executor needs (and nothing from the request itself)."""

    workspace_id: str
    swarm_id: str
    key: str
    attempt: int
    title: str
    agent_id: str
    # The execution prompt with the swarm's deviation rules added: an executor session sees only this.
    prompt: str
    model: str | None
    timeout_seconds: int

    @property
    def step_id(self) -> str:
        """An id for the step (sandbox labels, the gateway token's purpose): unique per attempt."""
        return step_id_of(self.swarm_id, self.key, self.attempt)


@dataclass(frozen=True)
class TaskOutcome:
    ok: bool
    outputs: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    sandbox_id: str | None = None


OnTaskEvent = Callable[[StepEvent], Awaitable[None]]


class TaskExecutor(Protocol):
    async def run(self, task: TaskRun, on_event: OnTaskEvent, control: StepControl) -> TaskOutcome:
        """Run the task to its end; ``control.abort`` (cancel, lost lease) must stop it and its sandbox."""
        ...


_installed: TaskExecutor | None = None


def install(executor: TaskExecutor | None) -> None:
    """Use ``executor`` for every swarm task this process runs (the benchmark, test workers); None: the real one."""
    global _installed
    _installed = executor


def installed() -> TaskExecutor | None:
    """The executor :func:`install` put in place, if any (``app.swarms.agent_executor.executor_for`` asks)."""
    return _installed


def with_rules(prompt: str, deviation_rules: str) -> str:
    """What an executor session is told: the task's prompt, then the swarm's deviation rules (if any)."""
    rules = deviation_rules.strip()
    if not rules:
        return prompt
    return f"{prompt.rstrip()}\n\n## Deviation rules\n{rules}\n"


def describe(values: Mapping[str, Any]) -> dict[str, str]:
    """Outputs as the contract carries them: every value a string."""
    return {str(k): v if isinstance(v, str) else str(v) for k, v in values.items()}
