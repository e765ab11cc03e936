"""Typed access to what the application keeps in ``app.state`` (built in ``app.main``'s lifespan), and the
unit of work a request opens for a change."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.audit.unit_of_work import public_change, workspace_change
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.security.crypto import Keyring
from app.security.ratelimit import RateLimiter
from app.security.secrets import SecretsService


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def keyring_of(request: Request) -> Keyring:
    """The process's one keyring (values sealed under the master key itself: TOTP secrets)."""
    keyring: Keyring = request.app.state.keyring
    return keyring


def secrets_of(request: Request) -> SecretsService:
    """The process's secrets service (workspace secrets, under the workspace's data key)."""
    secrets: SecretsService = request.app.state.secrets
    return secrets


def bus_of(request: Request) -> EventBus:
    """The process's event bus; a missing one is an error (events would be lost without a trace)."""
    bus = getattr(request.app.state, "bus", None)
    if not isinstance(bus, EventBus):
        raise RuntimeError("this application has no event bus (app.state.bus): its lifespan did not run")
    return bus


def limiter_of(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def changes(request: Request) -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work on platform tables whose audit entries reach the workspace's log and live feed once it
    commits (``app.audit.unit_of_work.public_change``)."""
    return public_change(db_of(request), bus_of(request))


def workspace_changes(request: Request, workspace_id: str) -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work on the workspace's own tables (agents, secrets...) whose audit entries are published to
    its live feed once it commits (``app.audit.unit_of_work.workspace_change``)."""
    return workspace_change(db_of(request), bus_of(request), workspace_id)
