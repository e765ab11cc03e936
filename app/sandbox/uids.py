"""A pool of host uids, one per running sandbox.

Each sandbox runs as a uid of its own rather than a shared ``nobody``: RLIMIT_NPROC counts processes per uid, so
with a shared uid one sandbox's fork bomb would spend every other sandbox's budget (and that of any server that
also runs as ``nobody``); and files a sandbox leaves behind can be told apart. A uid is taken by creating
``<dir>/<uid>`` with O_EXCL, which is atomic across the processes of one host, so no lock is needed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class UidPool:
    def __init__(self, directory: Path, *, base: int, count: int) -> None:
        if base < 1000 or count < 1:
            raise ValueError("sandbox uids must be an unprivileged range (base >= 1000, count >= 1)")
        self.directory = directory
        self.base = base
        self.count = count

    def allocate(self, sandbox_id: str) -> int:
        """A free uid, now taken by ``sandbox_id``; raises RuntimeError when the whole range is in use."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A random starting point spreads sandboxes over the range, so a uid is rarely reused at once.
        start = secrets.randbelow(self.count)
        for offset in range(self.count):
            uid = self.base + (start + offset) % self.count
            try:
                fd = os.open(self.directory / str(uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as file:
                file.write(sandbox_id)
            return uid
        raise RuntimeError(f"all {self.count} sandbox uids from {self.base} are in use")

    def release(self, uid: int, sandbox_id: str) -> None:
        """Give ``uid`` back, if ``sandbox_id`` still holds it (a second release is harmless)."""
        path = self.directory / str(uid)
        try:
            if path.read_text() == sandbox_id:
                path.unlink()
        except FileNotFoundError:
            pass

    def holders(self) -> dict[int, str]:
        """Every uid in use and the sandbox holding it."""
        if not self.directory.is_dir():
            return {}
        found: dict[int, str] = {}
        for path in self.directory.iterdir():
            if path.name.isdigit():
                try:
                    found[int(path.name)] = path.read_text()
                except FileNotFoundError:
                    continue
        return found
