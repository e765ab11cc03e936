"""The "next steps" checklist on a new workspace's dashboard: a small registry each feature adds its item to.

A domain registers one item, beside its own code, with what says whether the workspace has done it: a select
that finds a row once it has (preferred: the dashboard asks all of them in one statement), or a function::

    # app/agents/checklist.py (imported by app/agents/pages.py, so it registers when the routes load)
    from app.onboarding.checklist import Tables, register

    register("agent", select(Agent.id), tables=Tables.WORKSPACE)

The items themselves (their order, words and link) are declared once, below, so the list reads the same
whichever features are built: an item whose feature has not registered its check yet shows as coming soon. A
check gets a session of the kind its tables need: ``Tables.WORKSPACE`` (the workspace's own schema, e.g. agents,
runs) or ``Tables.PLATFORM`` (public tables, e.g. members, invitations). It must be quick (a ``LIMIT 1``), and it
never raises: one that does counts as not done, and is logged.

The dashboard hides the checklist once every item is done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.tenants.context import MemberOf
from app.tenants.models import Workspace

logger = logging.getLogger("marid.onboarding")

Check = Callable[[AsyncSession, Workspace], Awaitable[bool]]
# The same answer from what the request already loaded with the person's session (no query).
Known = Callable[[MemberOf], bool]


class Tables(StrEnum):
    WORKSPACE = "workspace"
    PLATFORM = "platform"


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    text: str
    # Where to do it; ``{slug}`` is the workspace's.
    path: str
    # Who may do it (``app.tenants.permissions``): others see the item without its link.
    permission: str


@dataclass(frozen=True)
class ItemState:
    item: Item
    done: bool
    # False while the feature has not registered its check (it is still being built).
    available: bool
    url: str
    may_do: bool


ITEMS: tuple[Item, ...] = (
    Item(
        "invite",
        "Invite your team",
        "Agents work best with the people who review their work.",
        "/w/{slug}/members#invite",
        "members.invite",
    ),
    Item(
        "llm_provider",
        "Add an LLM provider",
        "Connect OpenAI, Anthropic or another provider; agents call models through it.",
        "/w/{slug}/llm",
        "providers.manage",
    ),
    Item(
        "agent",
        "Create an agent",
        "Give it a persona and the tools it may use.",
        "/w/{slug}/agents/new",
        "workspace.work",
    ),
    Item(
        "pipeline_run",
        "Run a pipeline",
        "Start a starter pipeline and watch each step live.",
        "/w/{slug}/pipelines",
        "workspace.work",
    ),
)

_CHECKS: dict[str, tuple[Check, Tables]] = {}
_KNOWN: dict[str, Known] = {}
# Checks given as a select (done when it finds a row): asked together, in one statement per kind of tables.
_PROBES: dict[str, Select[Any]] = {}


def register(
    key: str, check: Check | Select[Any], *, tables: Tables = Tables.WORKSPACE, known: Known | None = None
) -> None:
    """Tick item ``key`` (one of ``ITEMS``) with ``check``; registering the same key again replaces it.

    ``check`` is a function, or a select that finds a row once the item is done (``select(Agent.id)``): the
    selects of one kind of tables are asked in one statement (``SELECT EXISTS (...), EXISTS (...)``), one
    round trip for the whole checklist. ``known``: the same answer read from the person's loaded membership
    (``app.tenants.context.MemberOf``), used instead of ``check`` when the caller passes it (the dashboard: no
    public transaction of its own).
    """
    if key not in {item.key for item in ITEMS}:
        raise KeyError(f"no checklist item {key!r}; declare it in app.onboarding.checklist.ITEMS first")
    _PROBES.pop(key, None)
    if isinstance(check, Select):
        _PROBES[key] = check
        check = _probe_check(check)
    _CHECKS[key] = (check, tables)
    _combined.cache_clear()
    workspace_probes.cache_clear()
    if known is None:
        _KNOWN.pop(key, None)
    else:
        _KNOWN[key] = known


def _probe_check(probe: Select[Any]) -> Check:
    async def check(session: AsyncSession, workspace: Workspace) -> bool:
        return await session.scalar(probe.limit(1)) is not None

    return check


@lru_cache(maxsize=32)
def _combined(keys: tuple[str, ...]) -> Select[Any]:
    columns: list[Any] = [_PROBES[key].exists().label(key) for key in keys]
    return select(*columns)


async def _run_probes(keys: list[str], session: AsyncSession, workspace: Workspace) -> dict[str, bool]:
    try:
        # On the session's connection (same transaction): no ORM execute path for a Core statement.
        connection = await session.connection()
        row = (await connection.execute(_combined(tuple(keys)))).one()
    except Exception:  # a broken check must not break the dashboard
        logger.warning("checklist checks %r failed for workspace %s", keys, workspace.id, exc_info=True)
        return dict.fromkeys(keys, False)
    return {key: bool(value) for key, value in zip(keys, row, strict=True)}


async def _run_own(own: list[tuple[str, Check]], session: AsyncSession, workspace: Workspace) -> dict[str, bool]:
    probed = [key for key, _ in own if key in _PROBES]
    done = await _run_probes(probed, session, workspace) if probed else {}
    for key, check in own:
        if key not in done:
            done[key] = await _run(check, session, workspace, key)
    return done


def registered() -> frozenset[str]:
    return frozenset(_CHECKS)


async def _run(check: Check, session: AsyncSession, workspace: Workspace, key: str) -> bool:
    try:
        return bool(await check(session, workspace))
    except Exception:  # a broken check must not break the dashboard
        logger.warning("checklist check %r failed for workspace %s", key, workspace.id, exc_info=True)
        return False


@lru_cache(maxsize=1)  # the same tuple until the registry changes (callers may cache statements built on it)
def workspace_probes() -> tuple[tuple[str, ColumnElement[bool]], ...]:
    """The items of the workspace's own tables registered as selects, each as an ``EXISTS`` column: for a caller
    that asks them inside a statement of its own (the dashboard, with its feed) and passes the answers to
    :func:`progress` as ``answered``."""
    return tuple(
        (key, _PROBES[key].exists().label(f"probe_{key}"))
        for key, (_, tables) in _CHECKS.items()
        if key in _PROBES and tables == Tables.WORKSPACE
    )


async def progress(
    db: Database,
    workspace: Workspace,
    permissions: frozenset[str],
    *,
    tenant: AsyncSession | None = None,
    member: MemberOf | None = None,
    answered: Mapping[str, bool] | None = None,
) -> list[ItemState]:
    """Every item, in order, with whether it is done (those without a check are not, and are marked unavailable).

    ``tenant``: the caller's open tenant session of ``workspace``, for the checks of its own tables (one
    transaction for the whole dashboard instead of one more here). ``member``: the viewer's membership of
    ``workspace`` as loaded with their session, for the checks that can answer from it. ``answered``: items the
    caller already asked (:func:`workspace_probes`)."""
    done: dict[str, bool] = {key: bool(value) for key, value in (answered or {}).items() if key in _CHECKS}
    if member is not None:
        if member.workspace.id != workspace.id:
            raise ValueError("the membership is of another workspace")
        for key, known in _KNOWN.items():
            if key in _CHECKS:
                done[key] = bool(known(member))
    platform = [
        (key, check) for key, (check, tables) in _CHECKS.items() if tables == Tables.PLATFORM and key not in done
    ]
    own = [(key, check) for key, (check, tables) in _CHECKS.items() if tables == Tables.WORKSPACE and key not in done]
    if platform:
        async with db.public_session() as session:
            for key, check in platform:
                done[key] = await _run(check, session, workspace, key)
    if own and tenant is not None:
        done.update(await _run_own(own, tenant, workspace))
    elif own:
        async with db.tenant_session(workspace.id) as session:
            done.update(await _run_own(own, session, workspace))
    return [
        ItemState(
            item=item,
            done=done.get(item.key, False),
            available=item.key in _CHECKS,
            url=item.path.format(slug=workspace.slug),
            may_do=item.permission in permissions,
        )
        for item in ITEMS
    ]
