"""The domain list of the single sign-on settings page: add a domain, verify it through DNS, remove it.

Each action goes back to the settings page with a message; a refused one shows the page again with why.
Every change goes to the workspace's audit log; a domain another workspace takes over also goes to that
workspace's log (without saying who took it).
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.sso.dns import DnsLookupError, make_resolver
from app.sso.domains import DomainError, Lookup, add_domain, find_domain, lookup, record_check, remove_domain
from app.sso.pages.settings import TEMPLATE, page_context
from app.tenants.context import WorkspaceContext
from app.web.forms import rate_limited, read_form, retry_message
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import changes, db_of, settings_of
from app.web.templating import render


def _back(request: Request, context: WorkspaceContext, message: str, kind: str = "success") -> Response:
    return redirect_with_flash(request, f"/w/{context.workspace.slug}/settings/sso#sso-domains", message, kind)


def _domain_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["domain_id"])
    except ValueError as error:
        raise HTTPException(404) from error


@workspace_required("settings.edit")
async def add(request: Request, context: WorkspaceContext) -> Response:
    raw = (await read_form(request)).get("domain", "")[:300]
    try:
        async with changes(request) as db:
            row = await add_domain(db, context.workspace.id, raw, context.actor)
    except DomainError as refused:
        page = await page_context(request, context, errors={"domain": refused.message})
        page["domain_value"] = raw
        return render(request, TEMPLATE, page, status_code=422)
    return _back(request, context, f"Added {row.domain}. Publish its TXT record, then press Verify.")


@workspace_required("settings.edit")
async def verify(request: Request, context: WorkspaceContext) -> Response:
    domain_id, workspace_id = _domain_id(request), context.workspace.id
    async with db_of(request).public_session() as db:
        row = await find_domain(db, workspace_id, domain_id)
    if row is None:
        raise HTTPException(404)
    blocked = await rate_limited(request, ("sso.domain.verify", workspace_id, 30, 300))
    if blocked:
        return _back(request, context, retry_message(blocked, "verification checks"), "error")
    # DNS first, outside any transaction: no row stays locked while a name server takes its time.
    try:
        found = await lookup(make_resolver(settings_of(request).dns_nameserver_list), row.domain)
    except DnsLookupError as error:
        found = Lookup((), str(error))
    try:
        async with changes(request) as db:
            outcome = await record_check(db, workspace_id, domain_id, found, token=row.token, actor=context.actor)
    except DomainError as gone:
        return _back(request, context, gone.message, "error")
    except IntegrityError:
        # Another workspace verified the same domain at the same moment (the unique index decided).
        return _back(request, context, f"Another workspace has just verified {row.domain}.", "error")
    if outcome.verified:
        return _back(request, context, outcome.message)
    return _back(request, context, f"{row.domain} is not verified yet. {outcome.message}", "error")


@workspace_required("settings.edit")
async def remove(request: Request, context: WorkspaceContext) -> Response:
    async with changes(request) as db:
        row = await remove_domain(db, context.workspace.id, _domain_id(request), context.actor)
    if row is None:
        raise HTTPException(404)
    return _back(request, context, f"Removed {row.domain}.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/settings/sso/domains", add, methods=["POST"]),
    Route("/w/{slug}/settings/sso/domains/{domain_id}/verify", verify, methods=["POST"]),
    Route("/w/{slug}/settings/sso/domains/{domain_id}/remove", remove, methods=["POST"]),
]
