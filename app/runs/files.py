"""A run's files: the directory its steps work in, snapshotted with git after each step.

Every step of a run works in the same directory (``<files>/<workspace>/<run>/work``), so a review step sees
what the implementation step wrote. After a step, whatever changed is committed to a repository kept *beside*
that directory (``<files>/<workspace>/<run>/.history``, which the sandbox never mounts, so an agent cannot
rewrite history), one commit per step visit. The pages list the files (:func:`run_files`) and show what a step
changed (:func:`step_diff`). Git runs as a subprocess with a fixed, minimal environment (no user config).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.sandbox import stepdirs

WORKDIR = "work"
HISTORY = ".history"
# The empty tree's id: the parent of a run's first commit, for its diff.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
MAX_DIFF_BYTES = 2 * 1024 * 1024


class GitError(RuntimeError):
    pass


def run_dir(files_root: Path, workspace_id: str, run_id: str) -> Path:
    return stepdirs.workspace_dir(files_root, workspace_id) / stepdirs.check_name("run", run_id)


def _git(files_root: Path, workspace_id: str, run_id: str, *args: str, check: bool = True) -> str:
    base = run_dir(files_root, workspace_id, run_id)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_DIR": str(base / HISTORY),
        "GIT_WORK_TREE": str(base / WORKDIR),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Marid",
        "GIT_AUTHOR_EMAIL": "runs@marid.invalid",
        "GIT_COMMITTER_NAME": "Marid",
        "GIT_COMMITTER_EMAIL": "runs@marid.invalid",
        "LC_ALL": "C",
    }
    done = subprocess.run(
        ["git", "-c", "core.symlinks=true", "-c", "safe.directory=*", *args],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout.decode(errors="replace")


def snapshot(files_root: Path, workspace_id: str, run_id: str, message: str) -> str | None:
    """Commit whatever changed in the run's directory; the new commit's id, or None when nothing changed."""
    base = run_dir(files_root, workspace_id, run_id)
    if not (base / WORKDIR).is_dir():
        return None
    if not (base / HISTORY).is_dir():
        _git(files_root, workspace_id, run_id, "init", "-q", "-b", "main")
    _git(files_root, workspace_id, run_id, "add", "-A", ".")
    if not _git(files_root, workspace_id, run_id, "status", "--porcelain"):
        return None
    _git(files_root, workspace_id, run_id, "commit", "-q", "--no-verify", "-m", message)
    return _git(files_root, workspace_id, run_id, "rev-parse", "HEAD").strip()


@dataclass(frozen=True)
class RunFile:
    path: str
    size: int


def run_files(files_root: Path, workspace_id: str, run_id: str, *, limit: int = 2000) -> list[RunFile]:
    """The run's files as they are now (links are listed, never followed), sorted by path."""
    root = run_dir(files_root, workspace_id, run_id) / WORKDIR
    found: list[RunFile] = []
    if not root.is_dir():
        return found
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(names):
            path = Path(folder) / name
            info = path.lstat()
            found.append(RunFile(str(path.relative_to(root)), info.st_size))
            if len(found) >= limit:
                return found
    return found


def step_diff(files_root: Path, workspace_id: str, run_id: str, commit: str) -> str:
    """What the step whose snapshot is ``commit`` changed: a unified diff against the commit before it."""
    if not commit or not all(c in "0123456789abcdef" for c in commit) or len(commit) not in (40, 64):
        raise ValueError("not a commit id")
    parents = _git(files_root, workspace_id, run_id, "rev-list", "--parents", "-n", "1", commit).split()
    parent = parents[1] if len(parents) > 1 else EMPTY_TREE
    text = _git(files_root, workspace_id, run_id, "diff", "--no-color", "--no-ext-diff", parent, commit)
    return text[:MAX_DIFF_BYTES]
