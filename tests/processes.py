"""Small helpers for tests that start processes: is a pid still running, wait until something holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped by its parent, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_in(path: Path) -> int | None:
    """The pid a process wrote to ``path``, once it has."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


async def eventually(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until ``check()`` is true; fail after ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still not true after {seconds} s: {check}")
