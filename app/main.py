"""The web process: ``create_app()`` builds the Starlette application (``marid web`` serves it)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app import health
from app.config import Settings, get_settings
from app.db import Database
from app.web.errors import http_exception, server_error
from app.web.security_headers import SecurityHeadersMiddleware
from app.web.templating import TEMPLATE_DIR, render

STATIC_DIR = TEMPLATE_DIR.parent / "static"


async def home(request: Request) -> Response:
    return render(request, "home.html")


def build_routes() -> list[BaseRoute]:
    return [
        *health.routes,
        Route("/", home, name="home"),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    settings.check()
    logging.basicConfig(level=settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(settings.database_url, pool_size=settings.db_pool_size)
        app.state.redis = Redis.from_url(settings.redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.db.dispose()

    return Starlette(
        routes=build_routes(),
        middleware=[Middleware(SecurityHeadersMiddleware, hsts=settings.is_production)],
        exception_handlers={HTTPException: http_exception, Exception: server_error},
        lifespan=lifespan,
    )
