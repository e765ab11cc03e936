"""The pipeline pages: the list with the starters, a new or imported pipeline, the editor (live validation and
the step graph), versions with their diffs, export and delete."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from app.pipelines.pages import editor, listing

routes: list[BaseRoute] = [
    Route("/w/{slug}/pipelines", listing.pipelines_page, methods=["GET"]),
    Route("/w/{slug}/pipelines", listing.create, methods=["POST"]),
    Route("/w/{slug}/pipelines/new", listing.new_page, methods=["GET"]),
    Route("/w/{slug}/pipelines/starters", listing.add_starter, methods=["POST"]),
    Route("/w/{slug}/pipelines/check", editor.check, methods=["POST"]),
    Route("/w/{slug}/pipelines/{pipeline}", editor.pipeline_page, methods=["GET"]),
    Route("/w/{slug}/pipelines/{pipeline}", editor.save, methods=["POST"]),
    Route("/w/{slug}/pipelines/{pipeline}/delete", editor.delete, methods=["POST"]),
    Route("/w/{slug}/pipelines/{pipeline}/export", editor.export, methods=["GET"]),
    Route("/w/{slug}/pipelines/{pipeline}/versions/{number}", editor.version_page, methods=["GET"]),
]
