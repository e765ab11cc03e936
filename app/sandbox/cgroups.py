"""Memory, pids and CPU limits for one sandbox through cgroups: v2 where its controllers are usable, else v1.

Sandboxes go below the worker's own cgroup (``<own>/marid-sandboxes/<sandbox id>``), so whatever bounds the
worker (a systemd slice, a container) also bounds its sandboxes. Under v2 a cgroup with processes in it cannot
hand controllers to children, so the worker first moves itself into a leaf ``<own>/marid-worker`` (the
systemd ``Delegate=yes`` pattern). Where neither version can be written (a non-root user without delegation,
a read-only /sys), ``create`` returns None and the runner decides (docs/sandboxing.md).

This machine (hybrid mode, controllers on v1) exercises the v1 path; the v2 path follows the kernel's
cgroup-v2 documentation (memory.max, memory.swap.max, pids.max, cpu.max, cgroup.kill).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.runner import Limits, SandboxError

PARENT = "marid-sandboxes"
WORKER_LEAF = "marid-worker"
# memory and pids are what keeps a bomb inside; cpu only shares the machine fairly, so it is optional.
REQUIRED = ("memory", "pids")
WANTED = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
# What "this process may not create cgroups here" looks like (rather than a real failure).
CANNOT = {errno.EACCES, errno.EPERM, errno.EROFS}


@dataclass(frozen=True)
class Cgroups:
    """One sandbox's cgroup directories: one per v1 controller, or the single v2 one."""

    version: int
    paths: tuple[Path, ...]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            try:
                found.update(int(line) for line in (path / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return found

    def kill(self) -> None:
        """SIGKILL everything inside. v2 has cgroup.kill; v1 is swept until empty (a fork can race one pass)."""
        if self.version == 2 and (self.paths[0] / "cgroup.kill").exists():
            _write(self.paths[0] / "cgroup.kill", "1")
            return
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for want of memory."""
        for path in self.paths:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (path / name).read_text()
                except FileNotFoundError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def remove(self, *, timeout: float = 2.0) -> bool:
        """Delete the directories (after ``kill``); False if one is still busy after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        remaining = [path for path in self.paths if path.exists()]
        while remaining:
            for path in list(remaining):
                try:
                    path.rmdir()
                    remaining.remove(path)
                except FileNotFoundError:
                    remaining.remove(path)
                except OSError as error:
                    # EBUSY while a killed task is still exiting (a zombie waiting for its reaper).
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        return False
            if remaining:
                time.sleep(0.01)
        return True

    def to_record(self) -> dict[str, object]:
        return {"version": self.version, "paths": [str(path) for path in self.paths]}

    @classmethod
    def from_record(cls, data: dict[str, object]) -> Cgroups:
        paths = data.get("paths")
        version = data.get("version")
        if not isinstance(paths, list) or not isinstance(version, int):
            raise ValueError("not a cgroups record")
        return cls(version, tuple(Path(str(path)) for path in paths))


def _write(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _mounts() -> tuple[dict[str, tuple[Path, str]], tuple[Path, str] | None]:
    """(v1 controller -> (mount point, mount root), the v2 mount) from /proc/self/mountinfo."""
    v1: dict[str, tuple[Path, str]] = {}
    v2: tuple[Path, str] | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        root, mount_point = fields[3], Path(fields[4])
        if fstype == "cgroup2":
            v2 = (mount_point, root)
        elif fstype == "cgroup":
            for controller in WANTED:
                if controller in options:
                    v1[controller] = (mount_point, root)
    return v1, v2


def _under(mount: tuple[Path, str], path: str) -> Path:
    mount_point, root = mount
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return mount_point / path.lstrip("/")


def _v2_controllers(path: Path) -> set[str]:
    try:
        return set((path / "cgroup.controllers").read_text().split())
    except FileNotFoundError:
        return set()


def create(sandbox_id: str, limits: Limits) -> Cgroups | None:
    """The cgroups of a new sandbox with ``limits`` written; None where this process cannot create any."""
    v1, v2 = _mounts()
    own = _own_paths()
    if v2 is not None and "" in own:
        base = _under(v2, own[""])
        if set(REQUIRED) <= _v2_controllers(base):
            try:
                return _create_v2(base, sandbox_id, limits)
            except OSError as error:
                if error.errno in CANNOT:
                    return None
                raise SandboxError(f"could not set up cgroups (v2) for sandbox {sandbox_id}: {error}") from error
    if all(controller in v1 and controller in own for controller in REQUIRED):
        try:
            return _create_v1(v1, own, sandbox_id, limits)
        except OSError as error:
            if error.errno in CANNOT:
                return None
            raise SandboxError(f"could not set up cgroups (v1) for sandbox {sandbox_id}: {error}") from error
    return None


def _create_v1(mounts: dict[str, tuple[Path, str]], own: dict[str, str], sandbox_id: str, limits: Limits) -> Cgroups:
    paths: dict[str, Path] = {}
    try:
        for controller in WANTED:
            if controller not in mounts or controller not in own:
                continue
            path = _under(mounts[controller], own[controller]) / PARENT / sandbox_id
            path.mkdir(parents=True)
            paths[controller] = path
        _write(paths["memory"] / "memory.limit_in_bytes", str(limits.memory_bytes))
        # memory+swap only exists with swap accounting; equal to the memory limit, the sandbox never swaps.
        if (paths["memory"] / "memory.memsw.limit_in_bytes").exists():
            _write(paths["memory"] / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        _write(paths["pids"] / "pids.max", str(limits.pids))
        if "cpu" in paths:
            _write(paths["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(paths["cpu"] / "cpu.cfs_quota_us", str(max(1000, int(limits.cpus * CPU_PERIOD_US))))
    except OSError as error:
        Cgroups(1, tuple(paths.values())).remove(timeout=0)
        if error.errno in CANNOT:
            raise
        raise SandboxError(f"could not set up cgroups for sandbox {sandbox_id}: {error}") from error
    return Cgroups(1, tuple(paths.values()))


def _enable_controllers(path: Path, controllers: list[str]) -> None:
    _write(path / "cgroup.subtree_control", " ".join(f"+{name}" for name in controllers))


def _create_v2(base: Path, sandbox_id: str, limits: Limits) -> Cgroups:
    controllers = [name for name in WANTED if name in _v2_controllers(base)]
    parent = base / PARENT
    if not parent.is_dir():
        try:
            _enable_controllers(base, controllers)
        except OSError as error:
            if error.errno != errno.EBUSY:
                raise
            # "No internal processes": move this cgroup's processes (the worker's own) into a leaf first.
            leaf = base / WORKER_LEAF
            leaf.mkdir(exist_ok=True)
            for pid in (base / "cgroup.procs").read_text().split():
                try:
                    _write(leaf / "cgroup.procs", pid)
                except ProcessLookupError:
                    pass
            _enable_controllers(base, controllers)
        parent.mkdir(exist_ok=True)
        _enable_controllers(parent, controllers)
    path = parent / sandbox_id
    path.mkdir()
    try:
        _write(path / "memory.max", str(limits.memory_bytes))
        if (path / "memory.swap.max").exists():
            _write(path / "memory.swap.max", "0")
        _write(path / "pids.max", str(limits.pids))
        if (path / "cpu.max").exists():
            _write(path / "cpu.max", f"{max(1000, int(limits.cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
    except OSError as error:
        path.rmdir()
        if error.errno in CANNOT:
            raise
        raise SandboxError(f"could not set up cgroups for sandbox {sandbox_id}: {error}") from error
    return Cgroups(2, (path,))


def enter_command(cgroups: Cgroups | None) -> list[str]:
    """A prefix for a command line that puts the command's process into ``cgroups`` before it execs.

    The shell writes its own pid, then execs the rest, so nothing untrusted runs before the limits apply.
    """
    if cgroups is None:
        return []
    script = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *(str(path / "cgroup.procs") for path in cgroups.paths), "--"]
