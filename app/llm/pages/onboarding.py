"""Onboarding's LLM step: add a provider key, or use the demo model (under `marid dev`), or skip for now."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import Invalid, ServiceError
from app.llm import service
from app.llm.catalogue import DEMO_PRESET, PRESETS
from app.llm.pages.common import changed, llm_changes
from app.llm.service import ProviderInput
from app.onboarding.steps import STEPS, next_step
from app.tenants.context import WorkspaceContext
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, secrets_of, settings_of
from app.web.templating import render

STEP = "llm"
# The kinds offered here: the ones with a key; the rest (local endpoints, custom URLs) are on the providers page.
OFFERED = ("openai", "anthropic", "openrouter")


async def _page(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        providers = await service.list_providers(session)
    page: dict[str, Any] = {
        "steps": STEPS,
        "current_step": STEP,
        "providers": providers,
        "presets": [PRESETS[key] for key in OFFERED],
        "demo_available": settings_of(request).demo_llm_enabled,
        "demo_added": any(view.is_demo for view in providers),
        "values": {"preset": "openai", **(values or {})},
        "errors": errors or {},
        "next_url": next_step(STEP, context.workspace.slug),
        "action": f"/w/{context.workspace.slug}/onboarding/llm",
    }
    return render(request, "onboarding/llm.html", page, status_code=status_code)


@workspace_required("providers.manage")
async def llm_step_page(request: Request, context: WorkspaceContext) -> Response:
    return await _page(request, context)


@workspace_required("providers.manage")
async def llm_step(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    preset = form.get("preset", "")
    values = {"preset": preset, "api_key": ""}
    if preset != DEMO_PRESET and preset not in OFFERED:
        return await _page(request, context, values=values, errors={"preset": "Choose a provider."}, status_code=422)
    try:
        async with llm_changes(request, context) as session:
            provider = await service.create_provider(
                session,
                secrets_of(request),
                settings_of(request),
                workspace_id=context.workspace.id,
                actor=context.actor,
                values=ProviderInput(preset=preset, api_key=form.get("api_key", "")),
            )
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        return await _page(request, context, values=values, errors=errors, status_code=422)
    changed(request, context)
    done = (
        "Agents can use the demo model: demo/demo."
        if preset == DEMO_PRESET
        else f"Added {provider.label}. Agents can use its models as {provider.slug}/<model>."
    )
    return redirect_with_flash(request, next_step(STEP, context.workspace.slug), done)


routes: list[BaseRoute] = [
    Route("/w/{slug}/onboarding/llm", llm_step_page, methods=["GET"]),
    Route("/w/{slug}/onboarding/llm", llm_step, methods=["POST"]),
]
