"""Master-key rotation, row by row while the app serves traffic (what ``marid keys rotate`` runs).

It re-wraps every workspace data key under the primary master key, and re-seals every value sealed directly
under a master key (each :class:`MasterSealedColumn`). Each row is its own short transaction: lock that row
only (``FOR NO KEY UPDATE``, which does not hold up foreign keys pointing at it), read it again, rewrite it
only if a retired key still made it. A request may change the row before or after, never in between, and a
run that stops (or fails on one row) is resumed by running it again. Processes must already have the new
primary key configured (the README's procedure): what they write meanwhile is already current.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.security.crypto import DecryptionError, Keyring, key_id_of
from app.security.sealed import MasterSealedColumn

ProgressCallback = Callable[[int, int], None]
DATA_KEYS = "workspace data keys"
_SCAN_BATCH = 1000


@dataclass
class StepReport:
    label: str
    pending: int = 0
    changed: int = 0
    # Keys of rows none of the configured keys can open (a key removed too early, or a damaged value).
    failed: list[str] = field(default_factory=list)


async def rewrap_data_keys(
    engine: AsyncEngine, keyring: Keyring, progress: ProgressCallback | None = None
) -> StepReport:
    report = StepReport(DATA_KEYS)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT workspace_id FROM public.workspace_keys WHERE master_key_id <> :primary ORDER BY 1"),
            {"primary": keyring.primary_key_id},
        )
        pending = [row[0] for row in rows]
    report.pending = len(pending)
    for done, workspace_id in enumerate(pending, 1):
        try:
            async with engine.begin() as connection:
                wrapped = await connection.scalar(
                    text("SELECT wrapped_key FROM public.workspace_keys WHERE workspace_id = :id FOR NO KEY UPDATE"),
                    {"id": workspace_id},
                )
                if wrapped is not None and not keyring.is_current(wrapped):
                    await connection.execute(
                        text(
                            "UPDATE public.workspace_keys SET wrapped_key = :wrapped, master_key_id = :key_id, "
                            "rotated_at = now() WHERE workspace_id = :id"
                        ),
                        {
                            "wrapped": keyring.rewrap_data_key(wrapped, workspace_id),
                            "key_id": keyring.primary_key_id,
                            "id": workspace_id,
                        },
                    )
                    report.changed += 1
        except DecryptionError:
            report.failed.append(workspace_id)
        if progress is not None:
            progress(done, len(pending))
    return report


async def _scan(engine: AsyncEngine, column: MasterSealedColumn) -> list[tuple[Any, str]]:
    """Every (key, ciphertext) of the column, read in batches by key (no long-running statement)."""
    found: list[tuple[Any, str]] = []
    after: Any = None
    async with engine.connect() as connection:
        while True:
            # Table and column names come from the MasterSealedColumn declarations in the code, never input.
            query = f"SELECT {column.key_column}, {column.column} FROM {column.table} WHERE {column.column} IS NOT NULL"  # noqa: S608
            if after is not None:
                query += f" AND {column.key_column} > :after"
            query += f" ORDER BY {column.key_column} LIMIT {_SCAN_BATCH}"
            params = {"after": after} if after is not None else {}
            batch = [(row[0], row[1]) for row in await connection.execute(text(query), params)]
            found.extend(batch)
            if len(batch) < _SCAN_BATCH:
                return found
            after = batch[-1][0]
            await connection.rollback()  # one short snapshot per batch


async def reseal_column(
    engine: AsyncEngine, keyring: Keyring, column: MasterSealedColumn, progress: ProgressCallback | None = None
) -> StepReport:
    report = StepReport(column.label)
    pending = [key for key, token in await _scan(engine, column) if not keyring.is_current(token)]
    report.pending = len(pending)
    select_row = text(
        f"SELECT {column.column} FROM {column.table} WHERE {column.key_column} = :key FOR NO KEY UPDATE"  # noqa: S608
    )
    update_row = text(f"UPDATE {column.table} SET {column.column} = :sealed WHERE {column.key_column} = :key")  # noqa: S608
    for done, key in enumerate(pending, 1):
        try:
            async with engine.begin() as connection:
                token = await connection.scalar(select_row, {"key": key})
                if token is not None and not keyring.is_current(token):
                    aad = column.aad(key)
                    sealed = keyring.encrypt(keyring.decrypt(token, aad=aad), aad=aad)
                    await connection.execute(update_row, {"sealed": sealed, "key": key})
                    report.changed += 1
        except DecryptionError:
            report.failed.append(str(key))
        if progress is not None:
            progress(done, len(pending))
    return report


async def census(engine: AsyncEngine, columns: Sequence[MasterSealedColumn]) -> dict[str, Counter[str]]:
    """How many values each master key made, per kind ("workspace data keys" and each column's label)."""
    found: dict[str, Counter[str]] = {}
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT master_key_id, count(*) FROM public.workspace_keys GROUP BY 1"))
        found[DATA_KEYS] = Counter({key_id: int(count) for key_id, count in rows})
    for column in columns:
        found[column.label] = Counter(key_id_of(token) or "unreadable" for _key, token in await _scan(engine, column))
    return found
