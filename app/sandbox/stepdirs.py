"""Per-workspace step directories: where a step's files live on the host, mounted as /workspace in its sandbox.

Layout: ``<root>/<workspace>/<run or session>/<step>``. Every name is validated (letters, digits, ``-``, ``_``;
no dots, so no ``..``), so two workspaces never share a directory and no name climbs out of the root. The root,
workspace and run directories are ``0711`` (the sandbox's uid may pass through to its own step, as bubblewrap
resolves the path as that uid, but may not list them); a step directory is ``0700`` and belongs, while its
sandbox runs, to the sandbox's uid (``lend``) and afterwards to the platform again (``reclaim``). The files stay
after the sandbox ends, for the pages to browse; ``prune`` applies a cleanup policy.

Reading them back is the pages' job, and a sandbox may have left symlinks: open files without following links.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
PASSAGE_MODE = 0o711
STEP_MODE = 0o700


def check_name(kind: str, value: str) -> str:
    if not NAME.fullmatch(value):
        raise ValueError(f"{kind} {value!r}: only letters, digits, '-' and '_' (at most 80, not starting with - or _)")
    return value


def _passage(path: Path) -> None:
    path.mkdir(mode=PASSAGE_MODE, exist_ok=True)
    # mkdir's mode is filtered by the umask, and an existing directory keeps whatever it had.
    os.chmod(path, PASSAGE_MODE)


def workspace_dir(root: Path, workspace_id: str) -> Path:
    """The directory of all of ``workspace_id``'s steps (for the pages); not created."""
    return root / check_name("workspace", workspace_id)


def step_dir(root: Path, workspace_id: str, run_id: str, step_id: str) -> Path:
    """The host directory of one step's files, created (empty the first time) with restrictive modes."""
    path = workspace_dir(root, workspace_id) / check_name("run", run_id) / check_name("step", step_id)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, PASSAGE_MODE)
    for passage in (path.parent.parent, path.parent):
        _passage(passage)
    path.mkdir(mode=STEP_MODE, exist_ok=True)
    os.chmod(path, STEP_MODE)
    return path


def lend(path: Path, uid: int, gid: int) -> None:
    """Hand a step directory, with whatever an earlier attempt left in it, to a sandbox's uid (as root only)."""
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
        _chown_tree(path, uid, gid)


def reclaim(path: Path) -> None:
    """Give a step directory and everything the sandbox left in it back to the owner of its parent.

    Only after the sandbox's processes are gone (nothing can race the walk); symlinks are changed, never followed.
    """
    if os.geteuid() != 0 or not path.is_dir():
        return
    owner = path.parent.stat()
    _chown_tree(path, owner.st_uid, owner.st_gid)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for folder, dirs, files in os.walk(path):  # os.walk does not descend into symlinked directories
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)


@dataclass(frozen=True)
class StepDir:
    workspace_id: str
    run_id: str
    step_id: str
    path: Path
    # The newest change to the directory itself (a file added or removed), seconds since the epoch.
    modified: float


def step_dirs(root: Path) -> Iterator[StepDir]:
    """Every step directory under ``root`` (names that do not validate are not Marid's and are skipped)."""
    if not root.is_dir():
        return
    for workspace in sorted(root.iterdir()):
        for run in sorted(_children(workspace)):
            for step in sorted(_children(run)):
                yield StepDir(workspace.name, run.name, step.name, step, step.lstat().st_mtime)


def _children(path: Path) -> list[Path]:
    if not NAME.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
        return []
    return [child for child in path.iterdir() if NAME.fullmatch(child.name) and not child.is_symlink()]


Policy = Callable[[StepDir], bool]


def older_than(days: float, *, now: float | None = None) -> Policy:
    """A cleanup policy: remove steps whose directory has not changed for ``days`` days."""
    cutoff = (time.time() if now is None else now) - days * 86400
    return lambda step: step.modified < cutoff


def prune(root: Path, policy: Policy) -> list[StepDir]:
    """Remove the step directories ``policy`` picks (then runs and workspaces left empty); what was removed.

    The hook for a retention setting or for a workspace's deletion (``lambda s: s.workspace_id == gone``).
    """
    removed = [step for step in list(step_dirs(root)) if policy(step)]
    for step in removed:
        shutil.rmtree(step.path, ignore_errors=True)
        for empty in (step.path.parent, step.path.parent.parent):
            try:
                empty.rmdir()
            except OSError:
                break
    return removed
