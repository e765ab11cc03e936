"""Who may see each live event: the permission (``app.tenants.permissions``) a viewer needs, per event kind.

A live stream shows a viewer no more than their pages do. So every event kind that reaches a browser names
the permission of the page that shows the same thing: an invitation (address and role) needs what the
pending-invitations list needs, an API key what the list of everyone's keys needs, and so on. ``ACTIVITY``
events are audit entries and take the permission of their action (``ACTION_PERMISSIONS``); every other
event type has its own entry (``TYPE_PERMISSIONS``).

Adding an audit action is one line in ``ACTION_PERMISSIONS``. An action without a line fails
``tests/events/test_event_permissions.py``; at run time it is shown only to those who may read the audit
log (the one page that shows every action), with a warning, never to everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.live.bus import Event, EventType
from app.tenants.permissions import PERMISSIONS

logger = logging.getLogger(__name__)

UNLISTED = "audit.view"
"""For an action or type missing below: the audit log shows every action, so its readers may see it."""

ACTION_PERMISSIONS: Mapping[str, str] = {
    # The workspace itself: every member sees its dashboard and its settings page (name, 2FA requirement).
    "workspace.created": "workspace.view",
    "settings.changed": "workspace.view",
    "workspace.2fa_required_changed": "workspace.view",
    # Who is a member, with which role: the member list is every member's.
    "invitation.accepted": "members.view",
    "sso.member_provisioned": "members.view",
    "member.role_changed": "members.view",
    "member.removed": "members.view",
    "member.left": "members.view",
    "ownership.transferred": "members.view",
    # Invitations (addresses and roles): the pending list is shown only to those who may invite.
    "member.invited": "members.invite",
    "invitation.revoked": "members.invite",
    # API keys: the keys page lists everyone's keys only to those who manage members (others: their own).
    "apikey.created": "members.manage",
    "apikey.revoked": "members.manage",
    # The single sign-on settings page.
    "sso.configured": "settings.edit",
    "sso.tested": "settings.edit",
    "sso.enforced_changed": "settings.edit",
    "sso.domain_added": "settings.edit",
    "sso.domain_removed": "settings.edit",
    "sso.domain_verified": "settings.edit",
    "sso.domain_verify_failed": "settings.edit",
    "sso.domain_taken": "settings.edit",
    # Shown by no page but the audit log.
    "mail.delivered": "audit.view",
    "sso.login": "audit.view",
    "sso.login_failed": "audit.view",
    "sso.identity_linked": "audit.view",
    "sso.identity_unlinked": "audit.view",
    "sso.password_login_blocked": "audit.view",
    "auth.login": "audit.view",
    "auth.login_failed": "audit.view",
    "auth.2fa_failed": "audit.view",
    "auth.logout": "audit.view",
    "auth.2fa_enabled": "audit.view",
    "auth.2fa_disabled": "audit.view",
    "auth.recovery_codes_regenerated": "audit.view",
    "auth.password_changed": "audit.view",
    "auth.password_reset": "audit.view",
    "auth.reauth_failed": "audit.view",
    "auth.session_revoked": "audit.view",
    "auth.sessions_revoked": "audit.view",
}

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
    EventType.ACTIVITY: None,  # the action decides: ACTION_PERMISSIONS
    # A notice for the people looking at the workspace (publishers put nothing private in it).
    EventType.TOAST: "workspace.view",
    # Control events say only which membership action happened; the member list shows its outcome to all.
    EventType.MEMBER_ADDED: "members.view",
    EventType.MEMBER_REMOVED: "members.view",
    EventType.MEMBER_ROLE_CHANGED: "members.view",
    EventType.WORKSPACE_DELETED: "workspace.view",
}

_unknown = sorted({*ACTION_PERMISSIONS.values(), *filter(None, TYPE_PERMISSIONS.values())} - PERMISSIONS.keys())
if _unknown:  # a typo here would hide events from everyone: refuse to start instead
    raise RuntimeError(f"event permissions name unknown permissions: {_unknown}")

_warned: set[str] = set()


def _unlisted(kind: str) -> str:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning("no permission listed for live event %r; showing it only to audit log readers", kind)
    return UNLISTED


def action_permission(action: str) -> str:
    """The permission needed to see the activity of an audit ``action``."""
    permission = ACTION_PERMISSIONS.get(action)
    return permission if permission is not None else _unlisted(action)


def required_permission(event: Event) -> str:
    """The permission a viewer needs to receive ``event`` (computed once per event, then a set lookup each)."""
    if event.type == EventType.ACTIVITY:
        return action_permission(str(event.payload.get("action", "")))
    permission = TYPE_PERMISSIONS.get(event.type)
    return permission if permission is not None else _unlisted(event.type.value)
