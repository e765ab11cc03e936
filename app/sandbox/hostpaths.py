"""Host paths a sandbox's own uid must reach, and what a runner lends to that uid and takes back."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def ensure_reachable(path: Path) -> None:
    """Let other uids pass through (not list) every parent of ``path``: bubblewrap, running as the sandbox's uid,
    resolves each directory it mounts. Only the traverse bit is added, where missing, and it is said (``/root``
    is the usual case, as for PostgreSQL's data directory)."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
            log.warning("allowed sandbox uids to traverse %s (chmod o+x) to reach %s", parent, path)


def lend_channel(channel_dir: Path, uid: int, gid: int) -> None:
    """Give the channel directory and what is in it (the listening socket) to the sandbox's uid.

    Connecting to a unix socket needs write permission on it, and the supervisor created it as itself.
    """
    os.chown(channel_dir, uid, gid)
    os.chmod(channel_dir, 0o700)
    for entry in channel_dir.iterdir():
        os.lchown(entry, uid, gid)


def reclaim_channel(channel_dir: Path) -> None:
    """Give the channel directory back to the owner of its parent (the supervisor cleans it up)."""
    if not channel_dir.is_dir():
        return
    owner = channel_dir.parent.stat()
    os.lchown(channel_dir, owner.st_uid, owner.st_gid)
    for entry in channel_dir.iterdir():
        os.lchown(entry, owner.st_uid, owner.st_gid)
