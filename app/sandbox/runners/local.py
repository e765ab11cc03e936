"""The local runner, the default for ``marid dev``: bubblewrap as an unprivileged uid, limited by cgroups.

One sandbox is one command line, each link of which execs the next (so the sandbox is a single pid to the
worker): ``sh`` puts itself into the sandbox's cgroups, ``prlimit`` lowers the rlimits, ``setpriv`` drops to
the sandbox's own uid with no capabilities and no new privileges, and ``bwrap`` makes fresh user, pid, mount,
network, ipc, uts and cgroup namespaces around a read-only view of /usr, a minimal /etc, a private /tmp, the
step's directory at /workspace and the channel directory, read-only, at /run/marid. Nothing else of the host
is there: no /home, /root, /sys, /run, /var, host /proc, sockets or other steps' files. ``--die-with-parent``
takes the sandbox down with its worker, and killing the bubblewrap process ends the pid namespace, so
everything in it. docs/sandboxing.md has the whole picture.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.sandbox import cgroups as cgroup_limits
from app.sandbox import hostpaths, stepdirs
from app.sandbox.cgroups import Cgroups
from app.sandbox.records import LocalRecord, RecordStore, alive, start_time
from app.sandbox.runner import (
    CHANNEL_MOUNT,
    CHANNEL_SOCKET,
    OUTPUT_LOG,
    WORKSPACE_MOUNT,
    Ending,
    Limits,
    SandboxError,
    SandboxRecord,
    SandboxSpec,
)
from app.sandbox.runtime_env import RUNTIME_COMMAND, RUNTIME_MOUNT
from app.sandbox.uids import UidPool

log = logging.getLogger(__name__)

INNER_UID = 1000
BASE_ENV = {
    "PATH": f"{RUNTIME_MOUNT}/bin:/usr/bin:/bin",
    "HOME": WORKSPACE_MOUNT,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    # Where the agent runtime finds its channel and its files (the mounts below; a step cannot move them).
    "MARID_CHANNEL": f"unix:{CHANNEL_MOUNT}/{CHANNEL_SOCKET}",
    "MARID_WORKSPACE": WORKSPACE_MOUNT,
}
# /etc inside: only what programs need to name users and hosts; the host's files (shadow, ssl keys) stay out.
ETC_FILES = {
    "passwd": (
        "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
        f"sandbox:x:{INNER_UID}:{INNER_UID}:sandbox:{WORKSPACE_MOUNT}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "group": f"root:x:0:\nsandbox:x:{INNER_UID}:\nnogroup:x:65534:\n",
    "hostname": "sandbox\n",
    "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    # Mount points for the two host entries bound over them (the dynamic loader's cache; Debian's alternatives
    # symlinks, which /usr/bin/awk and friends go through).
    "ld.so.cache": "",
}
# Seconds past its timeout after which a sandbox is the reaper's whoever owns it.
DEADLINE_GRACE = 60.0


def bwrap_options(
    *,
    etc: Path,
    workdir: Path,
    channel_dir: Path,
    runtime: Path | None,
    env: Mapping[str, str],
    tmp_bytes: int,
) -> list[str]:
    """bubblewrap's options for one sandbox: everything but the command."""
    argv = [
        "--unshare-all",
        "--unshare-user",  # --unshare-all only tries; without a user namespace nothing below would hold
        "--disable-userns",  # and no nested one: less kernel surface for the code inside
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into a terminal it might share
        "--cap-drop", "ALL",
        "--uid", str(INNER_UID),
        "--gid", str(INNER_UID),
        "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
        # Whatever was installed by hand on the host (other Pythons, tools) stays out.
        "--tmpfs", "/usr/local",
        "--remount-ro", "/usr/local",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--ro-bind", str(etc), "/etc",
        "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
        "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(tmp_bytes),
        "--tmpfs", "/tmp",
        "--symlink", "../tmp", "/var/tmp",
        "--bind", str(workdir), WORKSPACE_MOUNT,
        "--ro-bind", str(channel_dir), CHANNEL_MOUNT,
    ]  # fmt: skip
    if runtime is not None:
        argv += ["--ro-bind", str(runtime), RUNTIME_MOUNT]
    # Last: the root bubblewrap built (a tmpfs holding the mount points) becomes read-only too.
    argv += ["--remount-ro", "/", "--chdir", WORKSPACE_MOUNT, "--clearenv"]
    for name, value in {**BASE_ENV, **env}.items():
        argv += ["--setenv", name, value]
    return argv


def options_file(options: Sequence[str]) -> int:
    """A memory file holding ``options`` for ``bwrap --args FD``: they (the environment's values among them) stay
    out of the process list, where any user of the host could read them."""
    fd = os.memfd_create("bwrap-options", 0)  # inheritable: bubblewrap reads it after three execs
    os.write(fd, "".join(f"{option}\0" for option in options).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def rlimits_command(limits: Limits, *, own_uid: bool, cgroups: bool) -> list[str]:
    """``prlimit`` lowering the sandbox's rlimits (soft = hard: the code inside cannot raise them again)."""
    pairs = {
        "nofile": limits.open_files,
        "fsize": limits.file_size_bytes,
        "core": 0,
    }
    # RLIMIT_NPROC counts every process of the uid: only meaningful when the sandbox has a uid of its own.
    if own_uid:
        pairs["nproc"] = limits.pids
    # Without a memory cgroup, address space is the only memory bound left (coarse: it counts reservations).
    if not cgroups:
        pairs["as"] = limits.memory_bytes
    return ["prlimit", *(f"--{name}={value}:{value}" for name, value in pairs.items()), "--"]


def _validate_env(env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise SandboxError(f"invalid environment variable name or value: {name!r}")


class LocalSandbox:
    def __init__(
        self,
        runner: LocalRunner,
        spec: SandboxSpec,
        process: asyncio.subprocess.Process,
        cgroups: Cgroups | None,
        uid: int | None,
    ) -> None:
        self.sandbox_id = spec.sandbox_id
        self.spec = spec
        self.ending: Ending | None = None
        self.returncode: int | None = None
        self._runner = runner
        self._process = process
        self._cgroups = cgroups
        self._uid = uid
        self._removed = False
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(spec.limits.timeout_seconds, self._expire)

    def _expire(self) -> None:
        if self.returncode is None and self._process.returncode is None:
            self.ending = Ending.TIMEOUT
            self._kill_now()

    def _kill_now(self) -> None:
        if self._process.returncode is None:
            try:
                os.kill(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._cgroups is not None:
            self._cgroups.kill()

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        code = await self._process.wait()
        self._timer.cancel()
        # Killed itself (bubblewrap, by us): report it the way a shell would, 128 + the signal.
        code = 128 - code if code < 0 else code
        if self.ending is None:
            oom = self._cgroups is not None and code == 128 + signal.SIGKILL and self._cgroups.oom_kills() > 0
            self.ending = Ending.OUT_OF_MEMORY if oom else Ending.EXITED
        self.returncode = code
        return code

    async def kill(self) -> None:
        if self.ending is None and self._process.returncode is None:
            self.ending = Ending.KILLED
        self._kill_now()

    async def remove(self) -> None:
        if self._removed:
            return
        await self.kill()
        await self.wait()
        self._removed = True
        spec = self.spec
        await asyncio.to_thread(
            self._runner._release, spec.sandbox_id, self._cgroups, self._uid, spec.workdir, spec.channel_dir
        )
        self._runner._live.pop(self.sandbox_id, None)


class LocalRunner:
    """Starts sandboxes with bubblewrap on this host. Build one per worker process.

    ``runtime`` is the agent runtime's venv (``runtime_env.ensure_runtime_venv``), needed unless every spec
    names its own command. ``require_limits``: refuse to start when no cgroup can be written (production)
    rather than run with rlimits only (a warning, in development).
    """

    name = "local"

    def __init__(
        self,
        *,
        state_dir: Path,
        worker_id: str,
        runtime: Path | None = None,
        uid_base: int = 200_000,
        uid_count: int = 65_536,
        require_limits: bool = False,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.worker_id = worker_id
        self.runtime = runtime
        self.require_limits = require_limits
        self.records = RecordStore(self.state_dir / "local")
        self.uids = UidPool(self.state_dir / "uids", base=uid_base, count=uid_count)
        self.etc = self.state_dir / "etc"
        self._live: dict[str, LocalSandbox] = {}
        self._warned = False

    def _write_etc(self) -> None:
        # Passable for the sandboxes' uids (bubblewrap resolves /etc's source as them), not listable.
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o711)
        self.etc.mkdir(exist_ok=True)
        os.chmod(self.etc, 0o755)
        (self.etc / "alternatives").mkdir(exist_ok=True)
        for name, text in ETC_FILES.items():
            path = self.etc / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            os.chmod(path, 0o644)

    async def start(self, spec: SandboxSpec) -> LocalSandbox:
        stepdirs.check_name("sandbox id", spec.sandbox_id)
        _validate_env(spec.env)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError("bubblewrap is not installed: apt-get install bubblewrap (./marid dev does it as root)")
        command = list(spec.command) if spec.command is not None else None
        if command is None:
            if self.runtime is None:
                raise SandboxError("the local runner has no agent runtime (runtime_env.ensure_runtime_venv)")
            command = list(RUNTIME_COMMAND)
        if self.records.load(spec.sandbox_id) is not None or spec.sandbox_id in self._live:
            raise SandboxError(f"sandbox {spec.sandbox_id} exists already")
        prepared = await asyncio.to_thread(self._prepare, spec, bwrap, command)
        argv, found, uid, output, options = prepared
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                # The tools' own environment; bubblewrap clears it for the sandbox (--clearenv).
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                # Out of the worker's process group: a Ctrl-C meant for the worker is the worker's to handle.
                start_new_session=True,
                pass_fds=(options,),
            )
        except OSError as error:
            await asyncio.to_thread(self._release, spec.sandbox_id, found, uid, spec.workdir, spec.channel_dir)
            raise SandboxError(f"could not start sandbox {spec.sandbox_id}: {error}") from error
        finally:
            os.close(output)
            os.close(options)
        sandbox = LocalSandbox(self, spec, process, found, uid)
        self._live[spec.sandbox_id] = sandbox
        now = time.time()
        self.records.save(
            LocalRecord(
                sandbox_id=spec.sandbox_id,
                workspace_id=spec.workspace_id,
                worker_id=self.worker_id,
                pid=process.pid,
                # Read after the fact, but the pid cannot be recycled before we reap it.
                pid_started=start_time(process.pid) or 0,
                uid=uid,
                workdir=str(spec.workdir),
                channel_dir=str(spec.channel_dir),
                deadline=now + spec.limits.timeout_seconds + DEADLINE_GRACE,
                created=now,
                cgroups=found.to_record() if found is not None else None,
                labels=dict(spec.labels),
            )
        )
        return sandbox

    def _prepare(
        self, spec: SandboxSpec, bwrap: str, command: list[str]
    ) -> tuple[list[str], Cgroups | None, int | None, int, int]:
        """The blocking part of ``start`` (run in a thread): uid, directories, cgroups, the output file."""
        root = os.geteuid() == 0
        self._write_etc()
        uid = self.uids.allocate(spec.sandbox_id) if root else None
        found: Cgroups | None = None
        try:
            if uid is not None:
                for path in (spec.workdir, spec.channel_dir, self.etc, *([self.runtime] if self.runtime else [])):
                    hostpaths.ensure_reachable(path)
                stepdirs.lend(spec.workdir, uid, uid)
                hostpaths.lend_channel(spec.channel_dir, uid, uid)
            found = cgroup_limits.create(spec.sandbox_id, spec.limits)
            if found is None:
                self._no_cgroups()
            output = os.open(
                spec.channel_dir / OUTPUT_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
        except BaseException:
            self._release(spec.sandbox_id, found, uid, spec.workdir, spec.channel_dir)
            raise
        wrapper = cgroup_limits.enter_command(found) + rlimits_command(
            spec.limits, own_uid=uid is not None, cgroups=found is not None
        )
        if uid is not None:
            wrapper += [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        options = options_file(
            bwrap_options(
                etc=self.etc,
                workdir=spec.workdir,
                channel_dir=spec.channel_dir,
                runtime=self.runtime,
                env=spec.env,
                tmp_bytes=spec.limits.memory_bytes,
            )
        )
        return [*wrapper, bwrap, "--args", str(options), "--", *command], found, uid, output, options

    def _no_cgroups(self) -> None:
        message = (
            "no writable cgroup (v1 or v2) for sandbox limits: memory is bounded by RLIMIT_AS only and pids not at all"
        )
        if self.require_limits:
            raise SandboxError(message + "; refused (set MARID_SANDBOX_ALLOW_UNLIMITED=1 to run anyway)")
        if not self._warned:
            log.warning("%s (development only; see docs/sandboxing.md)", message)
            self._warned = True

    async def list_owned(self) -> list[SandboxRecord]:
        return [
            SandboxRecord(
                sandbox_id=record.sandbox_id,
                workspace_id=record.workspace_id,
                worker_id=record.worker_id,
                running=alive(record.pid, record.pid_started),
                deadline=record.deadline,
                created=record.created,
            )
            for record in self.records.all()
        ]

    async def destroy(self, sandbox_id: str) -> None:
        live = self._live.get(sandbox_id)
        if live is not None:
            await live.remove()
            return
        record = self.records.load(sandbox_id)
        if record is None:
            return
        if alive(record.pid, record.pid_started):
            try:
                os.kill(record.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        found = Cgroups.from_record(record.cgroups) if record.cgroups else None
        if found is not None:
            await asyncio.to_thread(found.kill)
        await asyncio.to_thread(
            self._release, sandbox_id, found, record.uid, Path(record.workdir), Path(record.channel_dir)
        )

    def _release(
        self, sandbox_id: str, found: Cgroups | None, uid: int | None, workdir: Path, channel_dir: Path
    ) -> None:
        """Everything but the files: cgroups, the uid (after its files are the platform's again), the record."""
        if found is not None and not found.remove():
            log.warning("sandbox %s: cgroups still busy, left for the reaper: %s", sandbox_id, found.paths)
            return
        if uid is not None:
            stepdirs.reclaim(workdir)
            hostpaths.reclaim_channel(channel_dir)
        if uid is not None:
            self.uids.release(uid, sandbox_id)
        self.records.delete(sandbox_id)
