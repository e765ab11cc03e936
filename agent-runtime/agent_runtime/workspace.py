"""The workspace root every file tool is confined to, and snapshots that tell what a command changed.

Confinement here is a guard against a model's mistakes (``../``, an absolute path, a symlink pointing out);
the sandbox around the runtime is the security boundary, since ``bash`` can reach whatever the sandbox can.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

# A snapshot stops after this many entries: bash's file_changed events are a display aid, and walking a huge
# tree (node_modules) before and after every command must stay cheap.
SNAPSHOT_LIMIT = 20_000
# Folders whose churn is noise to a reader of the step (git's object store, caches).
SKIPPED_DIRS = frozenset({".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".pytest_cache"})


def display(path: str) -> str:
    """A name that is not UTF-8 (held as surrogates) with replacement characters, for events and the model."""
    return os.fsencode(path).decode("utf-8", errors="replace")


class PathRefused(ValueError):
    pass


@dataclass(frozen=True)
class FileState:
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Change:
    path: str
    change: str  # created | modified | deleted
    size: int


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` (relative to the root, or absolute inside it); refused when it leaves."""
        if not isinstance(path, str) or not path.strip():
            raise PathRefused("a path is required")
        if "\x00" in path:
            raise PathRefused("a path cannot contain NUL")
        candidate = Path(path)
        if ".." in candidate.parts:
            raise PathRefused(f"{path}: '..' is not allowed; paths stay inside the workspace")
        if not candidate.is_absolute():
            candidate = self.root / candidate
        # resolve() follows every symlink that exists, so a link pointing out of the workspace is caught here.
        real = candidate.resolve()
        if real != self.root and not real.is_relative_to(self.root):
            raise PathRefused(f"{path}: outside the workspace ({self.root})")
        return real

    def relative(self, path: Path) -> str:
        rel = display(path.relative_to(self.root).as_posix())
        return rel if rel else "."

    def snapshot(self) -> Snapshot:
        """Size and mtime of every file (symlinks not followed), up to SNAPSHOT_LIMIT of them."""
        states: dict[str, FileState] = {}
        stack = [self.root]
        while stack and len(states) < SNAPSHOT_LIMIT:
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
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(Path(entry.path))
                    continue
                rel = display(Path(entry.path).relative_to(self.root).as_posix())
                states[rel] = FileState(info.st_mtime_ns, info.st_size)
                if len(states) >= SNAPSHOT_LIMIT:
                    break
        return Snapshot(states, complete=not stack and len(states) < SNAPSHOT_LIMIT)


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, FileState]
    # False when the walk stopped at SNAPSHOT_LIMIT: two partial walks can't be compared.
    complete: bool

    def changes_since(self, before: Snapshot) -> list[Change]:
        if not (before.complete and self.complete):
            return []
        old, new = before.files, self.files
        changes = [Change(p, "created", s.size) for p, s in new.items() if p not in old]
        changes += [Change(p, "modified", s.size) for p, s in new.items() if p in old and old[p] != s]
        changes += [Change(p, "deleted", 0) for p in old if p not in new]
        return sorted(changes, key=lambda c: c.path)
