"""compose.yaml, infra/Dockerfile and infra/postgres-init.sql: checked by the real tools, not by eye.

The compose file goes through Debian's ``docker-compose`` (``config`` interpolates variables, merges the YAML anchors
and validates against the Compose schema); the Postgres init script runs in a real, fresh PostgreSQL 15 cluster and
the role it creates then migrates and provisions a workspace. Building the image needs a Docker engine and a base
image, so that is done by hand (infra/build-base-image.sh), not here; the Dockerfile's cheap invariants are below.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from app.db import Database
from app.embedded import EmbeddedPostgres
from app.queues import Queue
from app.security.crypto import Keyring, new_key
from app.tenants.migrate import migrate_everything
from app.workspaces.service import create_workspace

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
INIT_SQL = ROOT / "infra" / "postgres-init.sql"
DOCKERFILE = ROOT / "infra" / "Dockerfile"

# Dummy values for everything compose.yaml requires (its `${VAR:?message}` interpolations) and the message each
# one fails with when missing.
REQUIRED = {
    "POSTGRES_PASSWORD": "set POSTGRES_PASSWORD",
    "MARID_DB_PASSWORD": "set MARID_DB_PASSWORD",
    "MARID_SECRET_KEY": "set MARID_SECRET_KEY to at least 32 random characters",
    "MARID_ENCRYPTION_KEY": "set MARID_ENCRYPTION_KEY",
    "MARID_BASE_URL": "set MARID_BASE_URL",
    "MARID_SMTP_HOST": "set MARID_SMTP_HOST",
}
DUMMY = {
    "POSTGRES_PASSWORD": "pg-superuser-password",
    "MARID_DB_PASSWORD": "marid-role-password",
    "MARID_SECRET_KEY": "x" * 48,
    "MARID_ENCRYPTION_KEY": "A" * 43 + "=",
    "MARID_BASE_URL": "https://marid.example",
    "MARID_SMTP_HOST": "smtp.example",
}
WORKERS = {"worker-short": "short", "worker-long": "long"}
APP_SERVICES = ("migrate", "web", *WORKERS)


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed: `apt-get install docker-compose` (scripts/test does it as root)")
    return found


def _compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A clean environment and an empty env file: neither the caller's shell nor a developer's .env may fill a gap.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [_docker_compose(), "--file", str(COMPOSE_FILE), "--env-file", str(empty_env_file), "config"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """compose.yaml as `docker-compose config` resolves it, with every required variable set."""
    result = _compose_config(tmp_path_factory.mktemp("compose"), DUMMY)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_file_validates(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"postgres", "redis", *APP_SERVICES}


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_compose_refuses_a_missing_secret(tmp_path: Path, variable: str) -> None:
    env = {name: value for name, value in DUMMY.items() if name != variable}
    result = _compose_config(tmp_path, env)
    assert result.returncode != 0
    assert REQUIRED[variable] in result.stderr


def test_every_long_running_service_has_a_real_healthcheck(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("postgres", "redis", "web", *WORKERS):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert any("/readyz" in part for part in services["web"]["healthcheck"]["test"])
    # Each worker checks its own queue's health key, not just that Redis answers.
    for name, queue in WORKERS.items():
        assert services[name]["healthcheck"]["test"] == ["CMD", "marid", "worker", "--queue", queue, "--check"]
    # The one-shot migrate job serves no HTTP: the image's web healthcheck must not mark it unhealthy.
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]


def test_data_lives_in_named_volumes(config: dict[str, Any]) -> None:
    assert set(config["volumes"]) >= {"postgres-data", "redis-data"}
    mounts = {name: service.get("volumes", []) for name, service in config["services"].items()}
    assert "postgres-data:/var/lib/postgresql/data:rw" in mounts["postgres"]
    assert "redis-data:/data:rw" in mounts["redis"]
    init_mount = f"{INIT_SQL}:/docker-entrypoint-initdb.d/10-marid.sql:ro"
    assert init_mount in mounts["postgres"]
    command = config["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_app_services_share_one_image_and_start_after_migrations(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "infra/Dockerfile"
        assert service["image"] == services["web"]["image"]
        assert service["environment"]["MARID_ENV"] == "production"
        assert service["environment"]["MARID_SECRET_KEY"] == DUMMY["MARID_SECRET_KEY"]
        assert service["environment"]["MARID_DATABASE_URL"] == (
            "postgresql+asyncpg://marid:marid-role-password@postgres:5432/marid"
        )
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert services["migrate"]["command"] == ["marid", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", *WORKERS):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == depends_on["redis"]["condition"] == "service_healthy"
    # Only web is published; Postgres and Redis stay on the compose network.
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000/tcp"], "loopback by default: a TLS proxy goes in front"


def test_one_worker_service_per_queue(config: dict[str, Any]) -> None:
    """Hour-long agent steps get their own workers, so they never hold up mail (issue 9)."""
    services = config["services"]
    assert {name: services[name]["command"] for name in WORKERS} == {
        name: ["marid", "worker", "--queue", queue] for name, queue in WORKERS.items()
    }
    assert set(WORKERS.values()) == {queue.value for queue in Queue}
    for name in WORKERS:
        assert services[name]["restart"] == "unless-stopped"


def test_dockerfile_invariants() -> None:
    dockerfile = DOCKERFILE.read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in lines
    assert [line for line in lines if line.startswith("USER ")] == ["USER 10001:10001"], "runs as a non-root user"
    assert "EXPOSE 8000" in lines
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert lines[-1] == 'CMD ["marid", "web", "--host", "0.0.0.0", "--port", "8000"]'
    assert "[test]" not in dockerfile, "no test extras in the production image"
    # Everything the build copies from the context must survive .dockerignore (an allow-list).
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        source.rstrip("/")
        for line in lines
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied and copied <= allowed, copied - allowed


@pytest.fixture
def fresh_postgres() -> Iterator[EmbeddedPostgres]:
    """A cluster of its own: the init script creates the role and database `marid`, which the shared one has."""
    root = Path(tempfile.mkdtemp(prefix="marid-initsql-"))
    os.chmod(root, 0o755)  # the unprivileged postgres user must reach its data folder
    postgres = EmbeddedPostgres(root / "postgres", durable=False)
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def _run_init_sql(postgres: EmbeddedPostgres, password: str | None) -> subprocess.CompletedProcess[str]:
    # As the image's entrypoint runs it: psql -v ON_ERROR_STOP=1 as the superuser, on database postgres.
    env = {key: value for key, value in os.environ.items() if key != "MARID_DB_PASSWORD"}
    if password is not None:
        env["MARID_DB_PASSWORD"] = password
    argv = [str(postgres.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(postgres.port)]
    return subprocess.run(
        [*argv, "-U", "postgres", "-d", "postgres", "-f", str(INIT_SQL)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_postgres_init_script_makes_a_role_that_can_run_marid(fresh_postgres: EmbeddedPostgres) -> None:
    for missing in (None, ""):
        refused = _run_init_sql(fresh_postgres, missing)
        assert refused.returncode != 0
        assert "MARID_DB_PASSWORD is not set" in refused.stderr

    password = "it's-a-secret"  # a quote: the script must not splice it into SQL text
    created = _run_init_sql(fresh_postgres, password)
    assert created.returncode == 0, created.stderr

    connection = await asyncpg.connect(fresh_postgres.superuser_dsn())
    try:
        role = await connection.fetchrow(
            "SELECT rolcanlogin, rolcreaterole, rolsuper, rolcreatedb, rolpassword FROM pg_authid"
            " WHERE rolname = 'marid'"
        )
        owner = await connection.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'marid'")
    finally:
        await connection.close()
    assert role is not None and owner == "marid"
    assert (role["rolcanlogin"], role["rolcreaterole"], role["rolsuper"], role["rolcreatedb"]) == (
        True,
        True,
        False,
        False,
    )
    assert role["rolpassword"].startswith("SCRAM-SHA-256$")

    # What compose's migrate service and then web do, as that role: migrate, then provision a workspace
    # (which creates a role of its own: CREATEROLE at work).
    db = Database(fresh_postgres.app_url(), pool_size=2, keyring=Keyring(new_key()))
    try:
        await migrate_everything(db.engine)
        async with db.public_session() as session:
            workspace = await create_workspace(session, name="Compose", slug=f"compose-{secrets.token_hex(3)}")
        assert workspace.id
    finally:
        await db.dispose()
