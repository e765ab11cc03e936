"""Typed access to what the application keeps in ``app.state`` (built in ``app.main``'s lifespan)."""

from __future__ import annotations

from starlette.requests import Request

from app.config import Settings
from app.db import Database
from app.security.crypto import Keyring
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
