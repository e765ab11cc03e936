"""Who may see each live event: the permission (``app.tenants.permissions``) a viewer needs, per event kind.

A live stream shows a viewer no more than their pages do. So every event kind that reaches a browser names
the permission of the page that shows the same thing. ``ACTIVITY`` events are audit entries: each carries the
permission its publisher looked up in the audit catalogue (``app.audit.catalogue``), as ``payload["permission"]``;
every other event type has its own entry here (``TYPE_PERMISSIONS``).

An event type without a line fails ``tests/live/test_event_permissions.py``; at run time it (and an activity
without a permission) is shown only to those who may read the audit log, with a warning, never to everyone.
This package imports no domain: the names are checked against the permission table by ``app.workspaces.live``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.live.bus import Event, EventType

logger = logging.getLogger(__name__)

UNLISTED = "audit.view"
"""For an event type (or an activity) that names no permission: the audit log shows every action, so its readers
may see it."""

# Runs, steps, agents, tools, sandboxes, projects, tasks, swarms and sessions: "see everything in the workspace,
# its agents, runs and board" is every member's, viewers included. (A misspelt name fails at import.)
_WORKSPACE_CONTENT = [
    EventType(name)
    for name in """
    RUN_CREATED STEP_QUEUED STEP_STARTED STEP_OUTPUT STEP_THINKING STEP_COMPLETE STEP_FAILED STEP_RETRYING
    STEP_CANCELLED STEP_ERROR LOOP_ITEM_COMPLETE LOOP_ITEM_FAILED RUN_COMPLETE RUN_FAILED RUN_DELETED
    RUN_STATUS_CHANGED RUN_UPDATED RUNS_BULK_DELETED STEP_UPDATED
    AGENT_MESSAGE HUMAN_INTERVENTION SLACK_MESSAGE AGENT_STATE AGENT_STATE_CHANGED AGENT_THINKING
    TOOL_CALL_START TOOL_CALL_END TOOL_STARTED TOOL_COMPLETE FILE_CHANGED COMMIT_FAILED
    CONTAINER_CREATED CONTAINER_STARTING CONTAINER_READY CONTAINER_STOPPING CONTAINER_DESTROYED
    CONTAINER_CRASHED CONTAINER_STOPPED CONTAINER_CREATE_FAILED CONTAINER_START_ERROR
    PROJECT_CREATED PROJECT_UPDATED PROJECT_DELETED TASK_CREATED TASK_MOVED TASK_CLAIMED TASK_STATUS_CHANGED
    TASK_PR_OPENED TASK_EXECUTION_STARTED TASK_EXECUTION_COMPLETED TASK_EXECUTION_FAILED
    DEPENDENCY_ADDED DEPENDENCY_REMOVED AGENT_ASSIGNED PULSE_TRIGGERED
    SWARM_LAUNCHED SWARM_TASK_STARTED SWARM_TASK_COMPLETED SWARM_TASK_FAILED SWARM_TASK_SKIPPED
    SWARM_COMPLETED SWARM_FAILED
    SESSION_OUTPUT SESSION_THINKING SESSION_TOOL_START SESSION_TOOL_END SESSION_TURN_END SESSION_STATUS
    SESSION_COMPLETE SESSION_ERROR
    """.split()
]

TYPE_PERMISSIONS: Mapping[EventType, str | None] = {
    **dict.fromkeys(_WORKSPACE_CONTENT, "workspace.view"),
    EventType.ACTIVITY: None,  # each activity carries its own (its action's, from the audit catalogue)
    # A notice for the people looking at the workspace (publishers put nothing private in it).
    EventType.TOAST: "workspace.view",
    # Control events say only which membership action happened; the member list shows its outcome to all.
    EventType.MEMBER_ADDED: "members.view",
    EventType.MEMBER_REMOVED: "members.view",
    EventType.MEMBER_ROLE_CHANGED: "members.view",
    EventType.WORKSPACE_DELETED: "workspace.view",
    # What each LLM call cost, and budget warnings: the usage pages' (app.llm).
    EventType.LLM_CALL: "usage.view",
    EventType.LLM_BUDGET_WARNING: "usage.view",
}

_warned: set[str] = set()


def _unlisted(kind: str) -> str:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning("no permission listed for live event %r; showing it only to audit log readers", kind)
    return UNLISTED


def required_permission(event: Event) -> str:
    """The permission a viewer needs to receive ``event`` (computed once per event, then a set lookup each)."""
    if event.type == EventType.ACTIVITY:
        permission = event.payload.get("permission")
        if isinstance(permission, str) and permission:
            return permission
        return _unlisted(f"ACTIVITY {event.payload.get('action', '')}")
    permission = TYPE_PERMISSIONS.get(event.type)
    return permission if permission is not None else _unlisted(event.type.value)
