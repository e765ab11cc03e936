"""The LLM pages: providers and the model catalogue, usage (with the budget and the live call log), and the
onboarding step. The one list of this domain's page routes (``app.routes`` includes it)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.llm import checklist as _checklist  # noqa: F401  (registers the "add an LLM provider" item)
from app.llm.pages import onboarding, providers, usage

routes: list[BaseRoute] = [*providers.routes, *usage.routes, *onboarding.routes]
