"""The LLM providers pages: the list with "add a provider", one provider (settings, key, test, its models).

Everyone in the workspace sees which providers and models there are (agents are configured with them); adding,
changing and testing need ``providers.manage``. A key is never shown again after it is saved: only its preview.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import Invalid, NotFound, ServiceError
from app.llm import pricing, service
from app.llm.catalogue import PRESETS, price_list
from app.llm.connection import check_connection
from app.llm.pages.common import as_gateway_provider, changed, gateway_of, llm_changes
from app.llm.pricing import ModelInput
from app.llm.service import ProviderInput, ProviderView
from app.llm.tokens import gateway_base_url
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, settings_of
from app.web.templating import render

PROVIDER_FIELDS = ("preset", "label", "slug", "base_url", "api_key")
MODEL_FIELDS = (
    "name", "label", "input_price", "output_price", "cache_read_price", "cache_write_price", "context_window",
)  # fmt: skip


def _base(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/llm"


def gateway_url(request: Request) -> str:
    return gateway_base_url(settings_of(request))


async def _list_page(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        providers = await service.list_providers(session)
    settings = settings_of(request)
    page: dict[str, Any] = {
        "providers": providers,
        "presets": list(PRESETS.values()),
        "demo_available": settings.demo_llm_enabled and not any(view.is_demo for view in providers),
        "can_manage": context.can("providers.manage"),
        "values": {"preset": "openai", **(values or {})},
        "errors": errors or {},
        "prices": price_list(),
        "gateway_url": gateway_url(request),
        "base": _base(context),
    }
    return render(request, "llm/providers.html", page, status_code=status_code)


async def _detail_page(
    request: Request,
    context: WorkspaceContext,
    provider_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    models_listed: list[str] | None = None,
) -> Response:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            view = await service.get_provider(session, provider_id)
    except NotFound:
        raise HTTPException(404) from None
    known = {model.name for model in view.models}
    page: dict[str, Any] = {
        "view": view,
        "provider": view.provider,
        "can_manage": context.can("providers.manage"),
        "errors": errors or {},
        "values": values or {},
        "listed": [name for name in (models_listed or []) if name not in known],
        "base": _base(context),
        "gateway_url": gateway_url(request),
        "price_text": pricing.price_text,
    }
    return render(request, "llm/provider.html", page, status_code=status_code)


def _errors_of(refused: ServiceError, prefix: str = "") -> dict[str, str]:
    if isinstance(refused, Invalid):
        return {(prefix + key if key != "_form" else "_form"): text for key, text in refused.errors.items()}
    return {"_form": refused.message}


@workspace_required("workspace.view")
async def providers_page(request: Request, context: WorkspaceContext) -> Response:
    return await _list_page(request, context)


@workspace_required("providers.manage")
async def add_provider(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {name: form.get(name, "") for name in PROVIDER_FIELDS}
    try:
        async with llm_changes(request, context) as session:
            provider = await service.create_provider(
                session,
                request.app.state.secrets,
                settings_of(request),
                workspace_id=context.workspace.id,
                actor=context.actor,
                values=ProviderInput(**values),
            )
    except ServiceError as refused:
        values["api_key"] = ""  # never sent back, not even to the person who typed it
        return await _list_page(request, context, values=values, errors=_errors_of(refused), status_code=422)
    changed(request, context)
    url = f"{_base(context)}/providers/{provider.id}"
    return redirect_with_flash(request, url, f"Added {provider.label}. Test the connection to check the key.")


@workspace_required("workspace.view")
async def provider_page(request: Request, context: WorkspaceContext) -> Response:
    return await _detail_page(request, context, request.path_params["provider_id"])


Work = Callable[[AsyncSession], Awaitable[str]]


async def _change(
    request: Request,
    context: WorkspaceContext,
    work: Work,
    *,
    provider_id: str,
    field_prefix: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    """Run ``work`` in a unit of work and go back to the provider with the message it returns; or show the
    provider's page again with why not (a provider or model that is not there: 404)."""
    try:
        async with llm_changes(request, context) as session:
            done = await work(session)
    except NotFound:
        raise HTTPException(404) from None
    except ServiceError as refused:
        errors = _errors_of(refused, field_prefix)
        return await _detail_page(
            request, context, provider_id, errors=errors, values=values, status_code=page_status(refused)
        )
    changed(request, context)
    return redirect_with_flash(request, f"{_base(context)}/providers/{provider_id}", done)


@workspace_required("providers.manage")
async def update_provider(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    provider_id = request.path_params["provider_id"]

    async def work(session: AsyncSession) -> str:
        await service.update_provider(
            session,
            settings_of(request),
            actor=context.actor,
            provider_id=provider_id,
            label=form.get("label", ""),
            base_url=form.get("base_url", ""),
        )
        return "Saved."

    return await _change(request, context, work, provider_id=provider_id)


@workspace_required("providers.manage")
async def replace_key(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    provider_id = request.path_params["provider_id"]

    async def work(session: AsyncSession) -> str:
        await service.replace_key(
            session,
            request.app.state.secrets,
            workspace_id=context.workspace.id,
            actor=context.actor,
            provider_id=provider_id,
            api_key=form.get("api_key", ""),
        )
        return "Key replaced. Calls use it at once."

    return await _change(request, context, work, provider_id=provider_id)


@workspace_required("providers.manage")
async def delete_provider(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with llm_changes(request, context) as session:
            provider = await service.delete_provider(
                session, actor=context.actor, provider_id=request.path_params["provider_id"]
            )
    except NotFound:
        raise HTTPException(404) from None
    changed(request, context)
    return redirect_with_flash(request, _base(context), f"Removed {provider.label}; its calls stay in the log.")


@workspace_required("providers.manage")
async def test_provider(request: Request, context: WorkspaceContext) -> Response:
    provider_id = request.path_params["provider_id"]
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            view: ProviderView = await service.get_provider(session, provider_id)
            provider = await as_gateway_provider(request, context, session, view.provider)
    except NotFound:
        raise HTTPException(404) from None
    result = await check_connection(gateway_of(request).directory, provider, view.models)
    async with llm_changes(request, context) as session:
        await service.record_test(
            session, actor=context.actor, provider_id=provider_id, ok=result.ok, message=result.message
        )
    errors = {} if result.ok else {"test": result.message}
    return await _detail_page(
        request, context, provider_id, errors=errors, status_code=200 if result.ok else 422, models_listed=result.models
    )


@workspace_required("providers.manage")
async def add_model(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {name: form.get(name, "") for name in MODEL_FIELDS}
    provider_id = request.path_params["provider_id"]

    async def work(session: AsyncSession) -> str:
        model = await pricing.add_model(
            session, actor=context.actor, provider_id=provider_id, values=ModelInput(**values)
        )
        return f"Added {model.name} to the catalogue."

    return await _change(request, context, work, provider_id=provider_id, field_prefix="new-", values=values)


@workspace_required("providers.manage")
async def update_model(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = ModelInput(name="", **{name: form.get(name, "") for name in MODEL_FIELDS if name != "name"})
    model_id = request.path_params["model_id"]
    provider_id = await _provider_of_model(request, context, model_id)

    async def work(session: AsyncSession) -> str:
        model = await pricing.update_model(session, actor=context.actor, model_id=model_id, values=values)
        return f"Saved {model.name}."

    return await _change(request, context, work, provider_id=provider_id, field_prefix=f"{model_id}-")


@workspace_required("providers.manage")
async def delete_model(request: Request, context: WorkspaceContext) -> Response:
    model_id = request.path_params["model_id"]
    provider_id = await _provider_of_model(request, context, model_id)

    async def work(session: AsyncSession) -> str:
        model = await pricing.delete_model(session, actor=context.actor, model_id=model_id)
        return f"Removed {model.name} from the catalogue."

    return await _change(request, context, work, provider_id=provider_id)


async def _provider_of_model(request: Request, context: WorkspaceContext, model_id: str) -> str:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        model = await pricing.find_model(session, model_id)
    if model is None:
        raise HTTPException(404)
    return str(model.provider_id)


routes: list[BaseRoute] = [
    Route("/w/{slug}/llm", providers_page, methods=["GET"]),
    Route("/w/{slug}/llm/providers", add_provider, methods=["POST"]),
    Route("/w/{slug}/llm/providers/{provider_id}", provider_page, methods=["GET"]),
    Route("/w/{slug}/llm/providers/{provider_id}", update_provider, methods=["POST"]),
    Route("/w/{slug}/llm/providers/{provider_id}/key", replace_key, methods=["POST"]),
    Route("/w/{slug}/llm/providers/{provider_id}/test", test_provider, methods=["POST"]),
    Route("/w/{slug}/llm/providers/{provider_id}/delete", delete_provider, methods=["POST"]),
    Route("/w/{slug}/llm/providers/{provider_id}/models", add_model, methods=["POST"]),
    Route("/w/{slug}/llm/models/{model_id}", update_model, methods=["POST"]),
    Route("/w/{slug}/llm/models/{model_id}/delete", delete_model, methods=["POST"]),
]
