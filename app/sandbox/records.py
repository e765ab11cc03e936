"""What the local runner writes down about each sandbox it starts: one small JSON file per sandbox.

The files live in the runner's state directory on the host, so a process that did not start a sandbox (the
reaper, a restarted worker) can still find it, see whether its worker is alive and destroy it. A process is
named by its pid *and* its start time, so a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended; only its exit status is waiting to be collected
        return None
    return int(fields[19])


def alive(pid: int, started: int) -> bool:
    return start_time(pid) == started


@dataclass
class LocalRecord:
    sandbox_id: str
    workspace_id: str
    worker_id: str
    # The bubblewrap process (its death takes the whole sandbox along) and when it started.
    pid: int
    pid_started: int
    uid: int | None
    workdir: str
    channel_dir: str
    # Epoch seconds after which the sandbox has outlived its timeout, whoever owns it.
    deadline: float
    created: float
    cgroups: dict[str, object] | None = None
    labels: dict[str, str] = field(default_factory=dict)


class RecordStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, sandbox_id: str) -> Path:
        return self.directory / f"{sandbox_id}.json"

    def save(self, record: LocalRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written aside and renamed: a reader never sees half a record.
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(record), file)
        os.replace(temporary, self._path(record.sandbox_id))

    def load(self, sandbox_id: str) -> LocalRecord | None:
        try:
            return LocalRecord(**json.loads(self._path(sandbox_id).read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):  # not one of ours, or from an older layout: nothing to act on
            return None

    def all(self) -> list[LocalRecord]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            record = self.load(path.stem)
            if record is not None:
                found.append(record)
        return found

    def delete(self, sandbox_id: str) -> None:
        self._path(sandbox_id).unlink(missing_ok=True)
