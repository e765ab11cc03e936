"""The run pages: the list with filters and "Start a run", a run's page (controls, timeline, live stream,
outputs, files and cost) with its stream, a step visit's page, and the controls."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from app.runs.pages import checklist, controls, detail, listing

# The checklist item registers on import.
__all__ = ["checklist", "routes"]

routes: list[BaseRoute] = [
    Route("/w/{slug}/runs", listing.runs_page, methods=["GET"]),
    Route("/w/{slug}/runs", listing.start, methods=["POST"]),
    Route("/w/{slug}/runs/{run}", detail.run_page, methods=["GET"]),
    Route("/w/{slug}/runs/{run}/events", detail.run_events, methods=["GET"]),
    Route("/w/{slug}/runs/{run}/steps/{visit}", detail.step_page, methods=["GET"]),
    Route("/w/{slug}/runs/{run}/cancel", controls.cancel, methods=["POST"]),
    Route("/w/{slug}/runs/{run}/pause", controls.pause, methods=["POST"]),
    Route("/w/{slug}/runs/{run}/resume", controls.resume, methods=["POST"]),
    Route("/w/{slug}/runs/{run}/restart", controls.restart, methods=["POST"]),
    Route("/w/{slug}/runs/{run}/restart-step", controls.restart_step, methods=["POST"]),
    Route("/w/{slug}/runs/{run}/inject", controls.inject, methods=["POST"]),
]
