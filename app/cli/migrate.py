"""``marid migrate`` with a progress bar and a clear verdict."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from app.config import get_settings
from app.db import Database
from app.migrate import migrate_everything
from app.security.crypto import Keyring
from app.tenants.scripts import TenantScripts, default_scripts


async def run_migrate(
    database_url: str,
    *,
    keyring: Keyring | None = None,
    concurrency: int | None = None,
    quiet: bool = False,
    scripts: TenantScripts = default_scripts,
) -> int:
    db = Database(
        database_url,
        pool_size=max(2, (concurrency or get_settings().migrate_concurrency) + 1),
        keyring=keyring or get_settings().keyring(),
    )
    bars: list[tqdm[Any]] = []

    def progress(done: int, total: int) -> None:
        if quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="workspace", desc="Migrating workspaces", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        report = await migrate_everything(
            db.engine,
            concurrency=concurrency or get_settings().migrate_concurrency,
            scripts=scripts,
            progress=progress,
            role_secrets=db.role_secrets,
        )
    finally:
        for bar in bars:
            bar.close()
        await db.dispose()
    if report.failure is not None:
        print(
            f"marid migrate: schema {report.failure.schema} failed: {report.failure.message}\n"
            f"{len(report.upgraded)} workspace(s) were upgraded before it; every schema is consistent. "
            "Fix the cause and run `marid migrate` again to resume.",
            file=sys.stderr,
        )
        return 1
    if not quiet:
        print(
            f"Platform schema at head; {len(report.upgraded)} of {report.pending} pending workspace(s) upgraded "
            f"to {report.head}.",
            file=sys.stderr,
        )
    return 0
