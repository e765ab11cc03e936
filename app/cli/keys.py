"""``marid keys``: ``new`` prints a fresh master key, ``status`` counts what each master key protects, and
``rotate`` moves everything onto the primary key while Marid serves traffic (README, "Rotating the master key").

This is where the domains' sealed values meet: the columns sealed under the master key itself are listed in
:data:`MASTER_SEALED`, each declared next to its own code.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from app.account.twofactor import TOTP_SECRETS
from app.config import Settings
from app.db import Database
from app.db.roles import ROLE_PASSWORDS
from app.security.crypto import Keyring, key_id, new_key
from app.security.rotation import DATA_KEYS, ProgressCallback, StepReport, census, reseal_column, rewrap_data_keys
from app.security.sealed import MasterSealedColumn
from app.security.secrets import SecretsService
from app.sso.legacy_secrets import LABEL as SSO_LEGACY
from app.sso.legacy_secrets import legacy_secret_workspaces, upgrade_legacy_secrets

MASTER_SEALED: tuple[MasterSealedColumn, ...] = (ROLE_PASSWORDS, TOTP_SECRETS)
Progress = Callable[[str], ProgressCallback | None]


@dataclass
class Census:
    # Kind of value ("workspace data keys", "TOTP secrets"...) -> master key id -> how many.
    by_key: dict[str, Counter[str]]
    # Workspaces whose SSO client secret is still sealed directly under a master key.
    legacy_sso: int

    def left_behind(self, keyring: Keyring) -> int:
        """Values a retired (or unknown) key still protects: removing a key before this is 0 loses them."""
        others = sum(n for counts in self.by_key.values() for key, n in counts.items() if key != keyring.primary_key_id)
        return others + self.legacy_sso


@dataclass
class RotationReport:
    steps: list[StepReport] = field(default_factory=list)
    after: Census | None = None

    @property
    def failed(self) -> int:
        return sum(len(step.failed) for step in self.steps)


async def take_census(db: Database, secrets: SecretsService) -> Census:
    return Census(await census(db.engine, MASTER_SEALED), len(await legacy_secret_workspaces(db, secrets)))


async def rotate(db: Database, secrets: SecretsService, progress: Progress = lambda label: None) -> RotationReport:
    """Everything under the primary master key, row by row; safe to run while the app serves traffic."""
    keyring = secrets.keyring
    report = RotationReport()
    # SSO secrets sealed before the secrets service move onto data keys first, so nothing they need is
    # sealed under the master key any more.
    report.steps.append(await upgrade_legacy_secrets(db, secrets, progress(SSO_LEGACY)))
    report.steps.append(await rewrap_data_keys(db.engine, keyring, progress(DATA_KEYS)))
    for column in MASTER_SEALED:
        report.steps.append(await reseal_column(db.engine, keyring, column, progress(column.label)))
    report.after = await take_census(db, secrets)
    return report


def _bars(quiet: bool) -> tuple[Progress, Callable[[], None]]:
    """One progress bar per step on stderr (made on a step's first row: steps with nothing to do stay silent)."""
    bars: list[tqdm[Any]] = []

    def progress(label: str) -> ProgressCallback | None:
        if quiet:
            return None
        mine: list[tqdm[Any]] = []

        def update(done: int, total: int) -> None:
            if not mine:
                mine.append(tqdm(total=total, unit="row", desc=label, file=sys.stderr))
                bars.append(mine[0])
            mine[0].update(done - mine[0].n)

        return update

    def close() -> None:
        for bar in bars:
            bar.close()

    return progress, close


async def run_rotate(settings: Settings, keyring: Keyring, *, quiet: bool = False) -> int:
    db = settings.database(keyring, pool_size=2)
    secrets = SecretsService(keyring, db)
    progress, close = _bars(quiet)

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    retired = ", ".join(keyring.retired_key_ids) or "none"
    say(f"Primary master key {keyring.primary_key_id}; retired keys: {retired}.")
    try:
        report = await rotate(db, secrets, progress)
    finally:
        close()
        await db.dispose()
    for step in report.steps:
        say(f"{step.label}: {step.changed} of {step.pending} moved to key {keyring.primary_key_id}")
        if step.failed:
            print(
                f"marid keys rotate: {step.label}: no configured key opens {', '.join(step.failed[:20])}"
                + (" …" if len(step.failed) > 20 else ""),
                file=sys.stderr,
            )
    assert report.after is not None
    left = report.after.left_behind(keyring)
    if report.failed or left:
        print(
            f"marid keys rotate: {left} value(s) are still under other keys. Check that every process has key "
            f"{keyring.primary_key_id} first in MARID_ENCRYPTION_KEYS, then run `marid keys rotate` again; "
            "keep the retired keys configured until it reports none.",
            file=sys.stderr,
        )
        return 1
    done = f"Everything is under key {keyring.primary_key_id}."
    if keyring.retired_key_ids:
        done += f" Retired keys ({retired}) can now be removed from MARID_ENCRYPTION_KEYS."
    say(done)
    return 0


def _state(keyring: Keyring, key: str) -> str:
    if key == keyring.primary_key_id:
        return "primary"
    return "retired" if key in keyring.retired_key_ids else "NOT CONFIGURED"


async def run_status(settings: Settings, keyring: Keyring) -> int:
    db = settings.database(keyring, pool_size=2)
    try:
        found = await take_census(db, SecretsService(keyring, db))
    finally:
        await db.dispose()
    ids = [keyring.primary_key_id, *keyring.retired_key_ids]
    ids += sorted({key for counts in found.by_key.values() for key in counts} - set(ids))
    for key in ids:
        counts = ", ".join(f"{kind}: {counts[key]}" for kind, counts in found.by_key.items())
        print(f"key {key} ({_state(keyring, key)}): {counts}")
    if found.legacy_sso:
        print(f"{SSO_LEGACY}: {found.legacy_sso} (`marid migrate` or `marid keys rotate` moves them onto data keys)")
    left = found.left_behind(keyring)
    print(f"{left} value(s) under keys other than the primary" + ("; run `marid keys rotate`" if left else ""))
    return 0


async def run_upgrade_legacy(settings: Settings, keyring: Keyring, *, quiet: bool = False) -> int:
    """The step of `marid migrate` that moves SSO secrets sealed before the secrets service onto it."""
    db = settings.database(keyring, pool_size=2)
    progress, close = _bars(quiet)
    try:
        report = await upgrade_legacy_secrets(db, SecretsService(keyring, db), progress(SSO_LEGACY))
    finally:
        close()
        await db.dispose()
    if report.failed:
        print(f"marid migrate: {report.label}: no configured key opens {', '.join(report.failed)}", file=sys.stderr)
        return 1
    return 0


def print_new_key() -> int:
    key = new_key()
    print(key)
    print(
        f"New master key {key_id(key)}: put it first in MARID_ENCRYPTION_KEYS, keep the old keys after it, deploy, "
        "then run `marid keys rotate`.",
        file=sys.stderr,
    )
    return 0
