"""Shared agent-step execution: one agent step in a sandbox, from a gateway token to a typed outcome.

The pipeline engine (app/runs) and swarms call :func:`execute_agent_step`; both get the same token scoping,
prompt assembly, model precedence, event relay and clean-up.
"""

from app.execution.relay import EventRelay, relay_event_type
from app.execution.step import (
    ExecutionDeps,
    StepOutcome,
    StepRequest,
    StepSettings,
    execute_agent_step,
)

__all__ = [
    "EventRelay",
    "ExecutionDeps",
    "StepOutcome",
    "StepRequest",
    "StepSettings",
    "execute_agent_step",
    "relay_event_type",
]
