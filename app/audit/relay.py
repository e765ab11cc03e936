"""The relay: audit outbox rows into their workspace's log, then onto its live feed, then gone.

For each workspace, in one public transaction that holds the workspace's relay lock:

1. read its outbox rows, oldest first (``FOR UPDATE SKIP LOCKED``);
2. insert them into the workspace's ``audit_events`` (its own connection and transaction, committed here);
   ``outbox_id`` is unique, so a row relayed twice (a crash after this step) is inserted once;
3. publish each entry (control event first for membership changes, then the activity);
4. delete the rows that were published; the public transaction commits.

A crash or a Redis failure anywhere leaves the rest of the rows for the next run, which inserts nothing twice
and publishes again what may have been published (pages de-duplicate by audit id). It runs right after each
request or job that recorded entries (the fast path, ``app.audit.unit_of_work``) and from the worker, at start
and every few seconds (``app.audit.jobs``), for whatever a crash left behind.

The lock makes one relay at a time per workspace, so its entries reach the log and the feed in the order
they were committed. The fast path waits for it (so the entry is in the log when the request answers); the
sweep skips a workspace another relay is working on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import catalogue
from app.audit.models import AuditEvent, AuditOutbox
from app.db import Database, UnknownWorkspace
from app.live.activity import Activity, publish_activity
from app.live.bus import EventBus

logger = logging.getLogger("marid.audit")

BATCH = 200
# First key of the advisory locks (pg_advisory_xact_lock(int, int)); the second is the workspace's hash.
_LOCK_SPACE = 0x61756474  # "audt"


async def relay(db: Database, bus: EventBus, workspace_ids: Iterable[str]) -> int:
    """Relay everything pending for these workspaces (waiting for another relay of the same one); returns how
    many entries were published."""
    moved = 0
    for workspace_id in dict.fromkeys(workspace_ids):
        moved += await _relay_workspace(db, bus, workspace_id, wait=True)
    return moved


async def sweep(db: Database, bus: EventBus) -> int:
    """Relay what any workspace has pending (the worker's run); returns how many entries were published."""
    async with db.public_session() as session:
        workspace_ids = list(await session.scalars(select(AuditOutbox.workspace_id).distinct()))
    moved = 0
    for workspace_id in workspace_ids:
        try:
            moved += await _relay_workspace(db, bus, workspace_id, wait=False)
        except Exception:  # one workspace's trouble must not hold up the others
            logger.warning("could not relay the audit outbox of workspace %s", workspace_id, exc_info=True)
    return moved


async def _locked(session: AsyncSession, workspace_id: str, *, wait: bool) -> bool:
    lock = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
    acquired = await session.scalar(select(lock(_LOCK_SPACE, func.hashtext(workspace_id))))
    return wait or bool(acquired)


async def _relay_workspace(db: Database, bus: EventBus, workspace_id: str, *, wait: bool) -> int:
    moved = 0
    while True:
        async with db.public_session() as session:
            if not await _locked(session, workspace_id, wait=wait):
                return moved
            rows = list(
                await session.scalars(
                    select(AuditOutbox)
                    .where(AuditOutbox.workspace_id == workspace_id)
                    .order_by(AuditOutbox.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return moved
            try:
                entries = await copy_into_log(db, workspace_id, rows)
            except UnknownWorkspace:
                return moved  # deleted meanwhile: its rows go with it (ON DELETE CASCADE)
            published: list[int] = []
            failure: Exception | None = None
            for row in rows:
                try:
                    await publish_activity(bus, workspace_id, _activity(row, *entries[row.id]))
                except Exception as error:  # Redis: raised once what was published is marked done
                    failure = error
                    break
                published.append(row.id)
            # Whatever was published is done; the rest waits for the next run (its log rows are in already).
            if published:
                await session.execute(delete(AuditOutbox).where(AuditOutbox.id.in_(published)))
            moved += len(published)
        if failure is not None:
            raise failure
        if len(rows) < BATCH:
            return moved


async def copy_into_log(db: Database, workspace_id: str, rows: list[AuditOutbox]) -> dict[int, tuple[int, datetime]]:
    """Insert the rows into the workspace's log (once each); returns outbox id -> (audit id, at)."""
    async with db.tenant_session(workspace_id) as tenant:
        values = [
            {
                "at": row.created_at,
                "action": row.action,
                "actor_kind": row.actor_kind,
                "actor_id": row.actor_id,
                "actor_label": row.actor_label,
                "ip": row.ip,
                "details": row.details,
                "outbox_id": row.id,
            }
            for row in rows
        ]
        inserted = await tenant.execute(
            insert(AuditEvent)
            .values(values)
            .on_conflict_do_nothing(index_elements=[AuditEvent.outbox_id])
            .returning(AuditEvent.outbox_id, AuditEvent.id, AuditEvent.at)
        )
        found: dict[int, tuple[int, datetime]] = {
            outbox_id: (audit_id, at) for outbox_id, audit_id, at in inserted if outbox_id is not None
        }
        missing = [row.id for row in rows if row.id not in found]
        if missing:  # relayed before, but not yet published and deleted
            existing = await tenant.execute(
                select(AuditEvent.outbox_id, AuditEvent.id, AuditEvent.at).where(AuditEvent.outbox_id.in_(missing))
            )
            found |= {outbox_id: (audit_id, at) for outbox_id, audit_id, at in existing if outbox_id is not None}
    return found


def _activity(row: AuditOutbox, audit_id: int, at: datetime) -> Activity:
    entry = catalogue.entry(row.action)
    return Activity(
        audit_id=audit_id,
        action=row.action,
        text=catalogue.sentence(row.action, row.actor_label, row.details),
        permission=entry.permission,
        at=at,
        actor_id=row.actor_id,
        control=entry.control,
    )
