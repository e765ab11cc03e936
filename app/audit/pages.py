"""The audit log page: newest first, filtered by action, actor and date range, paged by an id cursor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.audit.models import AuditEvent
from app.db import Database
from app.members.service import list_members, member_labels
from app.tenants.context import WorkspaceContext
from app.web.guards import workspace_required
from app.web.templating import is_htmx, render

PAGE_SIZE = 50

ACTION_LABELS = {
    "auth.login": "Signed in",
    "auth.login_failed": "Sign-in failed (wrong password)",
    "auth.2fa_failed": "Sign-in failed (wrong 2FA code)",
    "auth.logout": "Signed out",
    "auth.2fa_enabled": "Turned on two-factor authentication",
    "auth.2fa_disabled": "Turned off two-factor authentication",
    "auth.recovery_codes_regenerated": "Made new recovery codes",
    "auth.password_changed": "Changed their password",
    "auth.password_reset": "Reset their password",
    "auth.reauth_failed": "Re-authentication failed",
    "auth.session_revoked": "Ended a session",
    "auth.sessions_revoked": "Signed out everywhere else",
    "workspace.created": "Created the workspace",
    "member.invited": "Invited someone",
    "invitation.revoked": "Withdrew an invitation",
    "invitation.accepted": "Accepted an invitation",
    "member.role_changed": "Changed a member's role",
    "member.removed": "Removed a member",
    "member.left": "Left the workspace",
    "ownership.transferred": "Transferred ownership",
    "settings.changed": "Changed settings",
    "workspace.2fa_required_changed": "Changed the 2FA requirement",
    "mail.delivered": "Delivered an e-mail",
    "apikey.created": "Created an API key",
    "apikey.revoked": "Revoked an API key",
    "sso.configured": "Configured single sign-on",
    "sso.tested": "Tested the single sign-on connection",
    "sso.login": "Signed in with single sign-on",
    "sso.login_failed": "Single sign-on failed",
    "sso.member_provisioned": "Joined through single sign-on",
    "sso.identity_linked": "Linked a single sign-on identity",
    "sso.enforced_changed": "Changed single sign-on enforcement",
    "sso.password_login_blocked": "Password sign-in refused (managed account)",
    "sso.identity_unlinked": "Unlinked a single sign-on identity",
    "sso.domain_added": "Added an e-mail domain",
    "sso.domain_verified": "Verified an e-mail domain",
    "sso.domain_verify_failed": "Domain verification failed",
    "sso.domain_removed": "Removed an e-mail domain",
    "sso.domain_taken": "Another workspace proved an e-mail domain",
}


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


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


@dataclass
class Filters:
    action: str = ""
    actor: str = ""
    start: date | None = None
    end: date | None = None
    before: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: Any) -> str:
        values = {
            "action": self.action,
            "actor": self.actor,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
        }
        values.update({key: str(value) for key, value in changes.items()})
        return urlencode({key: value for key, value in values.items() if value})


def _date(raw: str, label: str, errors: dict[str, str], key: str) -> date | None:
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        errors[key] = f"{label} must be a date like 2026-01-31."
        return None
    if not 1970 <= value.year <= 9000:
        # Also keeps "the day after" (the end of the range) inside what dates can hold.
        errors[key] = f"{label} must be a date between 1970 and 9000."
        return None
    return value


def parse_filters(params: Any) -> Filters:
    errors: dict[str, str] = {}
    action = str(params.get("action", "")).strip()[:64]
    actor = str(params.get("actor", "")).strip()[:64]
    if actor:
        try:
            actor = str(uuid.UUID(actor))
        except ValueError:
            errors["actor"] = "Choose a member from the list."
            actor = ""
    start = _date(str(params.get("from", "")).strip(), "“From”", errors, "from")
    end = _date(str(params.get("to", "")).strip(), "“To”", errors, "to")
    if start and end and start > end:
        errors["to"] = "“To” must not be before “From”."
    before: int | None = None
    raw_before = str(params.get("before", "")).strip()
    if raw_before:
        if raw_before.isdigit() and len(raw_before) < 19:
            before = int(raw_before)
        else:
            errors["before"] = "That page link is not valid."
    return Filters(action, actor, start, end, before, errors)


async def list_events(session: AsyncSession, filters: Filters, limit: int = PAGE_SIZE) -> list[AuditEvent]:
    conditions: list[ColumnElement[bool]] = []
    if filters.action:
        conditions.append(AuditEvent.action == filters.action)
    if filters.actor:
        conditions.append(AuditEvent.actor_id == filters.actor)
    if filters.start:
        conditions.append(AuditEvent.at >= datetime.combine(filters.start, time.min, tzinfo=UTC))
    if filters.end:
        conditions.append(AuditEvent.at < datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=UTC))
    if filters.before is not None:
        conditions.append(AuditEvent.id < filters.before)
    rows = await session.scalars(select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(limit))
    return list(rows)


@workspace_required("audit.view")
async def audit_page(request: Request, context: WorkspaceContext) -> Response:
    db: Database = request.app.state.db
    filters = parse_filters(request.query_params)
    events: list[AuditEvent] = []
    async with db.tenant_session(context.workspace.id) as session:
        known_actions = sorted(set(await session.scalars(select(AuditEvent.action).distinct())) | set(ACTION_LABELS))
        if not filters.errors:
            events = await list_events(session, filters, PAGE_SIZE + 1)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    async with db.public_session() as session:
        members = await list_members(session, context.workspace.id)
        # Actors who have left are still named: the log outlives memberships.
        names = await member_labels(session, {event.actor_id for event in events if event.actor_id})
    rows = [
        {
            "id": event.id,
            "at": event.at.astimezone(UTC),
            # No actor: Marid itself did it (the worker delivering mail, say).
            "actor": names.get(event.actor_id, event.actor_id) if event.actor_id else "Marid (system)",
            "action": event.action,
            "label": action_label(event.action),
            "ip": event.ip,
            "details": describe(event.details),
        }
        for event in events
    ]
    base = f"/w/{context.workspace.slug}/audit"
    page = {
        "filters": filters,
        "rows": rows,
        "actions": [(action, action_label(action)) for action in known_actions],
        "members": members,
        "older_url": f"{base}?{filters.query(before=events[-1].id)}" if more and events else None,
        "newest_url": f"{base}?{filters.query()}" if filters.before is not None else None,
        "base": base,
    }
    # htmx does not swap 4xx answers; the message must still reach the filter form.
    status = 400 if filters.errors and not is_htmx(request) else 200
    # The filter form and the "Older" link swap only the results; history restores need the whole page.
    block: str | None = "content"
    if is_htmx(request):
        if request.headers.get("HX-History-Restore-Request") == "true":
            block = None
        elif request.headers.get("HX-Target") == "audit-results":
            block = "results"
    response = render(request, "audit/index.html", page, status_code=status, block=block)
    if block == "results":
        # The address bar shows the filters that apply, without the form's empty fields.
        query = filters.query(before=filters.before) if filters.before is not None else filters.query()
        response.headers["HX-Push-Url"] = f"{base}?{query}" if query else base
    return response


routes: list[BaseRoute] = [Route("/w/{slug}/audit", audit_page, methods=["GET"])]
