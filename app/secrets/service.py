"""Workspace secrets: create, list (masked), replace the value, describe, delete, and grant to agents.

A value is sealed with the secrets service under the workspace's data key, bound to the purpose
``workspace.secret`` and the secret's id, and never comes back out here except in
:func:`granted_environment` (for the platform to hand to an agent's sandbox, a later step). Audit entries and
errors name a secret by its name, never by its value. Every function takes the workspace's tenant session and
the acting :class:`~app.audit.actor.Actor`; nothing commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound
from app.secrets.models import SecretGrant, WorkspaceSecret
from app.secrets.values import clean_description, clean_name, clean_value, masked_preview
from app.security.secrets import SecretsService

PURPOSE = "workspace.secret"
MAX_SECRETS = 500


class SecretNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("That secret does not exist.")


@dataclass(frozen=True)
class SecretView:
    secret: WorkspaceSecret
    # The agents it is granted to, as (id, name), by name.
    agents: list[tuple[str, str]]


# --- reading -------------------------------------------------------------------------------------------------


def _parse_id(secret_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(secret_id, uuid.UUID):
        return secret_id
    try:
        return uuid.UUID(str(secret_id))
    except ValueError:
        raise SecretNotFound() from None


async def _grants(session: AsyncSession, secret_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str]]]:
    rows = await session.execute(
        select(SecretGrant.secret_id, Agent.id, Agent.name)
        .join(Agent, Agent.id == SecretGrant.agent_id)
        .where(SecretGrant.secret_id.in_(secret_ids))
        .order_by(func.lower(Agent.name), Agent.id)
    )
    found: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for secret_id, agent_id, name in rows:
        found.setdefault(secret_id, []).append((agent_id, name))
    return found


async def list_secrets(session: AsyncSession) -> list[SecretView]:
    """Every secret of the workspace by name, with the agents that get it."""
    secrets = list(await session.scalars(select(WorkspaceSecret).order_by(WorkspaceSecret.name)))
    grants = await _grants(session, [secret.id for secret in secrets]) if secrets else {}
    return [SecretView(secret, grants.get(secret.id, [])) for secret in secrets]


async def get_secret(session: AsyncSession, secret_id: uuid.UUID | str, *, for_update: bool = False) -> SecretView:
    query = select(WorkspaceSecret).where(WorkspaceSecret.id == _parse_id(secret_id))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    secret = await session.scalar(query)
    if secret is None:
        raise SecretNotFound()
    grants = await _grants(session, [secret.id])
    return SecretView(secret, grants.get(secret.id, []))


async def secrets_of_agent(session: AsyncSession, agent_id: str) -> list[WorkspaceSecret]:
    """The secrets granted to an agent, by name."""
    return list(
        await session.scalars(
            select(WorkspaceSecret)
            .join(SecretGrant, SecretGrant.secret_id == WorkspaceSecret.id)
            .where(SecretGrant.agent_id == agent_id)
            .order_by(WorkspaceSecret.name)
        )
    )


async def granted_environment(
    session: AsyncSession, sealer: SecretsService, workspace_id: str, agent_id: str
) -> dict[str, str]:
    """The plaintext of every secret granted to an agent, by name: only for the platform to put into that
    agent's sandbox. Never show, log or record what this returns."""
    values: dict[str, str] = {}
    for secret in await secrets_of_agent(session, agent_id):
        values[secret.name] = await sealer.open(session, workspace_id, PURPOSE, str(secret.id), secret.sealed_value)
    return values


# --- changing ------------------------------------------------------------------------------------------------


async def create_secret(
    session: AsyncSession,
    sealer: SecretsService,
    workspace_id: str,
    actor: Actor,
    *,
    name: str,
    value: str,
    description: str = "",
) -> WorkspaceSecret:
    """A new secret; its name must be free in the workspace."""
    problems: dict[str, str] = {}
    checks: list[tuple[Callable[[str], str], str]] = [
        (clean_name, name),
        (clean_value, value),
        (clean_description, description),
    ]
    for check, given in checks:
        try:
            check(given)
        except Invalid as invalid:
            problems.update(invalid.errors)
    if problems:
        raise Invalid(problems)
    clean, plain = clean_name(name), clean_value(value)
    taken = await session.scalar(select(WorkspaceSecret.id).where(WorkspaceSecret.name == clean))
    if taken is not None:
        raise Invalid(f"There already is a secret called {clean}; replace its value there instead.", field="name")
    count = int(await session.scalar(select(func.count()).select_from(WorkspaceSecret)) or 0)
    if count >= MAX_SECRETS:
        raise Invalid(f"A workspace holds at most {MAX_SECRETS} secrets; delete unused ones first.")
    secret = WorkspaceSecret(
        id=uuid.uuid4(),
        name=clean,
        description=clean_description(description),
        preview=masked_preview(plain),
        created_by=actor.user_id,
        updated_by=actor.user_id,
    )
    secret.sealed_value = await sealer.seal(session, workspace_id, PURPOSE, str(secret.id), plain)
    session.add(secret)
    try:
        await session.flush()
    except IntegrityError:  # the same name, created at the same moment
        raise Invalid(f"There already is a secret called {clean}.", field="name") from None
    await session.refresh(secret, ["created_at", "updated_at", "value_updated_at"])
    await record_in_workspace(session, "secret.created", actor, {"secret_id": str(secret.id), "name": secret.name})
    return secret


async def replace_value(
    session: AsyncSession,
    sealer: SecretsService,
    workspace_id: str,
    actor: Actor,
    secret_id: uuid.UUID | str,
    value: str,
) -> WorkspaceSecret:
    """A new value for a secret (agents that get it receive the new value from their next step on)."""
    secret = (await get_secret(session, secret_id, for_update=True)).secret
    plain = clean_value(value)
    secret.sealed_value = await sealer.seal(session, workspace_id, PURPOSE, str(secret.id), plain)
    secret.preview = masked_preview(plain)
    secret.updated_at = secret.value_updated_at = datetime.now(UTC)
    secret.updated_by = actor.user_id
    await session.flush()
    details = {"secret_id": str(secret.id), "name": secret.name}
    await record_in_workspace(session, "secret.value_replaced", actor, details)
    return secret


async def describe_secret(
    session: AsyncSession, actor: Actor, secret_id: uuid.UUID | str, description: str
) -> tuple[WorkspaceSecret, bool]:
    """Change what a secret is for; returns it and whether anything changed."""
    secret = (await get_secret(session, secret_id, for_update=True)).secret
    clean = clean_description(description)
    if secret.description == clean:
        return secret, False
    secret.description = clean
    secret.updated_at = datetime.now(UTC)
    secret.updated_by = actor.user_id
    await session.flush()
    details = {"secret_id": str(secret.id), "name": secret.name}
    await record_in_workspace(session, "secret.described", actor, details)
    return secret, True


async def delete_secret(session: AsyncSession, actor: Actor, secret_id: uuid.UUID | str) -> WorkspaceSecret:
    """Delete a secret and its grants; agents stop getting it from their next step on."""
    view = await get_secret(session, secret_id, for_update=True)
    secret = view.secret
    await session.delete(secret)
    await session.flush()
    details = {"secret_id": str(secret.id), "name": secret.name}
    if view.agents:
        details["agents"] = ", ".join(name for _, name in view.agents)
    await record_in_workspace(session, "secret.deleted", actor, details)
    return secret


async def set_grants(
    session: AsyncSession, actor: Actor, secret_id: uuid.UUID | str, agent_ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Exactly ``agent_ids`` get the secret from now on; returns the names of the agents added and removed."""
    wanted = list(dict.fromkeys(agent_ids))
    view = await get_secret(session, secret_id, for_update=True)
    known = {
        agent_id: name
        for agent_id, name in await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(wanted)))
    }
    unknown = [agent_id for agent_id in wanted if agent_id not in known]
    if unknown:
        shown = ", ".join(str(agent_id)[:48] for agent_id in unknown[:5])
        raise Invalid(f"No such agent{'s' if len(unknown) > 1 else ''} in this workspace: {shown}.", field="agents")
    current = {agent_id: name for agent_id, name in view.agents}
    added = [agent_id for agent_id in wanted if agent_id not in current]
    removed = [agent_id for agent_id in current if agent_id not in known]
    if not added and not removed:
        return [], []
    if removed:
        await session.execute(
            delete(SecretGrant).where(SecretGrant.secret_id == view.secret.id, SecretGrant.agent_id.in_(removed))
        )
    for agent_id in added:
        session.add(SecretGrant(secret_id=view.secret.id, agent_id=agent_id, created_by=actor.user_id))
    await session.flush()
    added_names = [known[agent_id] for agent_id in added]
    removed_names = [current[agent_id] for agent_id in removed]
    details = {"secret_id": str(view.secret.id), "name": view.secret.name}
    if added_names:
        details["granted"] = ", ".join(added_names)
    if removed_names:
        details["revoked"] = ", ".join(removed_names)
    await record_in_workspace(session, "secret.grants_changed", actor, details)
    return added_names, removed_names
