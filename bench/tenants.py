"""Provisioning and migrating workspace schemas, against raw asyncpg doing the same DDL in the same run.

    .venv/bin/python bench/tenants.py [--workspaces 1000] [--chunk 25] [--concurrency 4]

Starts a private, durable PostgreSQL (fsync on) in a temporary folder, migrates the platform schema, then:

1. provisions N workspaces through the real code path (``create_workspace`` in ``Database.public_session()``,
   one transaction each) and, as the floor, N more with raw asyncpg running the same DDL in one transaction
   each (role, grant, schema, the pre-rendered tenant DDL, the ``public.workspaces`` row); the two alternate
   in chunks, so drifting machine noise and the growing catalog weigh on both alike;
2. adds one trivial tenant revision in a scratch copy of the migrations and times ``upgrade_all_workspaces``
   over the app's N workspaces; the floor runs the same rendered ALTER over the raw workspaces' schemas with
   raw asyncpg (half on ``--concurrency`` connections, half on one connection).

Prints milliseconds per workspace and the ratios against the targets. Postgres is stopped and the folder
deleted at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
from sqlalchemy import text
from tqdm import tqdm

from app.db import Database, quote_ident, schema_for
from app.embedded import EmbeddedPostgres
from app.migrate import migrate_everything
from app.tenants.migrations import upgrade_all_workspaces
from app.tenants.scripts import TenantScripts, default_scripts
from app.tenants.service import create_workspace, new_workspace_id
from migrations import TENANT_DIR

PROVISION_TARGET = 2.0  # app / raw, per workspace
MIGRATE_TARGET_SECONDS = 20.0  # for 1,000 workspaces

# One trivial revision on top of the project's tenant head, as tests/tenants/test_migrations.py does.
NEXT_REVISION = '''"""Add a column (benchmark revision).

Revision ID: b9001
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision = "b9001"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("severity", sa.String(16), server_default="info"), schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_column("audit_events", "severity", schema=TENANT_SCHEMA)
'''


@dataclass
class Timing:
    """Seconds per workspace for one way of doing one thing (or only the total, when run concurrently)."""

    label: str
    samples: list[float]
    total: float = 0.0

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def per_workspace_ms(self) -> float:
        return 1000 * self.total / self.count

    def row(self) -> str:
        if self.count and all(self.samples):
            ordered = sorted(self.samples)
            median = f"{1000 * statistics.median(ordered):8.1f}"
            p95 = f"{1000 * ordered[int(0.95 * (len(ordered) - 1))]:8.1f}"
        else:
            median = p95 = f"{'-':>8}"
        return f"  {self.label:<52} {self.count:>6} {self.total:>9.2f} {self.per_workspace_ms:>9.2f} {median} {p95}"


def scripts_with_next_revision(root: Path) -> TenantScripts:
    current = TenantScripts()
    directory = root / "tenant-scripts"
    shutil.copytree(TENANT_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "versions" / "b9001_bench.py").write_text(NEXT_REVISION.format(down=current.head))
    return TenantScripts(directory)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def provision_app(db: Database, index: int) -> float:
    started = time.perf_counter()
    async with db.public_session() as session:
        await create_workspace(session, name=f"Bench app {index}", slug=f"app-{index}")
    return time.perf_counter() - started


async def provision_raw(connection: Any, index: int, scripts: TenantScripts) -> tuple[str, float]:
    workspace_id = new_workspace_id()
    schema = schema_for(workspace_id)
    name = quote_ident(schema)
    # Pre-rendered outside the timing: the floor is the database's own work plus the round trips.
    script = (
        f"CREATE ROLE {name} NOLOGIN NOINHERIT;"
        f"GRANT {name} TO CURRENT_USER;"
        f"CREATE SCHEMA {name} AUTHORIZATION {name};"
        f"SET LOCAL ROLE {name};" + scripts.upgrade_sql_for(schema, None) + "RESET ROLE;"
    )
    started = time.perf_counter()
    async with connection.transaction():
        await connection.execute(script)
        await connection.execute(
            "INSERT INTO public.workspaces (id, slug, name, schema_revision) VALUES ($1, $2, $3, $4)",
            workspace_id,
            f"raw-{index}",
            f"Bench raw {index}",
            scripts.head,
        )
    return workspace_id, time.perf_counter() - started


async def provision_both(
    db: Database, raw: Any, count: int, chunk: int, scripts: TenantScripts
) -> tuple[Timing, Timing, list[str]]:
    app = Timing("provision: app, create_workspace()", [])
    floor = Timing("provision: raw asyncpg, same DDL (floor)", [])
    raw_ids: list[str] = []

    async def app_chunk(start: int, size: int, bar: tqdm[Any]) -> None:
        for index in range(start, start + size):
            app.samples.append(await provision_app(db, index))
            bar.update()

    async def raw_chunk(start: int, size: int, bar: tqdm[Any]) -> None:
        for index in range(start, start + size):
            workspace_id, seconds = await provision_raw(raw, index, scripts)
            raw_ids.append(workspace_id)
            floor.samples.append(seconds)
            bar.update()

    with tqdm(total=2 * count, unit="ws", desc="provisioning (app and raw in turns)", file=sys.stderr) as bar:
        for round_number, start in enumerate(range(0, count, chunk)):
            size = min(chunk, count - start)
            # Alternate who goes first, so neither always meets the slightly larger catalog.
            pair: Sequence[Callable[[int, int, tqdm[Any]], Awaitable[None]]] = (app_chunk, raw_chunk)
            for run in pair if round_number % 2 == 0 else reversed(pair):
                await run(start, size, bar)
    app.total, floor.total = sum(app.samples), sum(floor.samples)
    return app, floor, raw_ids


async def migrate_raw(
    dsn: str, schemas: list[str], scripts: TenantScripts, from_revision: str, connections: int, label: str
) -> Timing:
    """The rendered upgrade in each schema, one transaction each, over ``connections`` connections."""
    timing = Timing(label, [])
    scripts_by_schema = {
        schema: f"SET LOCAL ROLE {quote_ident(schema)};"
        + scripts.upgrade_sql_for(schema, from_revision)
        + "RESET ROLE;"
        for schema in schemas
    }
    queue = list(reversed(schemas))
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        with tqdm(total=len(schemas), unit="ws", desc=f"migrating: {label}", file=sys.stderr) as bar:

            async def worker(connection: Any) -> None:
                while queue:
                    schema = queue.pop()
                    started = time.perf_counter()
                    async with connection.transaction():
                        await connection.execute(scripts_by_schema[schema])
                    if connections == 1:
                        timing.samples.append(time.perf_counter() - started)
                    bar.update()

            started = time.perf_counter()
            await asyncio.gather(*(worker(connection) for connection in pool))
            timing.total = time.perf_counter() - started
    finally:
        for connection in pool:
            await connection.close()
    if connections > 1:
        timing.samples = [0.0] * len(schemas)  # concurrent: only the total is meaningful
    return timing


async def count_upgraded_schemas(raw: Any) -> int:
    count: int = await raw.fetchval(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = 'audit_events' AND a.attname = 'severity' AND n.nspname LIKE 'ws\\_%'"
    )
    return count


async def run(pg: EmbeddedPostgres, root: Path, count: int, chunk: int, concurrency: int) -> bool:
    url = await pg.ensure_database()
    dsn = asyncpg_dsn(url)
    db = Database(url, pool_size=concurrency + 1)
    raw = await asyncpg.connect(dsn)
    try:
        await migrate_everything(db.engine)
        version = await raw.fetchval("SHOW server_version")
        durability = [await raw.fetchval(f"SHOW {setting}") for setting in ("fsync", "synchronous_commit")]
        # Warm-up outside the timings: render the tenant DDL once, open the connections.
        default_scripts.upgrade_sql(None)
        async with db.public_session() as session:
            await session.execute(text("SELECT 1"))

        app_provision, raw_provision, raw_ids = await provision_both(db, raw, count, chunk, default_scripts)

        # The raw rows leave public.workspaces so `upgrade_all_workspaces` sees the app's workspaces only;
        # their schemas stay, still at the old head, for the migration floor.
        await raw.execute("DELETE FROM public.workspaces WHERE slug LIKE 'raw-%'")
        old_head = default_scripts.head
        next_scripts = scripts_with_next_revision(root)
        started = time.perf_counter()
        next_scripts.upgrade_sql(old_head)
        render_seconds = time.perf_counter() - started

        with tqdm(total=count, unit="ws", desc="migrating: app", file=sys.stderr) as bar:

            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            started = time.perf_counter()
            report = await upgrade_all_workspaces(
                db.engine, concurrency=concurrency, scripts=next_scripts, progress=progress
            )
            app_migrate = Timing(
                f"migrate: app, upgrade_all_workspaces({concurrency} at once)",
                [0.0] * len(report.upgraded),
                time.perf_counter() - started,
            )
        if not report.ok or len(report.upgraded) != count:
            print(f"bench: the app migration failed: {report.failure}", file=sys.stderr)
            return False

        schemas = [schema_for(workspace_id) for workspace_id in raw_ids]
        half = len(schemas) // 2
        raw_parallel = await migrate_raw(
            dsn,
            schemas[:half],
            next_scripts,
            old_head,
            concurrency,
            f"raw asyncpg, {concurrency} connections (floor)",
        )
        raw_sequential = await migrate_raw(
            dsn, schemas[half:], next_scripts, old_head, 1, "raw asyncpg, 1 connection (floor)"
        )
        for timing in (raw_parallel, raw_sequential):
            timing.label = "migrate: " + timing.label
        upgraded = await count_upgraded_schemas(raw)
        if upgraded != 2 * count:
            print(f"bench: expected {2 * count} upgraded schemas, found {upgraded}", file=sys.stderr)
            return False
        size = await raw.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await raw.close()
        await db.dispose()

    provision_ratio = app_provision.per_workspace_ms / raw_provision.per_workspace_ms
    provision_median_ratio = statistics.median(app_provision.samples) / statistics.median(raw_provision.samples)
    migrate_ratio = app_migrate.per_workspace_ms / raw_parallel.per_workspace_ms
    migrate_per_1000 = app_migrate.per_workspace_ms  # ms per workspace == s per 1,000 workspaces
    print()
    print(
        f"Marid tenant benchmark: {count:,} + {count:,} workspaces, PostgreSQL {version}, "
        f"fsync {durability[0]}, synchronous_commit {durability[1]}, {os.cpu_count()} CPUs; "
        f"database {size} at the end"
    )
    print(f"  {'':<52} {'count':>6} {'total s':>9} {'ms/ws':>9} {'median':>8} {'p95':>8}")
    for timing in (app_provision, raw_provision, app_migrate, raw_parallel, raw_sequential):
        print(timing.row())
    print(f"  rendering the new revision's SQL once (not in the totals): {1000 * render_seconds:.0f} ms")
    print()
    verdict = "ok" if provision_ratio <= PROVISION_TARGET else "OVER TARGET"
    print(
        f"  provisioning app / raw: {provision_ratio:.2f}x in total, {provision_median_ratio:.2f}x median "
        f"(target <= {PROVISION_TARGET:.0f}x) {verdict}"
    )
    print(f"  migrating app / raw ({concurrency} connections): {migrate_ratio:.2f}x")
    verdict = "ok" if migrate_per_1000 <= MIGRATE_TARGET_SECONDS else "OVER TARGET"
    print(
        f"  migrating 1,000 workspaces with the app: {migrate_per_1000:.1f} s "
        f"(target <= {MIGRATE_TARGET_SECONDS:.0f} s) {verdict}"
    )
    return True


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=1000, help="workspaces per method (default 1000)")
    parser.add_argument("--chunk", type=int, default=25, help="workspaces per turn when alternating (25)")
    parser.add_argument("--concurrency", type=int, default=4, help="schemas migrated at once (default 4)")
    args = parser.parse_args(argv)
    if args.workspaces < 2 or args.chunk < 1 or args.concurrency < 1:
        parser.error("--workspaces must be at least 2, --chunk and --concurrency at least 1")

    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="marid-bench-"))
    os.chmod(root, 0o755)  # PostgreSQL runs as the unprivileged `postgres` user when we are root
    pg = EmbeddedPostgres(root / "pg", durable=True)
    try:
        pg.start()
        ok = asyncio.run(run(pg, root, args.workspaces, args.chunk, args.concurrency))
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping PostgreSQL and removing the temporary folder", file=sys.stderr)
        return 130
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
