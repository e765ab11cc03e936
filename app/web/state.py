"""Typed access to what the application keeps in ``app.state`` (built in ``app.main``'s lifespan)."""

from __future__ import annotations

from starlette.requests import Request

from app.config import Settings
from app.db import Database


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db
