"""The account security overview: 2FA, sessions, password, and the single sign-on identities linked to the
account, each with Unlink (refused when it is the account's last way in)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.account import twofactor
from app.account.events import PAGE_SIZE as EVENTS_PAGE_SIZE
from app.account.events import event_rows, list_account_events
from app.audit.service import record
from app.auth.models import User
from app.auth.sessions import list_sessions
from app.mail.jobs import deliver_mail
from app.sso.identities import UnlinkRefused, linked_identities, unlink_identity
from app.tenants.context import person_actor
from app.web.forms import client_ip
from app.web.guards import login_required
from app.web.pages import redirect_with_flash
from app.web.state import changes, db_of
from app.web.templating import render


def _before(raw: str | None) -> int | None:
    """The ``before`` cursor of the activity list (an event id); anything else means the newest page."""
    return int(raw) if raw and raw.isdigit() and len(raw) < 19 else None


async def _context(request: Request, user: User) -> dict[str, Any]:
    before = _before(request.query_params.get("before"))
    async with db_of(request).public_session() as db:
        fresh = await db.get(User, user.id)
        assert fresh is not None
        remaining = await twofactor.unused_recovery_codes(db, user.id) if fresh.has_2fa else 0
        sessions = await list_sessions(db, user.id)
        identities = await linked_identities(db, user.id)
        events = await list_account_events(db, user.id, before=before, limit=EVENTS_PAGE_SIZE + 1)
    rows = event_rows(events[:EVENTS_PAGE_SIZE])
    return {
        "user": fresh,
        "remaining_codes": remaining,
        "session_count": len(sessions),
        "identities": identities,
        "identity_error": None,
        "events": rows,
        "older_url": f"/account/security?before={rows[-1].id}#activity" if len(events) > EVENTS_PAGE_SIZE else None,
        "newest_url": "/account/security#activity" if before is not None else None,
    }


@login_required()
async def security_page(request: Request, user: User) -> Response:
    return render(request, "account/security.html", await _context(request, user))


@login_required()
async def unlink(request: Request, user: User) -> Response:
    try:
        identity_id = uuid.UUID(request.path_params["identity_id"])
    except ValueError as error:
        raise HTTPException(404) from error
    try:
        async with changes(request) as db:
            found = await unlink_identity(db, user, identity_id)
            if found is not None:
                # The workspace whose provider it was sees the link end in its own log (its provider, its sign-ins).
                actor = person_actor(user, client_ip(request))
                record(db, found.workspace_id, "sso.identity_unlinked", actor, {"issuer": found.issuer})
    except UnlinkRefused as refused:
        context = await _context(request, user) | {"identity_error": str(refused)}
        return render(request, "account/security.html", context, status_code=409)
    if found is None:
        raise HTTPException(404)
    await request.app.state.jobs.enqueue(deliver_mail)
    message = f"Unlinked {found.issuer}. It can no longer sign you in."
    return redirect_with_flash(request, "/account/security", message)
