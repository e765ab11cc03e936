"""The gateway's tokens: what a sandboxed agent step may spend, through whom, and until when.

A token is ``mgw_<workspace id>_<43 random characters>``: it names its workspace, so the gateway finds the
schema without scanning, and only its SHA-256 is stored (``llm_tokens``, in that workspace). It is scoped to one
agent and one run and step, or one session; it expires after minutes; the pipeline engine revokes it when the
step ends. How the pipeline engine (a job on the long queue) uses it::

    tokens = GatewayTokens(ctx["db"], ctx["redis"])
    minted = await tokens.mint(workspace_id, agent_id="finn", run_id=run.id, step_id=step.id,
                               ttl=timedelta(minutes=30), run_cap=Decimal("5.00"))
    result = await supervisor.run_step(step, workspace_id=workspace_id, llm_token=minted.token, ...)
    await tokens.revoke_step(workspace_id, step.id)      # in a finally: every token of the step

Revocation is immediate everywhere: besides ``revoked_at`` in Postgres, a Redis key marks the token revoked
until it would have expired, and the gateway checks that key on every call (its cache of token rows never
outlives a few seconds, and never a revocation).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.errors import Invalid
from app.live.bus import check_workspace_id
from app.llm.models import LlmToken
from app.security.tokens import constant_time_equals, new_token, token_hash

PREFIX = "mgw_"
_WORKSPACE = re.compile(r"[a-z0-9]{12}")
# Run, step, session and agent ids reach Redis keys and event topics: the bus's rule for topic ids.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DEFAULT_TTL = timedelta(minutes=60)
MAX_TTL = timedelta(hours=12)


class TokenError(Invalid):
    """A token cannot be minted as asked (an id of the wrong shape, a lifetime out of range)."""


@dataclass(frozen=True)
class MintedToken:
    id: uuid.UUID
    # The token itself: hand it to the supervisor, never store or log it.
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: one agent in one run and step (or one session) of one workspace."""

    id: uuid.UUID
    workspace_id: str
    agent_id: str
    run_id: str | None
    step_id: str | None
    session_id: str | None
    run_cap: Decimal | None
    expires_at: datetime
    revoked: bool

    def usable(self, moment: datetime | None = None) -> bool:
        return not self.revoked and self.expires_at > (moment or datetime.now(UTC))


def workspace_of(token: str) -> str | None:
    """The workspace a token names, or None when it is not shaped like a gateway token."""
    if len(token) < 60 or len(token) > 80 or not token.startswith(PREFIX) or token[16:17] != "_":
        return None
    workspace_id = token[4:16]
    return workspace_id if _WORKSPACE.fullmatch(workspace_id) else None


def _checked_id(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not _ID.fullmatch(value):
        raise TokenError(f"A {name} is 1-64 letters, digits, '-' or '_', starting with a letter or digit.")
    return value


async def mint_token(
    session: AsyncSession,
    workspace_id: str,
    *,
    agent_id: str,
    run_id: str | None = None,
    step_id: str | None = None,
    session_id: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    run_cap: Decimal | None = None,
) -> MintedToken:
    """A new token in the caller's tenant ``session`` (of ``workspace_id``); the caller commits.

    ``run_cap``: the run's spending cap in USD, counted over every call of ``run_id`` (every step's token of
    the run should carry the same). A token belongs to a run and step, or to a session.
    """
    check_workspace_id(workspace_id)
    if _checked_id(agent_id, "agent id") is None:
        raise TokenError("A token needs an agent.")
    _checked_id(run_id, "run id")
    _checked_id(step_id, "step id")
    _checked_id(session_id, "session id")
    if run_id is None and session_id is None:
        raise TokenError("A token belongs to a run (and step) or to a session.")
    if run_cap is not None and (run_cap < 0 or run_cap >= Decimal("100000000")):
        raise TokenError("A run's cap is between $0 and $99,999,999.")
    if run_cap is not None and run_id is None:
        raise TokenError("A run's cap needs the run.")
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise TokenError(f"A token lives between a second and {MAX_TTL.total_seconds() / 3600:g} hours.")
    token = f"{PREFIX}{workspace_id}_{new_token(32)}"
    expires_at = datetime.now(UTC) + ttl
    row = LlmToken(
        id=uuid.uuid4(),
        token_hash=token_hash(token),
        agent_id=agent_id,
        run_id=run_id,
        step_id=step_id,
        session_id=session_id,
        run_cap=run_cap,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return MintedToken(id=row.id, token=token, expires_at=expires_at)


async def revoke_tokens(
    session: AsyncSession,
    *,
    token_id: uuid.UUID | None = None,
    step_id: str | None = None,
    run_id: str | None = None,
    session_id: str | None = None,
) -> list[tuple[uuid.UUID, datetime]]:
    """Revoke the named token, or every live token of a step, run or session; returns their ids and expiries
    (for :func:`mark_revoked`). In the caller's tenant transaction."""
    if [token_id, step_id, run_id, session_id].count(None) != 3:
        raise TokenError("Name one token, step, run or session to revoke.")
    statement = update(LlmToken).where(LlmToken.revoked_at.is_(None))
    if token_id is not None:
        statement = statement.where(LlmToken.id == token_id)
    elif step_id is not None:
        statement = statement.where(LlmToken.step_id == step_id)
    elif run_id is not None:
        statement = statement.where(LlmToken.run_id == run_id)
    else:
        statement = statement.where(LlmToken.session_id == session_id)
    rows = await session.execute(
        statement.values(revoked_at=datetime.now(UTC)).returning(LlmToken.id, LlmToken.expires_at)
    )
    return [(row[0], row[1]) for row in rows]


def revoked_key(workspace_id: str, token_id: uuid.UUID) -> str:
    check_workspace_id(workspace_id)
    return f"marid:ws:{workspace_id}:llm:revoked:{token_id}"


async def mark_revoked(redis: Redis, workspace_id: str, revoked: list[tuple[uuid.UUID, datetime]]) -> None:
    """Tell every gateway process at once (they check this on each call), until the tokens would expire."""
    if not revoked:
        return
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for token_id, expires_at in revoked:
            seconds = int(expires_at.timestamp() - now) + 5
            if seconds > 0:
                pipe.set(revoked_key(workspace_id, token_id), b"1", ex=seconds)
        await pipe.execute()


async def find_grant(session: AsyncSession, workspace_id: str, token: str) -> Grant | None:
    """The grant of ``token`` as stored (expired or revoked ones too); None for an unknown token."""
    digest = token_hash(token)
    row = await session.scalar(select(LlmToken).where(LlmToken.token_hash == digest))
    if row is None or not constant_time_equals(row.token_hash, digest):
        return None
    return Grant(
        id=row.id,
        workspace_id=workspace_id,
        agent_id=row.agent_id,
        run_id=row.run_id,
        step_id=row.step_id,
        session_id=row.session_id,
        run_cap=row.run_cap,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


class GatewayTokens:
    """Mint and revoke tokens in their own short transactions (for the pipeline engine and chat sessions)."""

    def __init__(self, db: Database, redis: Redis) -> None:
        self.db = db
        self.redis = redis

    async def mint(
        self,
        workspace_id: str,
        *,
        agent_id: str,
        run_id: str | None = None,
        step_id: str | None = None,
        session_id: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
        run_cap: Decimal | None = None,
    ) -> MintedToken:
        async with self.db.tenant_session(workspace_id) as session:
            return await mint_token(
                session,
                workspace_id,
                agent_id=agent_id,
                run_id=run_id,
                step_id=step_id,
                session_id=session_id,
                ttl=ttl,
                run_cap=run_cap,
            )

    async def revoke(self, workspace_id: str, token_id: uuid.UUID) -> int:
        """Revoke one token; returns how many were still live (0 or 1)."""
        async with self.db.tenant_session(workspace_id) as session:
            revoked = await revoke_tokens(session, token_id=token_id)
        return await self._marked(workspace_id, revoked)

    async def revoke_step(self, workspace_id: str, step_id: str) -> int:
        """Revoke every token of a step (call it when the step ends, however it ends)."""
        async with self.db.tenant_session(workspace_id) as session:
            revoked = await revoke_tokens(session, step_id=step_id)
        return await self._marked(workspace_id, revoked)

    async def revoke_run(self, workspace_id: str, run_id: str) -> int:
        """Revoke every token of a run (a cancelled or finished run)."""
        async with self.db.tenant_session(workspace_id) as session:
            revoked = await revoke_tokens(session, run_id=run_id)
        return await self._marked(workspace_id, revoked)

    async def revoke_session(self, workspace_id: str, session_id: str) -> int:
        """Revoke every token of a chat or agent session."""
        async with self.db.tenant_session(workspace_id) as session:
            revoked = await revoke_tokens(session, session_id=session_id)
        return await self._marked(workspace_id, revoked)

    async def _marked(self, workspace_id: str, revoked: list[tuple[uuid.UUID, datetime]]) -> int:
        await mark_revoked(self.redis, workspace_id, revoked)
        return len(revoked)


def gateway_base_url(settings: Settings) -> str:
    """What a supervisor gives its sandboxes' SDK as the LLM endpoint: ``LlmEndpoint(gateway_base_url(settings))``."""
    return str(settings.base_url).rstrip("/") + "/llm/v1"
