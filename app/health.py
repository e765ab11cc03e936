"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: Postgres and Redis answer)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CHECK_TIMEOUT = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check_postgres(request: Request) -> None:
    async with request.app.state.db.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_redis(request: Request) -> None:
    await request.app.state.redis.ping()


async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in (("postgres", _check_postgres), ("redis", _check_redis)):
        try:
            await asyncio.wait_for(check(request), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as error:  # report any failure as "not ready" rather than a 500
            checks[name] = f"unavailable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
