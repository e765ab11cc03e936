"""Units of work that leave nothing unsaid: open, let services change things (and record them), commit, then
relay or publish what they recorded.

    async with public_change(db, bus) as session:
        member = await members.change_role(session, ..., actor=actor)
    # committed; the audit entry is in the workspace's log and on its live feed

Relaying after commit is the fast path; if it fails (Redis down) or the process dies first, the worker's sweep
(``app.audit.jobs``) does it a few seconds later: the entry was committed with the change, so it is never lost.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import catalogue
from app.audit.models import AuditEvent
from app.audit.relay import relay
from app.audit.service import PENDING_PUBLISH, PENDING_RELAY
from app.db import Database
from app.live.activity import Activity, publish_activity
from app.live.bus import EventBus

logger = logging.getLogger("marid.audit")


def _need_bus(bus: EventBus) -> None:
    # Checked before any change: afterwards the change would be committed with its events nowhere to go.
    if not isinstance(bus, EventBus):
        raise TypeError(f"a unit of work needs the process's EventBus, got {bus!r}")


@asynccontextmanager
async def public_change(db: Database, bus: EventBus) -> AsyncIterator[AsyncSession]:
    """A unit of work on platform tables; its audit entries (``app.audit.service.record``) are relayed after
    it commits. An exception inside rolls everything back, entries included."""
    _need_bus(bus)
    async with db.public_session() as session:
        yield session
    pending: dict[str, list[str]] = session.info.get(PENDING_RELAY, {})
    if not pending:
        return
    crash_if_asked([action for actions in pending.values() for action in actions])
    try:
        await relay(db, bus, pending)
    except Exception:  # committed already; the worker's sweep relays it shortly
        logger.warning("could not relay audit entries of %s now; the sweep will", sorted(pending), exc_info=True)


@asynccontextmanager
async def workspace_change(db: Database, bus: EventBus, workspace_id: str) -> AsyncIterator[AsyncSession]:
    """A unit of work on a workspace's own tables; its audit entries
    (``app.audit.service.record_in_workspace``) are published after it commits."""
    _need_bus(bus)
    async with db.tenant_session(workspace_id) as session:
        yield session
    events: list[AuditEvent] = session.info.get(PENDING_PUBLISH, [])
    crash_if_asked([event.action for event in events])
    for event in events:
        entry = catalogue.entry(event.action)
        activity = Activity(
            audit_id=event.id,
            action=event.action,
            text=catalogue.sentence(event.action, event.actor_label, event.details),
            permission=entry.permission,
            at=event.at,
            actor_id=event.actor_id,
            control=entry.control,
        )
        try:
            await publish_activity(bus, workspace_id, activity)
        except Exception:  # the entry is in the log: pages re-read it on (re)connect
            logger.warning("could not publish audit entry %s of %s", event.id, workspace_id, exc_info=True)


def crash_if_asked(actions: list[str]) -> None:
    """Tests only (``MARID_ENV=test``): die right here, between commit and relay, if told to for one of these
    actions (``MARID_TEST_CRASH_AFTER_COMMIT``). SIGKILL, so nothing after this line runs, as in a real crash."""
    if os.environ.get("MARID_ENV") != "test":
        return
    target = os.environ.get("MARID_TEST_CRASH_AFTER_COMMIT")
    if target and target in actions:
        logger.warning("MARID_TEST_CRASH_AFTER_COMMIT=%s: killing this process now", target)
        os.kill(os.getpid(), signal.SIGKILL)
