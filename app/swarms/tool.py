"""``swarm_execute``: the platform tool through which an agent in a sandbox starts a swarm (a sandbox RPC).

The request is the contract's (``agent_id, max_concurrent, global_timeout_seconds, deviation_rules, tasks[]``),
validated exactly as from the API; problems come back to the model as one ``invalid_request`` error listing
them all, so it can fix its DAG and call again. ``wait_seconds`` (0-600) waits for the swarm to end and returns
its summary; otherwise the swarm id comes back at once and the swarm runs on in the workers.

A swarm's own tasks are not offered this tool (``app.swarms.agent_executor.registry``): no swarm starts swarms.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.audit.actor import Actor, ActorKind
from app.audit.unit_of_work import workspace_change
from app.db import Database
from app.live.bus import EventBus
from app.queues import Enqueuer
from app.sandbox.rpc import RpcCall, RpcError, RpcTool
from app.swarms import service
from app.swarms.spec import preview

NAME = "swarm_execute"
MAX_WAIT = 600
_TASK = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "description": "Unique in the swarm: letters, digits, '.', '_', '-'."},
        "title": {"type": "string"},
        "execution_prompt": {"type": "string", "description": "Everything the executor of this task is told."},
        "dependencies": {"type": "array", "items": {"type": "string"}, "description": "Keys that must finish first."},
        "model": {"type": ["string", "null"]},
        "timeout_seconds": {"type": "integer", "minimum": 30, "maximum": 3600},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 5},
    },
    "required": ["key", "title", "execution_prompt"],
}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "agent_id": {"type": "string", "description": "The workspace agent that runs every task."},
        "title": {"type": "string"},
        "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 32},
        "global_timeout_seconds": {"type": "integer", "minimum": 60, "maximum": 86400},
        "deviation_rules": {"type": "string", "description": "Rules added to every task's prompt."},
        "tasks": {"type": "array", "items": _TASK, "minItems": 1},
        "wait_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_WAIT,
            "description": "Wait this long for the swarm to end and return its summary (0: return at once).",
        },  # fmt: skip
    },
    "required": ["agent_id", "tasks"],
}
DESCRIPTION = (
    "Run many tasks in parallel, each in its own fresh sandbox, in the order of their dependencies (a DAG). "
    "Each task's executor sees only its execution_prompt and the deviation rules: put everything it needs there. "
    "A failed task skips everything that depends on it."
)


def swarm_execute_tool(db: Database, bus: EventBus, jobs: Enqueuer) -> RpcTool:
    async def handle(call: RpcCall) -> Any:
        params = dict(call.params)
        wait = params.pop("wait_seconds", 0)
        if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT:
            raise RpcError("invalid_request", f"wait_seconds must be a whole number from 0 to {MAX_WAIT}")
        caller = str(call.context.get("agent_id") or params.get("agent_id") or "agent")
        actor = Actor(ActorKind.AGENT, caller[:64], f"{caller} (step {call.step_id})")
        try:
            async with workspace_change(db, bus, call.workspace_id) as session:
                swarm = await service.start_swarm(session, bus, call.workspace_id, actor, params, origin="agent")
                spec = await service.check_request(session, params)
        except service.SwarmInvalid as invalid:
            listed = "; ".join(str(problem) for problem in invalid.problems)
            raise RpcError("invalid_request", f"the swarm was not started: {listed}") from None
        await service.kick_off(jobs, bus, call.workspace_id, swarm)
        shown = preview(spec)
        answer: dict[str, Any] = {
            "swarm_id": swarm.id,
            "status": "running",
            "total_tasks": shown.total_tasks,
            "dag_depth": shown.depth,
            "warnings": list(shown.warnings),
        }
        if wait:
            answer.update(await _wait(db, call.workspace_id, swarm.id, wait))
        return answer

    return RpcTool(NAME, DESCRIPTION, PARAMETERS, handle)


async def _wait(db: Database, workspace_id: str, swarm_id: str, seconds: int) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        async with db.tenant_session(workspace_id) as session:
            swarm = await service.get_swarm(session, swarm_id)
            tasks = await service.tasks_of(session, swarm_id) if swarm.status != "running" else []
        if swarm.status != "running":
            results = [
                {
                    "key": t.key,
                    "status": t.status,
                    "outputs": t.outputs or {},
                    **({"error": t.error} if t.error else {}),
                }
                for t in tasks
            ]
            return {"status": swarm.status, "summary": swarm.summary, "error": swarm.error, "taskResults": results}
        if time.monotonic() >= deadline:
            return {"status": "running", "note": "still running; its page and the API show how it goes"}
        await asyncio.sleep(1.0)
