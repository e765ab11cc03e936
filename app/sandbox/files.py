"""What a step changed in its workdir, seen from the host (a sandbox's own file_changed events are hints only)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.step import FileChange

# Bounded, so that a sandbox that makes a million files cannot make the worker walk them all.
SNAPSHOT_LIMIT = 50_000


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, tuple[int, int]]  # path -> (mtime_ns, size)
    complete: bool


def snapshot(root: Path) -> Snapshot:
    files: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
                continue
            files[_display(Path(entry.path).relative_to(root).as_posix())] = (info.st_mtime_ns, info.st_size)
            if len(files) >= SNAPSHOT_LIMIT:
                return Snapshot(files, complete=False)
    return Snapshot(files, complete=True)


def changes(before: Snapshot, after: Snapshot) -> tuple[FileChange, ...]:
    """Created, modified and deleted files; when either walk stopped at the limit, deletions are not reported
    (a file beyond the limit only seems gone)."""
    old, new = before.files, after.files
    found = [FileChange(p, "created", s[1]) for p, s in new.items() if p not in old and before.complete]
    found += [FileChange(p, "modified", s[1]) for p, s in new.items() if p in old and old[p] != s]
    if before.complete and after.complete:
        found += [FileChange(p, "deleted", 0) for p in old if p not in new]
    return tuple(sorted(found, key=lambda c: c.path))


def _display(path: str) -> str:
    """A name that is not UTF-8 (held as surrogates) with replacement characters: it goes to pages and JSON."""
    return os.fsencode(path).decode("utf-8", errors="replace")
