"""Workspaces at scale: provisioning, requests of other workspaces, and migrating, against raw asyncpg.

    .venv/bin/python bench/tenants.py [--workspaces 10000] [--every 1000] [--chunk 25] [--concurrency 4]
                                      [--postgres-bin /usr/lib/postgresql/15/bin]

Starts a private, durable PostgreSQL (fsync on) in a temporary folder, migrates the platform schema, then
provisions ``--workspaces`` workspaces: in turns of ``--chunk``, half through the real code path
(``create_workspace`` in ``Database.public_session()``, one transaction each) and half, as the floor, with
raw asyncpg running the same SQL (login role, schema, default privileges, the pre-rendered tenant DDL,
restrictions, the ``public.workspaces`` row) in one transaction each, so the growing catalog weighs on both
alike. After the first 100 and every ``--every`` workspaces it prints:

- provisioning p50 and p95 of each path since the last row, and their ratio (app / raw, by median);
- what creating a workspace costs *other* workspaces: eight workspaces made at the start keep warm tenant
  pools; right after one more workspace is created, each runs one request (a tenant session with a query),
  then runs it again; "first" is the slowest first request, "added" the largest first-minus-second;
- the same for the application role's own pooled connection (a public-session query);
- a cold tenant request (a workspace whose pool was evicted: password lookup, log-in, query);
- the database size.

Then it adds one trivial tenant revision and migrates every workspace with ``upgrade_all_workspaces``
(``--concurrency`` at once), next to raw asyncpg running an equivalent ALTER over the same schemas on as many
connections. Targets (issue 15): provisioning p50 <= 100 ms at the end and <= 1.5x its value at 100
workspaces; migrating 10,000 workspaces <= 3 minutes; creating a workspace adds <= 10 ms to other
workspaces' next request. Postgres is stopped and the folder deleted at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
from sqlalchemy import func, select
from tqdm import tqdm

from app.audit.models import AuditEvent
from app.db import Database, quote_ident, schema_for
from app.db.roles import new_role_password
from app.embedded import EmbeddedPostgres
from app.security.crypto import Keyring, new_key
from app.tenants.migrate import migrate_everything, upgrade_all_workspaces
from app.tenants.models import Workspace
from app.tenants.provisioning import role_sql, schema_sql
from app.tenants.scripts import TenantScripts, default_scripts
from app.workspaces.service import create_workspace, new_workspace_id
from migrations import TENANT_DIR

PROVISION_P50_TARGET_MS = 100.0
PROVISION_GROWTH_TARGET = 1.5
MIGRATE_TARGET_SECONDS_PER_10K = 180.0
ADDED_LATENCY_TARGET_MS = 10.0
PROBES = 8

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


def ms(seconds: float) -> float:
    return 1000 * seconds


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(0.95 * (len(ordered) - 1))]


@dataclass
class Mark:
    """One printed row: the state after ``count`` workspaces."""

    count: int
    app_ms: list[float]
    raw_ms: list[float]
    tenant_first_ms: float
    tenant_added_ms: float
    public_first_ms: float
    public_added_ms: float
    cold_ms: float
    size: str

    @property
    def app_p50(self) -> float:
        return statistics.median(self.app_ms)

    @property
    def ratio(self) -> float:
        return self.app_p50 / statistics.median(self.raw_ms)

    def row(self) -> str:
        return (
            f"  {self.count:>7,} {self.app_p50:8.1f} {p95(self.app_ms):7.1f} {statistics.median(self.raw_ms):8.1f} "
            f"{p95(self.raw_ms):7.1f} {self.ratio:6.2f}x {self.tenant_first_ms:8.2f} {self.tenant_added_ms:7.2f} "
            f"{self.public_first_ms:8.2f} {self.public_added_ms:7.2f} {self.cold_ms:7.1f} {self.size:>9}"
        )


HEADER = (
    f"  {'spaces':>7} {'app p50':>8} {'p95':>7} {'raw p50':>8} {'p95':>7} {'ratio':>7} "
    f"{'tenant1st':>8} {'added':>7} {'public1st':>8} {'added':>7} {'cold':>7} {'db size':>9}"
)


@dataclass
class Run:
    db: Database
    raw: Any
    keyring: Keyring
    probes: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    app_window: list[float] = field(default_factory=list)
    raw_window: list[float] = field(default_factory=list)
    index: int = 0

    async def provision_app(self) -> None:
        self.index += 1
        started = time.perf_counter()
        async with self.db.public_session() as session:
            workspace = await create_workspace(session, name=f"Bench app {self.index}", slug=f"app-{self.index}")
        self.app_window.append(ms(time.perf_counter() - started))
        self.made.append(workspace.id)

    async def provision_raw(self) -> None:
        self.index += 1
        workspace_id = new_workspace_id()
        password = new_role_password()
        assert self.db.role_secrets is not None
        # Made outside the timing: the floor is the database's own work plus the round trips.
        sealed = self.db.role_secrets.seal(workspace_id, password)
        script = role_sql(workspace_id, password) + schema_sql(workspace_id, default_scripts)
        started = time.perf_counter()
        async with self.raw.transaction():
            await self.raw.execute(
                "INSERT INTO public.workspaces (id, slug, name, schema_revision, db_password_enc) "
                "VALUES ($1, $2, $3, $4, $5)",
                workspace_id,
                f"raw-{self.index}",
                f"Bench raw {self.index}",
                default_scripts.head,
                sealed,
            )
            await self.raw.execute(script)
        self.raw_window.append(ms(time.perf_counter() - started))
        self.made.append(workspace_id)

    async def tenant_request(self, workspace_id: str) -> float:
        started = time.perf_counter()
        async with self.db.tenant_session(workspace_id) as session:
            await session.scalar(select(func.count()).select_from(AuditEvent))
        return ms(time.perf_counter() - started)

    async def public_request(self, workspace_id: str) -> float:
        started = time.perf_counter()
        async with self.db.public_session() as session:
            await session.scalar(select(Workspace.slug).where(Workspace.id == workspace_id))
        return ms(time.perf_counter() - started)

    async def mark(self) -> Mark:
        # One more workspace, then the others' next requests: first (after the change) and again.
        await self.provision_app()
        tenant_first = [await self.tenant_request(workspace_id) for workspace_id in self.probes]
        tenant_again = [await self.tenant_request(workspace_id) for workspace_id in self.probes]
        await self.provision_app()
        public_first = [await self.public_request(self.probes[0]) for _ in range(PROBES)]
        public_again = [await self.public_request(self.probes[0]) for _ in range(PROBES)]
        cold_candidates = [w for w in self.made[PROBES:-2] if w not in self.db.tenants]
        cold = await self.tenant_request(random.choice(cold_candidates)) if cold_candidates else float("nan")
        size = await self.raw.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        mark = Mark(
            count=len(self.made),
            app_ms=self.app_window,
            raw_ms=self.raw_window,
            tenant_first_ms=max(tenant_first),
            tenant_added_ms=max(first - again for first, again in zip(tenant_first, tenant_again, strict=True)),
            public_first_ms=public_first[0],
            public_added_ms=public_first[0] - statistics.median(public_again),
            cold_ms=cold,
            size=size,
        )
        self.app_window, self.raw_window = [], []
        return mark


def scripts_with_next_revision(root: Path) -> TenantScripts:
    current = TenantScripts()
    directory = root / "tenant-scripts"
    shutil.copytree(TENANT_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "versions" / "b9001_bench.py").write_text(NEXT_REVISION.format(down=current.head))
    return TenantScripts(directory)


async def migrate_raw(dsn: str, workspace_ids: list[str], connections: int) -> float:
    """The floor: an equivalent ALTER and version bump per schema, one transaction each, raw asyncpg."""
    queue = list(workspace_ids)
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        with tqdm(total=len(queue), unit="ws", desc="migrating: raw asyncpg (floor)", file=sys.stderr) as bar:

            async def worker(connection: Any) -> None:
                while queue:
                    schema = quote_ident(schema_for(queue.pop()))
                    async with connection.transaction():
                        alter = f"ALTER TABLE {schema}.audit_events ADD COLUMN severity2 VARCHAR(16) DEFAULT 'info';"
                        bump = f"UPDATE {schema}.alembic_version SET version_num = 'b9002'"  # noqa: S608
                        await connection.execute(alter + bump)
                    bar.update()

            started = time.perf_counter()
            await asyncio.gather(*(worker(connection) for connection in pool))
            return time.perf_counter() - started
    finally:
        for connection in pool:
            await connection.close()


async def run(pg: EmbeddedPostgres, root: Path, count: int, every: int, chunk: int, concurrency: int) -> bool:
    url = await pg.ensure_database()
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    keyring = Keyring(new_key())
    db = Database(url, pool_size=concurrency + 1, keyring=keyring, tenant_workspaces=PROBES + 4)
    raw = await asyncpg.connect(dsn)
    run = Run(db, raw, keyring)
    marks: list[Mark] = []
    try:
        await migrate_everything(db.engine)
        version = await raw.fetchval("SHOW server_version")
        durability = [await raw.fetchval(f"SHOW {setting}") for setting in ("fsync", "synchronous_commit")]
        default_scripts.upgrade_sql(None)  # render the tenant DDL once, outside the timings
        for _ in range(PROBES):
            await run.provision_app()
        run.probes = list(run.made)
        for workspace_id in run.probes:
            await run.tenant_request(workspace_id)
        run.app_window = []

        print(
            f"\nMarid tenant benchmark: PostgreSQL {version}, fsync {durability[0]}, synchronous_commit "
            f"{durability[1]}, {os.cpu_count()} CPUs. Times in ms; tenant1st/public1st: the slowest first request "
            "of another workspace right after a workspace was created; added: first minus the next one.",
            file=sys.stderr,
        )
        print(HEADER, file=sys.stderr)
        checkpoints = sorted({min(100, count), *range(every, count + 1, every), count})
        turn = 0
        with tqdm(total=count, unit="ws", desc="provisioning (app and raw in turns)", file=sys.stderr) as bar:
            for checkpoint in checkpoints:
                while len(run.made) < checkpoint - 2:  # a mark provisions two more (app)
                    size = min(chunk, checkpoint - 2 - len(run.made))
                    step: Callable[[], Awaitable[None]] = run.provision_app if turn % 2 == 0 else run.provision_raw
                    for _ in range(size):
                        await step()
                    turn += 1
                    bar.update(len(run.made) - bar.n)
                if not run.raw_window:
                    await run.provision_raw()
                mark = await run.mark()
                marks.append(mark)
                bar.update(len(run.made) - bar.n)
                tqdm.write(mark.row(), file=sys.stderr)

        total = len(run.made)
        next_scripts = scripts_with_next_revision(root)
        next_scripts.upgrade_sql(default_scripts.head)
        with tqdm(total=total, unit="ws", desc="migrating: app", file=sys.stderr) as bar:

            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            started = time.perf_counter()
            report = await upgrade_all_workspaces(
                db.engine, concurrency=concurrency, scripts=next_scripts, progress=progress
            )
            app_migrate = time.perf_counter() - started
        if not report.ok or len(report.upgraded) != total:
            print(f"bench: the app migration failed: {report.failure}", file=sys.stderr)
            return False
        raw_migrate = await migrate_raw(dsn, list(run.made), concurrency)
        size = await raw.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await raw.close()
        await db.dispose()

    first, last = marks[0], marks[-1]
    print()
    print(
        f"Marid tenant benchmark: {total:,} workspaces (half app, half raw), PostgreSQL {version}, "
        f"fsync {durability[0]}, {os.cpu_count()} CPUs; database {size} at the end"
    )
    print(HEADER)
    for mark in marks:
        print(mark.row())
    growth = last.app_p50 / first.app_p50
    worst_added = max(max(m.tenant_added_ms, m.public_added_ms) for m in marks)
    migrate_per_10k = app_migrate * 10_000 / total
    print()

    def verdict(ok: bool) -> str:
        return "ok" if ok else "OVER TARGET"

    print(
        f"  provisioning p50 at {last.count:,}: {last.app_p50:.1f} ms (target <= {PROVISION_P50_TARGET_MS:.0f}) "
        f"{verdict(last.app_p50 <= PROVISION_P50_TARGET_MS)}; {growth:.2f}x its value at {first.count:,} "
        f"(target <= {PROVISION_GROWTH_TARGET}x) {verdict(growth <= PROVISION_GROWTH_TARGET)}; "
        f"app / raw {last.ratio:.2f}x"
    )
    print(
        f"  creating a workspace adds at most {worst_added:.2f} ms to another workspace's next request "
        f"(target <= {ADDED_LATENCY_TARGET_MS:.0f}) {verdict(worst_added <= ADDED_LATENCY_TARGET_MS)}"
    )
    print(
        f"  migrating {total:,} workspaces ({concurrency} at once): app {app_migrate:.1f} s, raw asyncpg floor "
        f"{raw_migrate:.1f} s ({app_migrate / raw_migrate:.2f}x); per 10,000: {migrate_per_10k:.0f} s "
        f"(target <= {MIGRATE_TARGET_SECONDS_PER_10K:.0f}) {verdict(migrate_per_10k <= MIGRATE_TARGET_SECONDS_PER_10K)}"
    )
    return True


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=2000, help="workspaces in all (default 2000)")
    parser.add_argument("--every", type=int, default=1000, help="print a row every N workspaces (1000)")
    parser.add_argument("--chunk", type=int, default=25, help="workspaces per turn when alternating (25)")
    parser.add_argument("--concurrency", type=int, default=4, help="schemas migrated at once (default 4)")
    parser.add_argument("--postgres-bin", type=Path, help="PostgreSQL server binaries (default: the newest installed)")
    args = parser.parse_args(argv)
    if args.workspaces < 2 * PROBES or args.every < 10 or args.chunk < 1 or args.concurrency < 1:
        parser.error(f"--workspaces must be at least {2 * PROBES}, --every at least 10, the rest at least 1")

    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="marid-bench-"))
    os.chmod(root, 0o755)  # PostgreSQL runs as the unprivileged `postgres` user when we are root
    pg = EmbeddedPostgres(root / "pg", durable=True, bindir=args.postgres_bin)
    try:
        pg.start()
        ok = asyncio.run(run(pg, root, args.workspaces, args.every, args.chunk, args.concurrency))
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping PostgreSQL and removing the temporary folder", file=sys.stderr)
        return 130
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
