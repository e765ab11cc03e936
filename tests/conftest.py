"""Real services for the whole run: a private PostgreSQL and Redis on free loopback ports, one Chromium.

Nothing is mocked. The servers live in a temporary folder and stop at the end of the session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.embedded import EmbeddedPostgres, EmbeddedRedis
from app.security.crypto import Keyring
from app.security.secrets import SecretsService
from tests.dns_server import TestDns, dns_server


@dataclass
class Services:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    root: Path

    async def new_database(self, name: str) -> str:
        """A fresh, fully migrated database in the shared cluster; returns its SQLAlchemy URL."""
        from app.tenants.migrate import migrate_everything

        url = await self.postgres.ensure_database(name)
        db = Database(url, pool_size=2)
        try:
            await migrate_everything(db.engine)
        finally:
            await db.dispose()
        return url


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    root = Path(tempfile.mkdtemp(prefix="marid-test-"))
    os.chmod(root, 0o755)  # the unprivileged postgres user must reach its data folder
    postgres = EmbeddedPostgres(root / "postgres", durable=False)
    redis = EmbeddedRedis(root / "redis", durable=False)
    postgres.start()
    redis.start()
    try:
        yield Services(postgres, redis, root)
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(services: Services) -> str:
    return asyncio.run(services.new_database("marid"))


@pytest.fixture(scope="session")
def dns() -> Iterator[TestDns]:
    """A real DNS server on loopback (tests/dns_server.py); Marid resolves through it in every test."""
    with dns_server() as server:
        yield server


@pytest.fixture(scope="session")
def settings(services: Services, database_url: str, dns: TestDns) -> Settings:
    return Settings(env="test", database_url=database_url, redis_url=services.redis.url, dns_nameservers=dns.address)


@pytest.fixture(scope="session")
def keyring(settings: Settings) -> Keyring:
    """The tests' one keyring (the app under test builds its own from the same settings, as a process does)."""
    return settings.keyring()


@pytest.fixture(scope="session")
async def db(settings: Settings, keyring: Keyring) -> AsyncIterator[Database]:
    database = settings.database(keyring)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def secrets_service(keyring: Keyring, db: Database) -> SecretsService:
    return SecretsService(keyring, db)


@pytest.fixture(scope="session")
def server_env(settings: Settings) -> dict[str, str]:
    """Environment for a `marid web` / `marid worker` child process that uses the test services.

    Production is the default, so this says test mode; and the browser tests read mail the way a developer
    does, in the dev mailbox, so it asks for the dev routes by name.
    """
    return {
        **os.environ,
        "MARID_ENV": "test",
        "MARID_DEV_ROUTES": "1",
        "MARID_DATABASE_URL": settings.database_url,
        "MARID_REDIS_URL": settings.redis_url,
        "MARID_DNS_NAMESERVERS": settings.dns_nameservers,
    }


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """One browser-like HTTP client on the whole app (its own address, redirects not followed).

    Modules that need a different client (another app, other defaults) define their own ``client``.
    """
    from app.main import create_app
    from tests.helpers import http_client

    with http_client(create_app(settings)) as test_client:
        yield test_client


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium (Debian's) for the run, driven by Playwright's async API on the session loop.

    The sync API would mark a loop as running in this thread and break every async test after it.
    """
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture(autouse=True)
def fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    """Each test starts with no rate-limit history (the counters live in the shared Redis)."""
    if "services" not in request.fixturenames and "settings" not in request.fixturenames:
        return
    import redis

    services: Services = request.getfixturevalue("services")
    client = redis.Redis.from_url(services.redis.url)
    try:
        keys = list(client.scan_iter("marid:rl:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
