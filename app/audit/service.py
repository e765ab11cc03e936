"""Writing and reading a workspace's audit log. Services join the caller's transaction; they never commit.

* :func:`record` is for changes to platform tables (memberships, settings, SSO, API keys, mail...): the entry
  goes into ``public.audit_outbox`` in the caller's public transaction, so it exists if and only if the change
  committed; the relay (``app.audit.relay``) then carries it into the workspace's log and onto its live feed.
* :func:`record_in_workspace` is for changes to the workspace's own tables (agents, runs...): the entry goes
  straight into the log in the caller's tenant transaction, and is published once that commits.

``app.audit.unit_of_work`` opens such transactions and relays or publishes right after they commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, String, all_, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import catalogue
from app.audit.actor import Actor
from app.audit.models import AuditEvent, AuditOutbox
from app.db.rows import detached, shape_of

# session.info keys: what a unit of work must relay (public) or publish (tenant) once it has committed.
PENDING_RELAY = "marid.audit.relay"
PENDING_PUBLISH = "marid.audit.publish"


def record(
    session: AsyncSession, workspace_id: str, action: str, actor: Actor, details: dict[str, Any] | None = None
) -> None:
    """Add an entry of a platform change to the caller's public transaction (see the module docstring)."""
    session.add(
        AuditOutbox(
            workspace_id=workspace_id,
            action=action,
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            actor_label=actor.label[:200],
            ip=actor.ip[:64],
            details=details or {},
        )
    )
    pending: dict[str, list[str]] = session.info.setdefault(PENDING_RELAY, {})
    pending.setdefault(workspace_id, []).append(action)


async def record_in_workspace(
    session: AsyncSession, action: str, actor: Actor, details: dict[str, Any] | None = None
) -> AuditEvent:
    """Add an entry of a change to the workspace's own tables to the caller's tenant transaction."""
    event = AuditEvent(
        at=datetime.now(UTC),
        action=action,
        actor_kind=actor.kind.value,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        ip=actor.ip[:64],
        details=details or {},
    )
    session.add(event)
    await session.flush()  # its id, for the live event after commit
    pending: list[AuditEvent] = session.info.setdefault(PENDING_PUBLISH, [])
    pending.append(event)
    return event


# --- reading -------------------------------------------------------------------------------------------------

PAGE_SIZE = 50


@dataclass
class AuditFilter:
    """What the audit log page and its API twin filter by; ``before`` pages back by event id."""

    action: str | None = None
    actor: uuid.UUID | None = None
    start: date | None = None
    end: date | None = None
    before: int | None = None


def filter_problems(query: AuditFilter) -> dict[str, str]:
    """What is wrong with a filter, by field (``from``, ``to``): the page and the API refuse alike."""
    problems: dict[str, str] = {}
    for key, label, day in (("from", "“From”", query.start), ("to", "“To”", query.end)):
        # Also keeps "the day after" (the end of the range) inside what dates can hold.
        if day is not None and not 1970 <= day.year <= 9000:
            problems[key] = f"{label} must be a date between 1970 and 9000."
    if query.start and query.end and query.start > query.end and not problems:
        problems["to"] = "“To” must not be before “From”."
    return problems


async def list_events(session: AsyncSession, query: AuditFilter, limit: int = PAGE_SIZE) -> list[AuditEvent]:
    """Entries matching ``query``, newest first (``session``: the workspace's tenant session)."""
    conditions: list[ColumnElement[bool]] = []
    if query.action:
        conditions.append(AuditEvent.action == query.action)
    if query.actor is not None:
        conditions.append(AuditEvent.actor_id == str(query.actor))
    if query.start:
        conditions.append(AuditEvent.at >= datetime.combine(query.start, time.min, tzinfo=UTC))
    if query.end:
        conditions.append(AuditEvent.at < datetime.combine(query.end + timedelta(days=1), time.min, tzinfo=UTC))
    if query.before is not None:
        conditions.append(AuditEvent.id < query.before)
    rows = await session.scalars(select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(limit))
    return list(rows)


async def known_actions(session: AsyncSession) -> list[str]:
    """Every action in this log or in the catalogue, for the filter's choices."""
    return sorted(set(await session.scalars(select(AuditEvent.action).distinct())) | set(catalogue.CATALOGUE))


async def recent_visible(session: AsyncSession, permissions: frozenset[str], limit: int = 20) -> list[AuditEvent]:
    """The newest entries a viewer with ``permissions`` may see on the live feed (the catalogue decides).

    Every dashboard view runs it: a Core statement built once per set of permissions, rows turned into detached
    ``AuditEvent`` objects (``app.db.rows``) without ORM loading."""
    # On the session's connection (same transaction): a Core statement needs none of the ORM's execute path.
    connection = await session.connection()
    rows = await connection.execute(visible_statement(permissions), {"limit": limit})
    return [detached(_EVENT, row) for row in rows]


_EVENT = shape_of(AuditEvent)


def event_of(row: Sequence[Any], start: int = 0) -> AuditEvent:
    """The detached event in ``row[start:]`` (the columns of :func:`visible_statement`)."""
    return detached(_EVENT, row, start)


@lru_cache(maxsize=64)  # one per set of permissions: a handful of roles (and key scopes)
def visible_statement(permissions: frozenset[str]) -> Select[Any]:
    """:func:`recent_visible`'s statement (the event's columns, newest first; parameter ``limit``), for a caller
    that reads it within a statement of its own (the dashboard); :func:`event_of` reads its rows."""
    # One array parameter, not an IN list: the statement compiles once and is cached (an IN list is re-rendered
    # at every call, which measured a tenth of a dashboard request).
    shown = bindparam("shown", sorted(catalogue.visible_actions(permissions)), type_=ARRAY(String))
    visible: list[ColumnElement[bool]] = [AuditEvent.action == any_(shown)]
    if catalogue.UNLISTED_PERMISSION in permissions:
        known = bindparam("known", sorted(catalogue.CATALOGUE), type_=ARRAY(String))
        visible.append(AuditEvent.action != all_(known))
    return select(*_EVENT.columns).where(or_(*visible)).order_by(AuditEvent.id.desc()).limit(bindparam("limit"))


# --- what the page and the API show -------------------------------------------------------------------


def describe(details: Any) -> str:
    """A one-line reading of an event's details: ``viewer → member; email: kay@example.com``."""
    if not isinstance(details, dict):
        return "" if details is None else str(details)
    parts = []
    rest = dict(details)
    if "from" in rest and "to" in rest:
        parts.append(f"{_show(rest.pop('from'))} → {_show(rest.pop('to'))}")
    for key, value in rest.items():
        if key.endswith("_id"):
            continue  # ids are for machines; the row already names the people involved
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            parts.append(f"{key}: {_show(value['from'])} → {_show(value['to'])}")
        else:
            parts.append(f"{key}: {_show(value)}")
    return "; ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "—" if value is None or value == "" else str(value)


def actor_name(event: AuditEvent, names: dict[str, str]) -> str | None:
    """Who did it: a person by their current name (the log outlives memberships), else as they were named
    then; None for Marid itself (the worker delivering mail, say)."""
    if event.actor_id:
        return names.get(event.actor_id) or event.actor_label or event.actor_id
    return event.actor_label or None
