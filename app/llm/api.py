"""``/workspaces/{slug}/llm/...``: providers, the model catalogue, the call log, usage and the budget (twins of
the LLM providers and Usage pages, served by the same services and checked by the same rules)."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.api.errors import validation_error
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, decode_cursor, encode_cursor, envelope, paginate
from app.api.principal import Scope
from app.audit.unit_of_work import workspace_change
from app.llm import budget, pricing, service
from app.llm.charts import percent
from app.llm.connection import check_connection
from app.llm.directory import provider_of
from app.llm.gateway import Gateway
from app.llm.models import LlmCall, LlmModel
from app.llm.pricing import ModelInput
from app.llm.schemas import (
    BudgetIn,
    BudgetOut,
    CallList,
    CallOut,
    ConnectionTestOut,
    ModelCreate,
    ModelOut,
    ModelPatch,
    ProviderCreate,
    ProviderList,
    ProviderOut,
    ProviderPatch,
    UsageGroupOut,
    UsageOut,
)
from app.llm.service import ProviderInput, ProviderView
from app.llm.spend import month_of
from app.llm.usage import CallFilter, Group, filter_problems, list_calls, month_spend, summarize
from app.web.state import bus_of, db_of, secrets_of, settings_of

TAGS = ["LLM providers and usage"]
LAST_DAY = date(9999, 12, 30)


def _price(value: Decimal | None) -> str | None:
    return None if value is None else pricing.price_text(value)


def model_out(slug: str, model: LlmModel) -> ModelOut:
    return ModelOut(
        id=model.id,
        provider_id=model.provider_id,
        model_string=f"{slug}/{model.name}",
        name=model.name,
        label=model.label,
        input_price=_price(model.input_price),
        output_price=_price(model.output_price),
        cache_read_price=_price(model.cache_read_price),
        cache_write_price=_price(model.cache_write_price),
        context_window=model.context_window,
        source="seeded" if model.source == "seeded" else "custom",
        prices_as_of=model.prices_as_of,
    )


def provider_out(view: ProviderView) -> ProviderOut:
    p = view.provider
    return ProviderOut(
        id=p.id,
        slug=p.slug,
        label=p.label,
        kind="anthropic" if p.kind == "anthropic" else "openai",
        preset=p.preset,
        base_url=p.base_url,
        key_preview=p.key_preview,
        has_key=p.api_key_sealed is not None,
        created_at=p.created_at,
        updated_at=p.updated_at,
        last_tested_at=p.last_tested_at,
        last_test_ok=p.last_test_ok,
        last_test_message=p.last_test_message,
        models=[model_out(p.slug, model) for model in view.models],
    )


def _forget(call: Call) -> None:
    gateway: Gateway = call.request.app.state.llm
    gateway.directory.forget(call.workspace.workspace.id)


def _changes(call: Call) -> AbstractAsyncContextManager[AsyncSession]:
    return workspace_change(db_of(call.request), bus_of(call.request), call.workspace.workspace.id)


async def _view(request: Request, workspace_id: str, provider_id: uuid.UUID) -> ProviderView:
    async with db_of(request).tenant_session(workspace_id) as session:
        return await service.get_provider(session, provider_id)


# --- providers -----------------------------------------------------------------------------------------------


@api_route(
    "GET",
    "/workspaces/{slug}/llm/providers",
    scope=Scope.READ,
    permission="workspace.view",
    query=PageQuery,
    response=ProviderList,
    summary="List LLM providers",
    tags=TAGS,
)
async def list_llm_providers(call: Call) -> BaseModel:
    """The workspace's providers with their model catalogues (keys only as masked previews)."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        views = await service.list_providers(session)
    page = paginate(views, lambda v: (v.provider.slug, str(v.provider.id)), (str, str), call.query)
    return envelope(ProviderList, page, provider_out)


@api_route(
    "POST",
    "/workspaces/{slug}/llm/providers",
    scope=Scope.ADMIN,
    permission="providers.manage",
    body=ProviderCreate,
    response=ProviderOut,
    status=201,
    summary="Add an LLM provider",
    tags=TAGS,
)
async def create_llm_provider(call: Call) -> ProviderOut:
    """The key is sealed at once and never returned; the catalogue of a well-known preset starts with its models
    at their list prices. `demo` adds the scripted demo model (only under `marid dev`)."""
    body: ProviderCreate = call.body
    workspace_id = call.workspace.workspace.id
    async with _changes(call) as session:
        provider = await service.create_provider(
            session,
            secrets_of(call.request),
            settings_of(call.request),
            workspace_id=workspace_id,
            actor=call.workspace.actor,
            values=ProviderInput(
                preset=body.preset, api_key=body.api_key, slug=body.slug, label=body.label, base_url=body.base_url
            ),
        )
    _forget(call)
    return provider_out(await _view(call.request, workspace_id, provider.id))


@api_route(
    "GET",
    "/workspaces/{slug}/llm/providers/{provider_id}",
    scope=Scope.READ,
    permission="workspace.view",
    response=ProviderOut,
    summary="Get an LLM provider",
    tags=TAGS,
)
async def get_llm_provider(call: Call) -> ProviderOut:
    return provider_out(await _view(call.request, call.workspace.workspace.id, call.params["provider_id"]))


@api_route(
    "PATCH",
    "/workspaces/{slug}/llm/providers/{provider_id}",
    scope=Scope.ADMIN,
    permission="providers.manage",
    body=ProviderPatch,
    response=ProviderOut,
    summary="Change an LLM provider or replace its key",
    tags=TAGS,
)
async def update_llm_provider(call: Call) -> ProviderOut:
    """Label and base URL (the slug stays: agents name it); an `api_key` replaces the key at once."""
    body: ProviderPatch = call.body
    workspace_id, provider_id = call.workspace.workspace.id, call.params["provider_id"]
    async with _changes(call) as session:
        current = (await service.get_provider(session, provider_id)).provider
        if body.label is not None or body.base_url is not None:
            await service.update_provider(
                session,
                settings_of(call.request),
                actor=call.workspace.actor,
                provider_id=provider_id,
                label=current.label if body.label is None else body.label,
                base_url=current.base_url if body.base_url is None else body.base_url,
            )
        if body.api_key is not None:
            await service.replace_key(
                session,
                secrets_of(call.request),
                workspace_id=workspace_id,
                actor=call.workspace.actor,
                provider_id=provider_id,
                api_key=body.api_key,
            )
    _forget(call)
    return provider_out(await _view(call.request, workspace_id, provider_id))


@api_route(
    "DELETE",
    "/workspaces/{slug}/llm/providers/{provider_id}",
    scope=Scope.ADMIN,
    permission="providers.manage",
    summary="Remove an LLM provider",
    tags=TAGS,
)
async def delete_llm_provider(call: Call) -> None:
    """The provider, its key and its catalogue go; its calls stay in the log."""
    async with _changes(call) as session:
        await service.delete_provider(session, actor=call.workspace.actor, provider_id=call.params["provider_id"])
    _forget(call)


@api_route(
    "POST",
    "/workspaces/{slug}/llm/providers/{provider_id}/test",
    scope=Scope.ADMIN,
    permission="providers.manage",
    response=ConnectionTestOut,
    summary="Test an LLM provider's connection",
    tags=TAGS,
)
async def test_llm_provider(call: Call) -> ConnectionTestOut:
    """Lists the provider's models with the workspace's key (or sends a one-token request); on failure, the
    provider's own message."""
    workspace_id, provider_id = call.workspace.workspace.id, call.params["provider_id"]
    async with db_of(call.request).tenant_session(workspace_id) as session:
        view = await service.get_provider(session, provider_id)
        key = await service.open_key(session, secrets_of(call.request), workspace_id, view.provider)
    gateway: Gateway = call.request.app.state.llm
    provider = provider_of(settings_of(call.request), view.provider, key)
    result = await check_connection(gateway.directory, provider, view.models)
    async with _changes(call) as session:
        await service.record_test(
            session, actor=call.workspace.actor, provider_id=provider_id, ok=result.ok, message=result.message
        )
    return ConnectionTestOut(ok=result.ok, message=result.message, models=result.models)


# --- the model catalogue -------------------------------------------------------------------------------------


def _model_input(body: ModelCreate | ModelPatch, name: str) -> ModelInput:
    return ModelInput(
        name=name,
        label=body.label,
        input_price=body.input_price,
        output_price=body.output_price,
        cache_read_price=body.cache_read_price,
        cache_write_price=body.cache_write_price,
        context_window="" if body.context_window is None else str(body.context_window),
    )


@api_route(
    "POST",
    "/workspaces/{slug}/llm/providers/{provider_id}/models",
    scope=Scope.ADMIN,
    permission="providers.manage",
    body=ModelCreate,
    response=ModelOut,
    status=201,
    summary="Add a model to the catalogue",
    tags=TAGS,
)
async def create_llm_model(call: Call) -> ModelOut:
    body: ModelCreate = call.body
    provider_id = call.params["provider_id"]
    async with _changes(call) as session:
        view = await service.get_provider(session, provider_id)
        model = await pricing.add_model(
            session, actor=call.workspace.actor, provider_id=provider_id, values=_model_input(body, body.name)
        )
    _forget(call)
    return model_out(view.provider.slug, model)


@api_route(
    "PATCH",
    "/workspaces/{slug}/llm/models/{model_id}",
    scope=Scope.ADMIN,
    permission="providers.manage",
    body=ModelPatch,
    response=ModelOut,
    summary="Change a model's prices",
    tags=TAGS,
)
async def update_llm_model(call: Call) -> ModelOut:
    body: ModelPatch = call.body
    async with _changes(call) as session:
        model = await pricing.update_model(
            session, actor=call.workspace.actor, model_id=call.params["model_id"], values=_model_input(body, "")
        )
        slug = (await service.get_provider(session, model.provider_id)).provider.slug
    _forget(call)
    return model_out(slug, model)


@api_route(
    "DELETE",
    "/workspaces/{slug}/llm/models/{model_id}",
    scope=Scope.ADMIN,
    permission="providers.manage",
    summary="Remove a model from the catalogue",
    tags=TAGS,
)
async def delete_llm_model(call: Call) -> None:
    async with _changes(call) as session:
        await pricing.delete_model(session, actor=call.workspace.actor, model_id=call.params["model_id"])
    _forget(call)


# --- calls, usage, budget ------------------------------------------------------------------------------------


class CallQuery(PageQuery):
    agent: str | None = Field(None, max_length=64, description="Only this agent's calls.")
    model: str | None = Field(None, max_length=250, description="Only calls to this model string.")
    run: str | None = Field(None, max_length=64, description="Only this run's calls.")
    status: str | None = Field(None, max_length=16, description="ok, error or refused.")
    from_: date | None = Field(None, alias="from", le=LAST_DAY, description="From this day (UTC), inclusive.")
    to: date | None = Field(None, le=LAST_DAY, description="To this day (UTC), inclusive.")


def _filter(query: CallQuery) -> CallFilter:
    filters = CallFilter(
        agent=query.agent or None,
        model=query.model or None,
        run=query.run or None,
        status=query.status or None,
        start=query.from_,
        end=query.to,
    )
    if problems := filter_problems(filters):
        raise validation_error([{"field": key, "message": message} for key, message in problems.items()])
    return filters


def call_out(row: LlmCall) -> CallOut:
    return CallOut(
        id=row.id,
        call_id=row.call_id,
        at=row.at.astimezone(UTC),
        agent_id=row.agent_id,
        run_id=row.run_id,
        step_id=row.step_id,
        session_id=row.session_id,
        model=row.model,
        provider=row.provider,
        status="ok" if row.status == "ok" else "error" if row.status == "error" else "refused",
        http_status=row.http_status,
        error=row.error,
        stream=row.stream,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens,
        cache_write_tokens=row.cache_write_tokens,
        cost=f"{row.cost:f}",
        cost_approximate=row.cost_approximate,
        first_token_ms=row.first_token_ms,
        total_ms=row.total_ms,
        stop_reason=row.stop_reason,
        tool_calls=row.tool_calls,
    )


@api_route(
    "GET",
    "/workspaces/{slug}/llm/calls",
    scope=Scope.READ,
    permission="usage.view",
    query=CallQuery,
    response=CallList,
    summary="List LLM calls",
    tags=TAGS,
)
async def list_llm_calls(call: Call) -> BaseModel:
    """Every call through the gateway, newest first: tokens, cost, latency, stop reason, status."""
    query: CallQuery = call.query
    filters = _filter(query)
    if query.cursor is not None:
        (filters.before,) = decode_cursor(query.cursor, (int,))  # type: ignore[assignment]
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        rows = await list_calls(session, filters, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return CallList(
        data=[call_out(row) for row in rows],
        next_cursor=encode_cursor((rows[-1].id,)) if more and rows else None,
    )


class UsageQuery(BaseModel):
    agent: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=250)
    run: str | None = Field(None, max_length=64)
    status: str | None = Field(None, max_length=16)
    from_: date | None = Field(None, alias="from", le=LAST_DAY, description="Default: 30 days before `to`.")
    to: date | None = Field(None, le=LAST_DAY, description="Default: today (UTC).")


def _group_out(group: Group) -> UsageGroupOut:
    return UsageGroupOut(
        key=group.key,
        calls=group.calls,
        errors=group.errors,
        input_tokens=group.input_tokens,
        output_tokens=group.output_tokens,
        cache_read_tokens=group.cache_read_tokens,
        cache_write_tokens=group.cache_write_tokens,
        cost=f"{group.cost:f}",
        approximate=group.approximate,
    )


@api_route(
    "GET",
    "/workspaces/{slug}/llm/usage",
    scope=Scope.READ,
    permission="usage.view",
    query=UsageQuery,
    response=UsageOut,
    summary="LLM usage by day, model and agent",
    tags=TAGS,
)
async def get_llm_usage(call: Call) -> UsageOut:
    """Totals over a range of days (the last 30 by default, at most a year): the charts of the Usage page."""
    query: UsageQuery = call.query
    filters = _filter(CallQuery.model_validate(query.model_dump(by_alias=True)))
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        summary = await summarize(session, filters)
    return UsageOut(
        start=summary.start,
        end=summary.end,
        total=_group_out(summary.total),
        by_day=[_group_out(group) for group in summary.by_day],
        by_model=[_group_out(group) for group in summary.by_model],
        by_agent=[_group_out(group) for group in summary.by_agent],
    )


async def _budget(call: Call) -> BudgetOut:
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        caps = await budget.caps(session)
        spent = await month_spend(session)
    return BudgetOut(
        monthly_cap=None if caps.monthly is None else f"{caps.monthly:f}",
        run_cap=None if caps.run is None else f"{caps.run:f}",
        month=month_of(datetime.now(UTC)),
        spent_this_month=f"{spent:f}",
        percent=None if caps.monthly is None else percent(spent, caps.monthly),
    )


@api_route(
    "GET",
    "/workspaces/{slug}/llm/budget",
    scope=Scope.READ,
    permission="usage.view",
    response=BudgetOut,
    summary="The monthly LLM budget and this month's spend",
    tags=TAGS,
)
async def get_llm_budget(call: Call) -> BudgetOut:
    return await _budget(call)


@api_route(
    "PUT",
    "/workspaces/{slug}/llm/budget",
    scope=Scope.ADMIN,
    permission="settings.edit",
    body=BudgetIn,
    response=BudgetOut,
    summary="Set the LLM budgets",
    tags=TAGS,
)
async def set_llm_budget(call: Call) -> BudgetOut:
    """Calls are refused once the month's spend reaches the monthly cap, or a run's (or swarm's) spend its run cap;
    a warning goes out at 80 %. A refused value changes neither."""
    body: BudgetIn = call.body
    cap = budget.parse_cap(body.monthly_cap or "")
    given_run_cap = "run_cap" in body.model_fields_set
    run_cap = budget.parse_cap(body.run_cap or "", "run_cap") if given_run_cap else None
    async with _changes(call) as session:
        await budget.set_monthly_cap(session, actor=call.workspace.actor, cap=cap)
        if given_run_cap:
            await budget.set_run_cap(session, actor=call.workspace.actor, cap=run_cap)
    _forget(call)
    return await _budget(call)
