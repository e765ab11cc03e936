"""Every audit action, once: its label (the audit log page), its sentence (the live feed), who may see it live,
and the control event it also raises.

The permission is the one of the page that shows the same thing (``app.tenants.permissions``): an invitation
(address and role) needs what the pending-invitations list needs, an API key what the list of everyone's
keys needs, and so on, so a viewer's feed shows no more than a viewer's pages. The publisher looks the
permission up here and puts it in the event (``app.live`` knows no domain). Membership changes also go to the
workspace's control topic, so open streams re-check their viewer at once.

Adding an action is one entry here; an action recorded anywhere without one fails
``tests/live/test_event_permissions.py``. At run time an unknown action is shown only to those who may read
the audit log (the one page that shows every action), with a warning, never to everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from app.live.bus import EventType
from app.tenants.permissions import PERMISSIONS

logger = logging.getLogger(__name__)

UNLISTED_PERMISSION = "audit.view"
"""For an action missing below: the audit log shows every action, so its readers may see it."""


@dataclass(frozen=True)
class Action:
    label: str
    # Past tense; ``{actor}`` is the actor's label, the other fields come from the entry's details.
    sentence: str
    permission: str
    control: EventType | None = None


_ADDED, _REMOVED, _ROLE = EventType.MEMBER_ADDED, EventType.MEMBER_REMOVED, EventType.MEMBER_ROLE_CHANGED

CATALOGUE: Mapping[str, Action] = {
    # The workspace itself: every member sees its dashboard and its settings page (name, 2FA requirement).
    "workspace.created": Action("Created the workspace", "{actor} created the workspace", "workspace.view"),
    "settings.changed": Action("Changed settings", "{actor} changed the workspace settings", "workspace.view"),
    "workspace.2fa_required_changed": Action(
        "Changed the 2FA requirement", "{actor} changed the two-factor requirement", "workspace.view"
    ),
    # Agents: every member sees the agents page.
    "agent.created": Action("Created an agent", "{actor} created the agent “{name}”", "workspace.view"),
    "agent.updated": Action("Changed an agent", "{actor} changed the agent “{name}” ({changed})", "workspace.view"),
    "agent.cloned": Action("Cloned an agent", "{actor} cloned “{source}” as “{name}”", "workspace.view"),
    "agent.deleted": Action("Deleted an agent", "{actor} deleted the agent “{name}”", "workspace.view"),
    # Secrets: every member sees the secrets page (names and masked previews, never values).
    "secret.created": Action("Added a secret", "{actor} added the secret {name}", "workspace.view"),
    "secret.value_replaced": Action(
        "Replaced a secret's value", "{actor} replaced the value of the secret {name}", "workspace.view"
    ),
    "secret.described": Action(
        "Described a secret", "{actor} changed the description of the secret {name}", "workspace.view"
    ),
    "secret.deleted": Action("Deleted a secret", "{actor} deleted the secret {name}", "workspace.view"),
    "secret.grants_changed": Action(
        "Changed who gets a secret", "{actor} changed which agents get the secret {name}", "workspace.view"
    ),
    # Who is a member, with which role: the member list is every member's.
    "invitation.accepted": Action("Accepted an invitation", "{actor} joined the workspace", "members.view", _ADDED),
    "sso.member_provisioned": Action(
        "Joined through single sign-on", "{actor} joined through single sign-on", "members.view", _ADDED
    ),
    "member.role_changed": Action(
        "Changed a member's role", "{actor} changed a member's role to {to}", "members.view", _ROLE
    ),
    "member.removed": Action("Removed a member", "{actor} removed a member", "members.view", _REMOVED),
    "member.left": Action("Left the workspace", "{actor} left the workspace", "members.view", _REMOVED),
    "ownership.transferred": Action("Transferred ownership", "{actor} transferred ownership", "members.view", _ROLE),
    # Invitations (addresses and roles): the pending list is shown only to those who may invite.
    "member.invited": Action("Invited someone", "{actor} invited {email} as {role}", "members.invite"),
    "invitation.revoked": Action(
        "Withdrew an invitation", "{actor} revoked the invitation for {email}", "members.invite"
    ),
    # Pipelines: every member sees the pipelines page.
    "pipeline.created": Action("Created a pipeline", "{actor} created the pipeline “{name}”", "workspace.view"),
    "pipeline.saved": Action(
        "Saved a pipeline", "{actor} saved version {version} of the pipeline “{name}”", "workspace.view"
    ),
    "pipeline.deleted": Action("Deleted a pipeline", "{actor} deleted the pipeline “{name}”", "workspace.view"),
    # API keys: the keys page lists everyone's keys only to those who manage members (others: their own).
    "apikey.created": Action("Created an API key", "{actor} created the API key “{name}”", "members.manage"),
    "apikey.revoked": Action("Revoked an API key", "{actor} revoked the API key “{name}”", "members.manage"),
    # The single sign-on settings page.
    "sso.configured": Action(
        "Configured single sign-on", "{actor} changed the single sign-on settings", "settings.edit"
    ),
    "sso.tested": Action(
        "Tested the single sign-on connection", "{actor} tested the single sign-on connection", "settings.edit"
    ),
    "sso.enforced_changed": Action(
        "Changed single sign-on enforcement", "{actor} changed the single sign-on requirement", "settings.edit"
    ),
    "sso.domain_added": Action("Added an e-mail domain", "{actor} added the domain {domain}", "settings.edit"),
    "sso.domain_removed": Action("Removed an e-mail domain", "{actor} removed the domain {domain}", "settings.edit"),
    "sso.domain_verified": Action("Verified an e-mail domain", "{actor} verified the domain {domain}", "settings.edit"),
    "sso.domain_verify_failed": Action(
        "Domain verification failed", "{actor} could not verify the domain {domain}", "settings.edit"
    ),
    "sso.domain_taken": Action(
        "Another workspace proved an e-mail domain", "Another workspace proved it owns {domain}", "settings.edit"
    ),
    # LLM providers and the model catalogue: every member sees the providers page (keys only as masked previews).
    "llm.provider_added": Action("Added an LLM provider", "{actor} added the LLM provider “{label}”", "workspace.view"),
    "llm.provider_changed": Action(
        "Changed an LLM provider", "{actor} changed the LLM provider “{label}”", "workspace.view"
    ),
    "llm.provider_key_replaced": Action(
        "Replaced an LLM provider's key", "{actor} replaced the key of the LLM provider “{label}”", "workspace.view"
    ),
    "llm.provider_removed": Action(
        "Removed an LLM provider", "{actor} removed the LLM provider “{label}”", "workspace.view"
    ),
    "llm.provider_tested": Action(
        "Tested an LLM provider", "{actor} tested the connection to “{label}”: {outcome}", "workspace.view"
    ),
    "llm.model_added": Action("Added a model", "{actor} added the model {model}", "workspace.view"),
    "llm.model_changed": Action("Changed a model", "{actor} changed the model {model}", "workspace.view"),
    "llm.model_removed": Action("Removed a model", "{actor} removed the model {model}", "workspace.view"),
    # Budgets and spend: the usage pages'.
    "llm.budget_changed": Action("Changed the LLM budget", "{actor} set the monthly LLM budget to {cap}", "usage.view"),
    "llm.budget_warning": Action(
        "LLM budget at 80 %", "LLM spend reached {percent} % of {budget}: {spent} of {cap}", "usage.view"
    ),
    "llm.budget_reached": Action(
        "LLM budget reached", "LLM calls are refused: {budget} is spent ({spent} of {cap})", "usage.view"
    ),
    # Shown by no page but the audit log.
    "mail.delivered": Action("Delivered an e-mail", "Delivered “{subject}” to {email}", "audit.view"),
    "sso.login": Action("Signed in with single sign-on", "{actor} signed in with single sign-on", "audit.view"),
    "sso.login_failed": Action("Single sign-on failed", "A single sign-on sign-in failed: {error}", "audit.view"),
    "sso.identity_linked": Action(
        "Linked a single sign-on identity", "{actor} linked a single sign-on identity", "audit.view"
    ),
    "sso.identity_unlinked": Action(
        "Unlinked a single sign-on identity", "{actor} unlinked a single sign-on identity", "audit.view"
    ),
    "sso.password_login_blocked": Action(
        "Password sign-in refused (managed account)",
        "{actor} was refused a password sign-in (single sign-on is required)",
        "audit.view",
    ),
    # Account events go to the person's own security log now; these name entries older logs still hold.
    "auth.login": Action("Signed in", "{actor} signed in", "audit.view"),
    "auth.login_failed": Action("Sign-in failed (wrong password)", "A sign-in as {actor} failed", "audit.view"),
    "auth.2fa_failed": Action(
        "Sign-in failed (wrong 2FA code)", "A sign-in as {actor} failed (wrong 2FA code)", "audit.view"
    ),
    "auth.logout": Action("Signed out", "{actor} signed out", "audit.view"),
    "auth.2fa_enabled": Action(
        "Turned on two-factor authentication", "{actor} turned on two-factor authentication", "audit.view"
    ),
    "auth.2fa_disabled": Action(
        "Turned off two-factor authentication", "{actor} turned off two-factor authentication", "audit.view"
    ),
    "auth.recovery_codes_regenerated": Action(
        "Made new recovery codes", "{actor} made new recovery codes", "audit.view"
    ),
    "auth.password_changed": Action("Changed their password", "{actor} changed their password", "audit.view"),
    "auth.password_reset": Action("Reset their password", "{actor} reset their password", "audit.view"),
    "auth.reauth_failed": Action("Re-authentication failed", "{actor} failed to confirm it was them", "audit.view"),
    "auth.session_revoked": Action("Ended a session", "{actor} ended a session", "audit.view"),
    "auth.sessions_revoked": Action("Signed out everywhere else", "{actor} signed out everywhere else", "audit.view"),
}

_unknown = sorted({action.permission for action in CATALOGUE.values()} - PERMISSIONS.keys())
if _unknown:  # a typo here would hide events from everyone: refuse to start instead
    raise RuntimeError(f"the audit catalogue names unknown permissions: {_unknown}")

_warned: set[str] = set()


def entry(action: str) -> Action:
    """The catalogue's entry; for an action it lacks, one shown only to audit log readers (and a warning)."""
    found = CATALOGUE.get(action)
    if found is not None:
        return found
    if action not in _warned:
        _warned.add(action)
        logger.warning("audit action %r is not in the catalogue; showing it only to audit log readers", action)
    return Action(action, "{actor}: " + action.replace(".", " ").replace("_", " "), UNLISTED_PERMISSION)


def label(action: str) -> str:
    found = CATALOGUE.get(action)
    return found.label if found is not None else action


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "someone" if key == "actor" else "?"


def sentence(action: str, actor: str, details: Any) -> str:
    """``Ada invited kay@example.com as member``: the feed's line for an entry (plain text; templates escape)."""
    values = _Blank()
    if isinstance(details, dict):
        values.update({key: value for key, value in details.items() if isinstance(value, str | int)})
    values["actor"] = actor or "someone"
    return entry(action).sentence.format_map(values)


def fields(action: str) -> set[str]:
    """The names a sentence takes from the details (``actor`` aside)."""
    names = {name for _, name, _, _ in Formatter().parse(entry(action).sentence) if name}
    return names - {"actor"}


def visible_actions(permissions: frozenset[str]) -> frozenset[str]:
    """The catalogued actions a viewer with ``permissions`` may see live (others: ``UNLISTED_PERMISSION``)."""
    return frozenset(action for action, found in CATALOGUE.items() if found.permission in permissions)
