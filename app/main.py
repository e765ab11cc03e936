"""The web process: ``create_app()`` builds the Starlette application (``marid web`` serves it)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from app.apikeys.auth import ApiKeyMiddleware
from app.auth.middleware import AuthenticationMiddleware
from app.config import Settings, get_settings
from app.live.bus import EventBus
from app.live.sse import Hub
from app.llm.gateway import build_gateway
from app.queues import Enqueuer
from app.routes import build_routes
from app.security.ratelimit import RateLimiter
from app.security.secrets import SecretsService
from app.web.csrf import CSRFMiddleware
from app.web.errors import http_exception, server_error, service_unavailable
from app.web.input_guard import InputGuardMiddleware
from app.web.security_headers import SecurityHeadersMiddleware
from app.web.templating import templates


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    settings.check()
    logging.basicConfig(level=settings.log_level.upper())
    # Jinja2 checks every template file's mtime on each use when auto_reload is on (extends, imports and
    # includes: a dozen stat calls per page); only `marid dev`, where templates are edited, needs it.
    templates.env.auto_reload = settings.env == "dev"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        # The one keyring of this process: everything that seals or opens a secret gets it from here.
        app.state.keyring = settings.keyring()
        app.state.db = settings.database(app.state.keyring)
        app.state.secrets = SecretsService(app.state.keyring, app.state.db)
        app.state.redis = Redis.from_url(settings.redis_url)
        app.state.rate_limiter = RateLimiter(app.state.redis)
        app.state.jobs = Enqueuer(settings.redis_url)
        app.state.bus = EventBus(app.state.redis, retention=settings.event_retention())
        app.state.hub = Hub(app.state.redis)
        app.state.llm = build_gateway(settings, app.state.db, app.state.secrets, app.state.redis, app.state.bus)
        # Everything built so far (modules, routes, templates, mappers: hundreds of thousands of objects) lives
        # as long as the process: move it out of the collector's sight, so its full collections stop walking it
        # on every few requests (measured: 7% of a dashboard request's time was such pauses).
        gc.freeze()
        try:
            yield
        finally:
            await app.state.llm.aclose()
            await app.state.hub.close()
            await app.state.jobs.close()
            await app.state.redis.aclose()
            await app.state.db.dispose()

    return Starlette(
        routes=build_routes(settings),
        middleware=[
            Middleware(SecurityHeadersMiddleware, hsts=settings.is_production),
            Middleware(InputGuardMiddleware),
            Middleware(CSRFMiddleware, cookie_name=settings.csrf_cookie, secure=settings.is_production),
            Middleware(AuthenticationMiddleware),
            Middleware(ApiKeyMiddleware),
        ],
        exception_handlers={
            HTTPException: http_exception,
            RedisConnectionError: service_unavailable,
            RedisTimeoutError: service_unavailable,
            OperationalError: service_unavailable,
            InterfaceError: service_unavailable,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
