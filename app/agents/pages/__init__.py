"""The agents pages: the list, an agent's page, the form (create, edit, live preview), clone and delete, the
starter roster, and the onboarding step that offers it."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from app.agents import checklist as _checklist  # noqa: F401  (registers the "create an agent" item)
from app.agents.pages import edit, onboarding, roster, view

routes: list[BaseRoute] = [
    Route("/w/{slug}/agents", view.agents_page, methods=["GET"]),
    Route("/w/{slug}/agents", edit.create, methods=["POST"]),
    Route("/w/{slug}/agents/new", edit.new_page, methods=["GET"]),
    Route("/w/{slug}/agents/preview", edit.preview, methods=["POST"]),
    Route("/w/{slug}/agents/roster", roster.roster_page, methods=["GET"]),
    Route("/w/{slug}/agents/roster", roster.add, methods=["POST"]),
    Route("/w/{slug}/agents/{agent}", view.agent_page, methods=["GET"]),
    Route("/w/{slug}/agents/{agent}", edit.update, methods=["POST"]),
    Route("/w/{slug}/agents/{agent}/edit", edit.edit_page, methods=["GET"]),
    Route("/w/{slug}/agents/{agent}/clone", edit.clone, methods=["POST"]),
    Route("/w/{slug}/agents/{agent}/delete", edit.delete, methods=["POST"]),
    Route("/w/{slug}/onboarding/agents", onboarding.step_page, methods=["GET"]),
    Route("/w/{slug}/onboarding/agents", onboarding.add, methods=["POST"]),
]
