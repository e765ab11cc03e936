"""The workspace admin's single sign-on settings page (/w/<slug>/settings/sso): the provider, "Test connection",
"Require single sign-on" and managed accounts with a preview of whom they affect, and the domain list (whose
actions are in :mod:`app.sso.pages.domains`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.sso import flows
from app.sso.dns import record_name, record_value
from app.sso.domains import list_domains
from app.sso.enforcement import affected_members
from app.sso.oidc import OidcError, ProviderClient
from app.sso.service import (
    ASSIGNABLE_ROLES,
    ConnectionSettings,
    SsoConfigError,
    get_connection,
    record_test,
    save_connection,
)
from app.tenants.context import WorkspaceContext
from app.web.flash import flash
from app.web.forms import rate_limited, read_form, retry_message
from app.web.guards import redirect, workspace_required
from app.web.state import changes, db_of, secrets_of, settings_of
from app.web.templating import is_htmx, render

TEMPLATE = "sso/settings.html"
_TEXT_FIELDS = ("issuer", "client_id", "default_role")
_FLAGS = ("enabled", "enforce_sso", "managed_accounts", "confirm_managed")


def _submitted(form: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {key: form.get(key, "") for key in _TEXT_FIELDS}
    return values | {flag: form.get(flag) == "on" for flag in _FLAGS}


def _flag(raw: str | None) -> bool:
    return raw in {"on", "true", "1", "yes"}


def connection_settings(form: dict[str, str]) -> ConnectionSettings:
    """The settings form as the service takes it."""
    return ConnectionSettings(
        issuer=form.get("issuer", ""),
        client_id=form.get("client_id", ""),
        client_secret=form.get("client_secret", ""),
        default_role=form.get("default_role", ""),
        enabled=_flag(form.get("enabled")),
        enforce_sso=_flag(form.get("enforce_sso")),
        managed_accounts=_flag(form.get("managed_accounts")),
        confirm_managed=_flag(form.get("confirm_managed")),
    )


async def page_context(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as saved, or with ``values`` as submitted."""
    workspace_id = context.workspace.id
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, workspace_id)
        domains = await list_domains(db, workspace_id)
        if values is None:
            values = {
                "issuer": connection.issuer if connection else "",
                "client_id": connection.client_id if connection else "",
                "default_role": connection.default_role if connection else "member",
                "enabled": connection.enabled if connection else False,
                "enforce_sso": connection.enforce_sso if connection else False,
                "managed_accounts": connection.managed_accounts if connection else False,
            }
        preview = await _preview(db, workspace_id, values, connection is not None and connection.managed_accounts)
    return {
        "connection": connection,
        "values": values,
        "errors": errors or {},
        "roles": ASSIGNABLE_ROLES,
        "callback_url": flows.callback_url(settings_of(request)),
        "test": test,
        "domain_value": "",
        "domains": [
            {"row": row, "record_name": record_name(row.domain), "record_value": record_value(row.token)}
            for row in domains
        ],
        **preview,
    }


async def _preview(db: Any, workspace_id: str, values: dict[str, Any], managed_now: bool) -> dict[str, Any]:
    enforce, managed = bool(values.get("enforce_sso")), bool(values.get("managed_accounts"))
    affected = await affected_members(db, workspace_id, enforce=enforce, managed=managed)
    return {
        "affected": affected,
        # Turning managed accounts on is confirmed on the page that lists whom it affects.
        "confirm_needed": managed and not managed_now,
    }


@workspace_required("settings.edit")
async def settings_page(request: Request, context: WorkspaceContext) -> Response:
    return render(request, TEMPLATE, await page_context(request, context))


@workspace_required("settings.edit")
async def preview(request: Request, context: WorkspaceContext) -> Response:
    """Whom "Require single sign-on" and managed accounts affect, for the values in the form (not saved)."""
    values = _submitted(await read_form(request))
    page = await page_context(request, context, values=values)
    if is_htmx(request):
        return render(request, TEMPLATE, page, block="enforcement_preview")
    return render(request, TEMPLATE, page)


@workspace_required("settings.edit")
async def save_settings(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with changes(request) as db:
            _, changed = await save_connection(
                db,
                settings_of(request),
                secrets_of(request),
                workspace_id=context.workspace.id,
                values=connection_settings(form),
                actor=context.actor,
            )
    except SsoConfigError as invalid:
        page = await page_context(request, context, values=_submitted(form), errors=invalid.errors)
        return render(request, TEMPLATE, page, status_code=422)
    response = redirect(request, f"/w/{context.workspace.slug}/settings/sso")
    flash(request, response, "Single sign-on settings saved." if changed else "Nothing changed.")
    return response


@workspace_required("settings.edit")
async def test_connection(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    workspace_id = context.workspace.id
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, workspace_id)
    issuer = form.get("issuer", "").strip() or (connection.issuer if connection else "")
    blocked = await rate_limited(request, ("sso.test", workspace_id, 20, 300))
    if blocked:
        test: dict[str, Any] = {"ok": False, "issuer": issuer, "message": retry_message(blocked, "connection tests")}
    elif not issuer:
        test = {"ok": False, "issuer": issuer, "message": "Enter the provider's issuer URL first."}
    else:
        test = await _run_test(request, issuer)
        async with changes(request) as db:
            test["saved"] = await record_test(
                db,
                workspace_id,
                issuer=issuer,
                ok=test["ok"],
                error=None if test["ok"] else test["message"],
                actor=context.actor,
            )
    if is_htmx(request):
        return render(request, TEMPLATE, {"test": test}, block="test_result")
    return render(request, TEMPLATE, await page_context(request, context, test=test))


async def _run_test(request: Request, issuer: str) -> dict[str, Any]:
    """Discovery and the key set, fetched fresh: what an admin needs to know before turning SSO on."""
    provider = ProviderClient.for_settings(settings_of(request))
    try:
        metadata = await provider.discover(issuer, fresh=True)
        keys = await provider.keys(metadata, fresh=True)
    except OidcError as failure:
        return {"ok": False, "issuer": issuer, "message": failure.message}
    count = len(keys.keys)
    message = (
        f"Discovery works: {metadata.issuer} offers the authorization-code flow with PKCE and publishes "
        f"{count} signing key{'' if count == 1 else 's'}."
    )
    return {"ok": True, "issuer": issuer, "message": message}


routes: list[BaseRoute] = [
    Route("/w/{slug}/settings/sso", settings_page, methods=["GET"]),
    Route("/w/{slug}/settings/sso", save_settings, methods=["POST"]),
    Route("/w/{slug}/settings/sso/test", test_connection, methods=["POST"]),
    Route("/w/{slug}/settings/sso/preview", preview, methods=["POST"]),
]
