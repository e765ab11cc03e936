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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

from app.live.bus import EventType
from app.tenants.permissions import PERMISSIONS

logger = logging.getLogger(__name__)

UNLISTED_PERMISSION = "audit.view"
"""For an action missing below: the audit log shows every action, so its readers may see it."""


Details = Mapping[str, Any]
# A sentence: a template (``{actor}`` and the entry's details, ``{name[to]}`` for a nested one), or a function that
# picks the template from the details (``True`` or not, say).
Sentence = str | Callable[[Details], str]


@dataclass(frozen=True)
class Action:
    label: str
    # Past tense, naming who did what to whom: "{actor} changed {member}'s role from {from} to {to}". ``{actor}`` is
    # the actor's label; the other fields come from the entry's details.
    sentence: Sentence
    permission: str
    control: EventType | None = None
    # Details as the code records them, for the tests that render every sentence (and for reading this file).
    example: Details = field(default_factory=dict)
    # Said instead when an entry lacks a field the sentence needs (entries older than the field).
    short: str = "{actor} made a change"


_ADDED, _REMOVED, _ROLE = EventType.MEMBER_ADDED, EventType.MEMBER_REMOVED, EventType.MEMBER_ROLE_CHANGED
_KEY = {"key_id": "…", "name": "CI deploys", "kind": "service", "scopes": "write", "lookup": "marid_sk_ab12…",
        "expires": "never"}  # fmt: skip
_SSO = {"issuer": "https://login.example.com", "subject": "248289761001", "email": "ada@example.com"}
_AGENT = {"agent_id": "finn", "name": "Finn"}
_SECRET = {"secret_id": "…", "name": "GITHUB_TOKEN"}
_PIPELINE = {"pipeline": "engineering", "name": "Engineering"}
_PROVIDER = {"provider_id": "…", "label": "OpenAI", "slug": "openai", "kind": "openai"}
_MODEL = {"model": "openai/gpt-4.1", "label": "GPT-4.1", "input": "$2", "output": "$8"}
_BUDGET = {"budget": "this month's budget", "kind": "month", "cap": "$500.00", "spent": "$405.10"}


def _switched(on: str, off: str) -> Callable[[Details], str]:
    return lambda details: on if details.get("to") is True else off


def _key_sentence(verb: str, access: str = "") -> Callable[[Details], str]:
    def sentence(details: Details) -> str:
        if "kind" in details and "scopes" in details:
            return "{actor} " + verb + " the {kind} API key “{name}”" + access
        return "{actor} " + verb + " the API key “{name}”"

    return sentence


def _renamed(details: Details) -> str:
    name = details.get("name")
    if isinstance(name, dict) and "from" in name and "to" in name:
        return "{actor} renamed the workspace from “{name[from]}” to “{name[to]}”"
    return "{actor} changed the workspace settings"


def _budget_changed(details: Details) -> str:
    if details.get("budget") == "run":  # entries from before run caps name no budget: they are monthly
        return "{actor} set each run's LLM budget to {cap}"
    return "{actor} set the monthly LLM budget to {cap}"


def _tested(details: Details) -> str:
    if details.get("ok") is True:
        return "{actor} tested the single sign-on connection to {issuer}: it works"
    return "{actor} tested the single sign-on connection to {issuer}: it failed ({error})"


def _enforced(details: Details) -> str:
    if details.get("managed_accounts") is True:
        return "{actor} required single sign-on, with managed accounts (no passwords at its verified domains)"
    if details.get("enforce_sso") is True:
        return "{actor} required single sign-on to open this workspace"
    return "{actor} made single sign-on optional"


_SSO_FIELDS = {"issuer": "the provider", "client_id": "the client ID", "client_secret": "the client secret",
               "default_role": "the role of new members", "enabled": "on/off", "enforce_sso": "the requirement",
               "managed_accounts": "managed accounts"}  # fmt: skip


def _sso_changes(details: Details) -> str:
    changes = details.get("changes")
    names = (
        [_SSO_FIELDS.get(str(key), str(key).replace("_", " ")) for key in changes] if isinstance(changes, dict) else []
    )
    if not names:
        return "{actor} changed the single sign-on settings"
    return "{actor} changed the single sign-on settings (" + ", ".join(names).replace("{", "").replace("}", "") + ")"


CATALOGUE: Mapping[str, Action] = {
    # The workspace itself: every member sees its dashboard and its settings page (name, 2FA requirement).
    "workspace.created": Action(
        "Created the workspace",
        "{actor} created the workspace “{name}”",
        "workspace.view",
        example={"name": "Acme", "slug": "acme"},
        short="{actor} created the workspace",
    ),
    "settings.changed": Action(
        "Changed settings",
        _renamed,
        "workspace.view",
        example={"name": {"from": "Acme", "to": "Acme Labs"}},
        short="{actor} changed the workspace settings",
    ),
    "workspace.2fa_required_changed": Action(
        "Changed the 2FA requirement",
        _switched(
            "{actor} required two-factor authentication for every member",
            "{actor} stopped requiring two-factor authentication",
        ),
        "workspace.view",
        example={"from": False, "to": True},
        short="{actor} changed the two-factor requirement",
    ),
    # Agents: every member sees the agents page.
    "agent.created": Action(
        "Created an agent",
        "{actor} created the agent “{name}”",
        "workspace.view",
        example=_AGENT | {"template": "architect"},
        short="{actor} created an agent",
    ),
    "agent.updated": Action(
        "Changed an agent",
        "{actor} changed the agent “{name}” ({changed})",
        "workspace.view",
        example=_AGENT | {"changed": "personality, model"},
        short="{actor} changed an agent",
    ),
    "agent.cloned": Action(
        "Cloned an agent",
        "{actor} cloned “{source}” as “{name}”",
        "workspace.view",
        example=_AGENT | {"source_id": "architect", "source": "Idris"},
        short="{actor} cloned an agent",
    ),
    "agent.deleted": Action(
        "Deleted an agent",
        "{actor} deleted the agent “{name}”",
        "workspace.view",
        example=_AGENT,
        short="{actor} deleted an agent",
    ),
    # Secrets: every member sees the secrets page (names and masked previews, never values).
    "secret.created": Action(
        "Added a secret",
        "{actor} added the secret {name}",
        "workspace.view",
        example=_SECRET,
        short="{actor} added a secret",
    ),
    "secret.value_replaced": Action(
        "Replaced a secret's value",
        "{actor} replaced the value of the secret {name}",
        "workspace.view",
        example=_SECRET,
        short="{actor} replaced a secret's value",
    ),
    "secret.described": Action(
        "Described a secret",
        "{actor} changed the description of the secret {name}",
        "workspace.view",
        example=_SECRET,
        short="{actor} described a secret",
    ),
    "secret.deleted": Action(
        "Deleted a secret",
        "{actor} deleted the secret {name}",
        "workspace.view",
        example=_SECRET | {"agents": "Finn, Idris"},
        short="{actor} deleted a secret",
    ),
    "secret.grants_changed": Action(
        "Changed who gets a secret",
        "{actor} changed which agents get the secret {name}",
        "workspace.view",
        example=_SECRET | {"granted": "Finn", "revoked": "Idris"},
        short="{actor} changed who gets a secret",
    ),
    # Who is a member, with which role: the member list is every member's.
    "invitation.accepted": Action(
        "Accepted an invitation",
        "{actor} accepted the invitation and joined as {role}",
        "members.view",
        _ADDED,
        example={"invitation_id": "…", "email": "kay@example.com", "role": "member"},
        short="{actor} joined the workspace",
    ),
    "sso.member_provisioned": Action(
        "Joined through single sign-on",
        "{actor} joined as {role} through single sign-on",
        "members.view",
        _ADDED,
        example={**_SSO, "role": "member", "new_account": True},
        short="{actor} joined through single sign-on",
    ),
    "member.role_changed": Action(
        "Changed a member's role",
        "{actor} changed {member}'s role from {from} to {to}",
        "members.view",
        _ROLE,
        example={"member_id": "…", "member": "Bob", "email": "bob@example.com", "from": "member", "to": "viewer"},
        short="{actor} changed a member's role",
    ),
    "member.removed": Action(
        "Removed a member",
        "{actor} removed {member} ({role}) from the workspace",
        "members.view",
        _REMOVED,
        example={"member_id": "…", "member": "Bob", "email": "bob@example.com", "role": "member"},
        short="{actor} removed a member",
    ),
    "member.left": Action(
        "Left the workspace",
        "{actor} left the workspace",
        "members.view",
        _REMOVED,
        example={"role": "member"},
    ),
    "ownership.transferred": Action(
        "Transferred ownership",
        "{actor} made {new_owner} the owner of the workspace",
        "members.view",
        _ROLE,
        example={
            "from": "ada@example.com",
            "to": "bob@example.com",
            "new_owner": "Bob",
            "new_owner_id": "…",
            "new_owner_previous_role": "admin",
        },  # fmt: skip
        short="{actor} transferred ownership of the workspace",
    ),
    # Invitations (addresses and roles): the pending list is shown only to those who may invite.
    "member.invited": Action(
        "Invited someone",
        "{actor} invited {email} to join as {role}",
        "members.invite",
        example={"invitation_id": "…", "email": "kay@example.com", "role": "member"},
        short="{actor} invited someone",
    ),
    "invitation.revoked": Action(
        "Withdrew an invitation",
        "{actor} withdrew the invitation for {email}",
        "members.invite",
        example={"invitation_id": "…", "email": "kay@example.com", "role": "member"},
        short="{actor} withdrew an invitation",
    ),
    "invitation.resent": Action(
        "Resent an invitation",
        "{actor} sent the invitation for {email} again",
        "members.invite",
        example={"invitation_id": "…", "email": "kay@example.com", "role": "member"},
        short="{actor} sent an invitation again",
    ),
    # Pipelines: every member sees the pipelines page.
    "pipeline.created": Action(
        "Created a pipeline",
        "{actor} created the pipeline “{name}”",
        "workspace.view",
        example=_PIPELINE | {"version": 1},
        short="{actor} created a pipeline",
    ),
    "pipeline.saved": Action(
        "Saved a pipeline",
        "{actor} saved version {version} of the pipeline “{name}”",
        "workspace.view",
        example=_PIPELINE | {"version": 3},
        short="{actor} saved a pipeline",
    ),
    "pipeline.deleted": Action(
        "Deleted a pipeline",
        "{actor} deleted the pipeline “{name}”",
        "workspace.view",
        example=_PIPELINE,
        short="{actor} deleted a pipeline",
    ),
    # Runs: every member sees the workspace's runs.
    "run.started": Action(
        "Started a run",
        "{actor} started a run of the pipeline “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering", "version": 3},
    ),
    "run.cancelled": Action(
        "Cancelled a run",
        "{actor} cancelled a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering"},
    ),
    "run.paused": Action(
        "Paused a run",
        "{actor} paused a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering"},
    ),
    "run.resumed": Action(
        "Resumed a run",
        "{actor} resumed a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering"},
    ),
    "run.restarted": Action(
        "Restarted a run",
        "{actor} restarted a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering", "from": "…"},
    ),
    "run.step_restarted": Action(
        "Restarted a step",
        "{actor} restarted step {step} of a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering", "step": "REVIEW"},
    ),
    "run.context_injected": Action(
        "Added context to a step",
        "{actor} added context to step {step} of a run of “{pipeline}”",
        "workspace.view",
        example={"run": "…", "pipeline": "Engineering", "step": "IMPLEMENT"},
    ),
    # Swarms: every member sees the swarms page.
    "swarm.started": Action(
        "Started a swarm",
        "{actor} started the swarm “{title}” ({tasks} tasks)",
        "workspace.view",
        example={"swarm_id": "swarm_0123456789ab", "title": "Build the API", "tasks": 12, "agent_id": "yukihiro"},
        short="{actor} started a swarm",
    ),
    "swarm.cancelled": Action(
        "Cancelled a swarm",
        "{actor} cancelled the swarm “{title}”",
        "workspace.view",
        example={"swarm_id": "swarm_0123456789ab", "title": "Build the API"},
        short="{actor} cancelled a swarm",
    ),
    "swarm.limits_changed": Action(
        "Changed the swarm limits",
        "{actor} set the swarm limits to {max_tasks} tasks a swarm, {max_concurrent} at once in a swarm and "
        "{workspace_concurrency} across the workspace",
        "workspace.view",
        example={
            "max_tasks": 200,
            "max_concurrent": 8,
            "workspace_concurrency": 16,
            "from": {"max_tasks": 500, "max_concurrent": 32, "workspace_concurrency": 32},
            "to": {"max_tasks": 200, "max_concurrent": 8, "workspace_concurrency": 16},
        },
        short="{actor} changed the swarm limits",
    ),
    # API keys: the keys page lists everyone's keys only to those who manage members (others: their own).
    "apikey.created": Action(
        "Created an API key",
        _key_sentence("created", " with {scopes} access"),
        "members.manage",
        example=_KEY,
        short="{actor} created an API key",
    ),
    "apikey.revoked": Action(
        "Revoked an API key",
        _key_sentence("revoked"),
        "members.manage",
        example=_KEY,
        short="{actor} revoked an API key",
    ),
    # The single sign-on settings page.
    "sso.configured": Action(
        "Configured single sign-on",
        _sso_changes,
        "settings.edit",
        example={"changes": {"issuer": {"from": None, "to": "https://login.example.com"}}},
        short="{actor} changed the single sign-on settings",
    ),
    "sso.tested": Action(
        "Tested the single sign-on connection",
        _tested,
        "settings.edit",
        example={"issuer": "https://login.example.com", "ok": False, "error": "the provider did not answer"},
        short="{actor} tested the single sign-on connection",
    ),
    "sso.enforced_changed": Action(
        "Changed single sign-on enforcement",
        _enforced,
        "settings.edit",
        example={"enforce_sso": True, "managed_accounts": False},
        short="{actor} changed the single sign-on requirement",
    ),
    "sso.domain_added": Action(
        "Added an e-mail domain",
        "{actor} added the e-mail domain {domain} (not verified yet)",
        "settings.edit",
        example={"domain": "example.com"},
        short="{actor} added an e-mail domain",
    ),
    "sso.domain_removed": Action(
        "Removed an e-mail domain",
        "{actor} removed the e-mail domain {domain}",
        "settings.edit",
        example={"domain": "example.com", "was_verified": True},
        short="{actor} removed an e-mail domain",
    ),
    "sso.domain_verified": Action(
        "Verified an e-mail domain",
        "{actor} proved the workspace owns {domain}",
        "settings.edit",
        example={"domain": "example.com", "password_sessions_ended": 0},
        short="{actor} verified an e-mail domain",
    ),
    "sso.domain_verify_failed": Action(
        "Domain verification failed",
        "{actor} could not verify {domain}: {error}",
        "settings.edit",
        example={"domain": "example.com", "error": "no TXT record was found"},
        short="{actor} could not verify an e-mail domain",
    ),
    "sso.domain_taken": Action(
        "Another workspace proved an e-mail domain",
        "Another workspace proved it owns {domain}, so it no longer counts as verified here",
        "settings.edit",
        example={"domain": "example.com"},
        short="Another workspace proved it owns one of this workspace's domains",
    ),
    # LLM providers and the model catalogue: every member sees the providers page (keys only as masked previews).
    "llm.provider_added": Action(
        "Added an LLM provider",
        "{actor} added the LLM provider “{label}”",
        "workspace.view",
        example=_PROVIDER,
        short="{actor} added an LLM provider",
    ),
    "llm.provider_changed": Action(
        "Changed an LLM provider",
        "{actor} changed the LLM provider “{label}”",
        "workspace.view",
        example=_PROVIDER | {"base_url": "https://api.openai.com/v1"},
        short="{actor} changed an LLM provider",
    ),
    "llm.provider_key_replaced": Action(
        "Replaced an LLM provider's key",
        "{actor} replaced the key of the LLM provider “{label}”",
        "workspace.view",
        example=_PROVIDER,
        short="{actor} replaced an LLM provider's key",
    ),
    "llm.provider_removed": Action(
        "Removed an LLM provider",
        "{actor} removed the LLM provider “{label}”",
        "workspace.view",
        example=_PROVIDER,
        short="{actor} removed an LLM provider",
    ),
    "llm.provider_tested": Action(
        "Tested an LLM provider",
        "{actor} tested the connection to “{label}”: {outcome}",
        "workspace.view",
        example=_PROVIDER | {"outcome": "it answered with 12 models"},
        short="{actor} tested an LLM provider",
    ),
    "llm.model_added": Action(
        "Added a model",
        "{actor} added the model {model}",
        "workspace.view",
        example=_MODEL,
        short="{actor} added a model",
    ),
    "llm.model_changed": Action(
        "Changed a model",
        "{actor} changed the model {model}",
        "workspace.view",
        example={"model": "openai/gpt-4.1", "input": "$2.5"},
        short="{actor} changed a model",
    ),
    "llm.model_removed": Action(
        "Removed a model",
        "{actor} removed the model {model}",
        "workspace.view",
        example=_MODEL,
        short="{actor} removed a model",
    ),
    # Budgets and spend: the usage pages'.
    "llm.budget_changed": Action(
        "Changed the LLM budget",
        _budget_changed,
        "usage.view",
        example={"budget": "run", "cap": "$5.00", "from": "no cap", "to": "$5.00"},
        short="{actor} changed the LLM budget",
    ),
    "llm.budget_warning": Action(
        "LLM budget at 80 %",
        "LLM spend reached {percent} % of {budget}: {spent} of {cap}",
        "usage.view",
        example=_BUDGET | {"percent": "81"},
        short="LLM spend passed 80 % of a budget",
    ),
    "llm.budget_reached": Action(
        "LLM budget reached",
        "LLM calls are refused: {budget} is spent ({spent} of {cap})",
        "usage.view",
        example=_BUDGET | {"percent": "100", "spent": "$500.02"},
        short="An LLM budget is spent: calls are refused",
    ),
    # Shown by no page but the audit log.
    "mail.delivered": Action(
        "Delivered an e-mail",
        "Delivered “{subject}” to {email}",
        "audit.view",
        example={"email": "kay@example.com", "subject": "Ada invited you to Acme on Marid", "kind": "invitation"},
        short="Marid delivered an e-mail",
    ),
    "sso.login": Action(
        "Signed in with single sign-on",
        "{actor} signed in with single sign-on ({issuer})",
        "audit.view",
        example=_SSO,
        short="{actor} signed in with single sign-on",
    ),
    "sso.login_failed": Action(
        "Single sign-on failed",
        "A single sign-on sign-in failed: {error}",
        "audit.view",
        example={"reason": "token", "error": "the ID token has expired"},
        short="A single sign-on sign-in failed",
    ),
    "sso.identity_linked": Action(
        "Linked a single sign-on identity",
        "{actor} linked their account to the identity provider {issuer}",
        "audit.view",
        example={**_SSO, "existing_account": True, "how": "signed in"},
        short="{actor} linked a single sign-on identity",
    ),
    "sso.identity_unlinked": Action(
        "Unlinked a single sign-on identity",
        "{actor} unlinked their account from the identity provider {issuer}",
        "audit.view",
        example={"issuer": "https://login.example.com"},
        short="{actor} unlinked a single sign-on identity",
    ),
    "sso.password_login_blocked": Action(
        "Password sign-in refused (managed account)",
        "{actor} tried to sign in with a password and was refused: this workspace requires single sign-on",
        "audit.view",
    ),
    # Account events go to the person's own security log now; these name entries older logs still hold.
    "auth.login": Action("Signed in", "{actor} signed in", "audit.view"),
    "auth.login_failed": Action(
        "Sign-in failed (wrong password)", "Someone tried to sign in as {actor} with a wrong password", "audit.view"
    ),
    "auth.2fa_failed": Action(
        "Sign-in failed (wrong 2FA code)",
        "Someone tried to sign in as {actor} with a wrong two-factor code",
        "audit.view",
    ),
    "auth.logout": Action("Signed out", "{actor} signed out", "audit.view"),
    "auth.2fa_enabled": Action(
        "Turned on two-factor authentication", "{actor} turned on two-factor authentication", "audit.view"
    ),
    "auth.2fa_disabled": Action(
        "Turned off two-factor authentication", "{actor} turned off two-factor authentication", "audit.view"
    ),
    "auth.recovery_codes_regenerated": Action(
        "Made new recovery codes", "{actor} made new two-factor recovery codes", "audit.view"
    ),
    "auth.password_changed": Action("Changed their password", "{actor} changed their password", "audit.view"),
    "auth.password_reset": Action("Reset their password", "{actor} reset their password by e-mail", "audit.view"),
    "auth.reauth_failed": Action(
        "Re-authentication failed", "{actor} typed a wrong password or code when confirming it was them", "audit.view"
    ),
    "auth.session_revoked": Action("Ended a session", "{actor} signed one of their sessions out", "audit.view"),
    "account.email_changed": Action(
        "Changed their e-mail address", "{actor} changed their e-mail address", "audit.view"
    ),
    "auth.sessions_revoked": Action(
        "Signed out everywhere else", "{actor} signed out of every other browser", "audit.view"
    ),
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
    return Action("Other change", "{actor} made a change (see the audit log)", UNLISTED_PERMISSION)


def label(action: str) -> str:
    found = CATALOGUE.get(action)
    return found.label if found is not None else action


class _Missing(KeyError):
    """A field the sentence needs is not in the entry's details."""


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise _Missing(key)


def _template(action: Action, details: Details) -> str:
    return action.sentence(details) if callable(action.sentence) else action.sentence


def sentence(action: str, actor: str, details: Any) -> str:
    """``Ada changed Bob's role from member to viewer``: the feed's line for an entry (plain text; templates
    escape). An entry without a field its sentence needs is said shortly ("Ada changed a member's role")."""
    found = entry(action)
    values = _Values()
    if isinstance(details, dict):
        values.update({key: value for key, value in details.items() if isinstance(value, str | int | dict)})
    values["actor"] = actor or "Someone"
    # Entries from before names were recorded name the person by address.
    if "member" not in values and isinstance(values.get("email"), str):
        values["member"] = values["email"]
    if "new_owner" not in values and isinstance(values.get("to"), str) and "@" in values["to"]:
        values["new_owner"] = values["to"]
    try:
        chosen = _template(found, details if isinstance(details, dict) else {})
    except Exception:  # a sentence function must never break the feed: say it shortly
        chosen = found.short
    for template in (chosen, found.short):
        try:
            text = template.format_map(values)
        except (_Missing, KeyError, IndexError, TypeError, ValueError):
            continue
        # A sentence that starts with a name keeps it as written ("ada"); any other starts with a capital.
        return text if template.startswith("{actor}") else text[:1].upper() + text[1:]
    return found.short.replace("{actor}", values["actor"])


def fields(action: str) -> set[str]:
    """The names a sentence takes from the details (``actor`` aside)."""
    found = entry(action)
    template = _template(found, found.example)
    names = {name.split("[")[0] for _, name, _, _ in Formatter().parse(template) if name}
    return (names | set(found.example)) - {"actor"}


def visible_actions(permissions: frozenset[str]) -> frozenset[str]:
    """The catalogued actions a viewer with ``permissions`` may see live (others: ``UNLISTED_PERMISSION``)."""
    return frozenset(action for action, found in CATALOGUE.items() if found.permission in permissions)
