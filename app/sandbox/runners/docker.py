"""The Docker runner: one hardened container per sandbox, through the Docker SDK.

Unlike DjinnBot's agent containers (CAP_SYS_ADMIN, seccomp and AppArmor off, on the network that reaches
Redis, provider keys in the environment), a Marid sandbox container has no network at all, no capabilities,
no-new-privileges, Docker's default seccomp profile, a read-only root with a private /tmp, a uid of its own,
memory (no swap), pids and CPU limits and rlimits; it sees the step's directory at /workspace and the channel
directory, read-only, at /run/marid, and nothing else of the host. Its labels say whose it is (workspace,
sandbox, worker) and until when it may run, so the reaper can find it after its worker died.

The SDK blocks, so every call runs in a thread; waiting for a container has a pool of its own, so a handful of
hour-long steps never starve the default executor.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import LogConfig, Ulimit

from app.sandbox import hostpaths, stepdirs
from app.sandbox.runner import (
    CHANNEL_MOUNT,
    CHANNEL_SOCKET,
    OUTPUT_LOG,
    WORKSPACE_MOUNT,
    Ending,
    SandboxError,
    SandboxRecord,
    SandboxSpec,
)
from app.sandbox.runtime_env import RUNTIME_MOUNT
from app.sandbox.uids import UidPool

LABEL = "marid.sandbox"
LABEL_WORKSPACE = "marid.workspace"
LABEL_WORKER = "marid.worker"
LABEL_CREATED = "marid.created"
LABEL_DEADLINE = "marid.deadline"
LABEL_UID = "marid.uid"
LABEL_WORKDIR = "marid.workdir"
LABEL_CHANNEL = "marid.channel"
BASE_ENV = {
    "PATH": f"{RUNTIME_MOUNT}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": WORKSPACE_MOUNT,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    # Where the agent runtime finds its channel and its files (the mounts below; a step cannot move them).
    "MARID_CHANNEL": f"unix:{CHANNEL_MOUNT}/{CHANNEL_SOCKET}",
    "MARID_WORKSPACE": WORKSPACE_MOUNT,
}
DEADLINE_GRACE = 60.0


def container_name(sandbox_id: str) -> str:
    return f"marid-sandbox-{sandbox_id}"


def _ignore_gone(call: Any, *args: Any, **kwargs: Any) -> None:
    """Run a container call that may find the container stopped (409) or removed (404) already: both fine."""
    try:
        call(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code != 409:
            raise


class DockerSandbox:
    def __init__(self, runner: DockerRunner, spec: SandboxSpec, container: Any, uid: int | None) -> None:
        self.sandbox_id = spec.sandbox_id
        self.spec = spec
        self.ending: Ending | None = None
        self.returncode: int | None = None
        self.container = container
        self._runner = runner
        self._uid = uid
        self._removed = False
        self._waiting: asyncio.Future[int] | None = None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(spec.limits.timeout_seconds, self._expire)
        self._expiry: asyncio.Task[None] | None = None

    def _expire(self) -> None:
        if self.returncode is None:
            self.ending = Ending.TIMEOUT
            self._expiry = asyncio.ensure_future(self._kill())

    async def _kill(self) -> None:
        await asyncio.to_thread(_ignore_gone, self.container.kill)

    def _wait_blocking(self) -> int:
        try:
            status = int(self.container.wait()["StatusCode"])
        except docker.errors.NotFound:
            return 137  # removed under us (by destroy): it was killed
        try:
            self.container.reload()
            oom = bool(self.container.attrs["State"].get("OOMKilled"))
        except docker.errors.NotFound:
            oom = False
        if self.ending is None:
            self.ending = Ending.OUT_OF_MEMORY if oom else Ending.EXITED
        self._copy_output()
        return status

    def _copy_output(self) -> None:
        """The container's stdout and stderr into the channel directory, as the local runner leaves them."""
        try:
            data = self.container.logs(stdout=True, stderr=True)
        except docker.errors.NotFound:
            return
        path = self.spec.channel_dir / OUTPUT_LOG
        with open(path, "ab") as file:
            file.write(data[-self.spec.limits.file_size_bytes :])

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        if self._waiting is None:
            loop = asyncio.get_running_loop()
            self._waiting = loop.run_in_executor(self._runner._waiters, self._wait_blocking)
        code = await asyncio.shield(self._waiting)
        self._timer.cancel()
        self.returncode = code
        return code

    async def kill(self) -> None:
        if self.ending is None and self.returncode is None:
            self.ending = Ending.KILLED
        await self._kill()

    async def remove(self) -> None:
        if self._removed:
            return
        await self.kill()
        await self.wait()
        self._removed = True
        await asyncio.to_thread(self._runner._release, self.container, self.spec.sandbox_id, self._uid)
        self._runner._live.pop(self.sandbox_id, None)


class DockerRunner:
    """Starts sandboxes as containers of ``image`` (``images.ensure_runtime_image``) on a Docker engine.

    ``base_url``: the engine (``unix:///path/docker.sock``); empty for DOCKER_HOST or the default socket.
    As root, each container runs as a uid of its own from the pool (its step directory is lent to that uid);
    otherwise as this process's uid.
    """

    name = "docker"

    def __init__(
        self,
        *,
        image: str,
        state_dir: Path,
        worker_id: str,
        base_url: str = "",
        uid_base: int = 200_000,
        uid_count: int = 65_536,
    ) -> None:
        self.image = image
        self.worker_id = worker_id
        self.client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        self.uids = UidPool(state_dir.resolve() / "uids", base=uid_base, count=uid_count)
        self._live: dict[str, DockerSandbox] = {}
        self._waiters = ThreadPoolExecutor(max_workers=64, thread_name_prefix="marid-docker-wait")

    async def start(self, spec: SandboxSpec) -> DockerSandbox:
        stepdirs.check_name("sandbox id", spec.sandbox_id)
        for name, value in spec.env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise SandboxError(f"invalid environment variable name or value: {name!r}")
        container, uid = await asyncio.to_thread(self._create, spec)
        sandbox = DockerSandbox(self, spec, container, uid)
        self._live[spec.sandbox_id] = sandbox
        return sandbox

    def _create(self, spec: SandboxSpec) -> tuple[Any, int | None]:
        root = os.geteuid() == 0
        uid = self.uids.allocate(spec.sandbox_id) if root else None
        user = uid if uid is not None else os.getuid()
        now = time.time()
        limits = spec.limits
        labels = {
            **spec.labels,
            LABEL: spec.sandbox_id,
            LABEL_WORKSPACE: spec.workspace_id,
            LABEL_WORKER: self.worker_id,
            LABEL_CREATED: f"{now:.3f}",
            LABEL_DEADLINE: f"{now + limits.timeout_seconds + DEADLINE_GRACE:.3f}",
            LABEL_WORKDIR: str(spec.workdir),
            LABEL_CHANNEL: str(spec.channel_dir),
            **({LABEL_UID: str(uid)} if uid is not None else {}),
        }
        try:
            if uid is not None:
                stepdirs.lend(spec.workdir, uid, uid)
                hostpaths.lend_channel(spec.channel_dir, uid, uid)
            container = self.client.containers.create(
                self.image,
                command=list(spec.command) if spec.command is not None else None,
                name=container_name(spec.sandbox_id),
                hostname="sandbox",
                user=f"{user}:{user}",
                environment={**BASE_ENV, **spec.env},
                working_dir=WORKSPACE_MOUNT,
                labels=labels,
                network_mode="none",
                ipc_mode="private",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                read_only=True,
                # An empty read-only /sys over Docker's (the host kernel's devices and settings, read-only).
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.memory_bytes}", "/sys": "ro,nosuid,nodev,noexec"},
                volumes={
                    str(spec.workdir): {"bind": WORKSPACE_MOUNT, "mode": "rw"},
                    str(spec.channel_dir): {"bind": CHANNEL_MOUNT, "mode": "ro"},
                },
                mem_limit=limits.memory_bytes,
                memswap_limit=limits.memory_bytes,  # equal: no swap
                pids_limit=limits.pids,
                nano_cpus=int(limits.cpus * 1e9),
                ulimits=[
                    Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
                    Ulimit(name="fsize", soft=limits.file_size_bytes, hard=limits.file_size_bytes),
                    Ulimit(name="core", soft=0, hard=0),
                ],
                # A tiny init as pid 1 reaps what a fork bomb leaves behind and passes the exit status on.
                init=True,
                # The daemon keeps stdout/stderr; bounded like any file the sandbox writes.
                log_config=LogConfig(type="json-file", config={"max-size": str(limits.file_size_bytes)}),
                auto_remove=False,  # the reaper and remove() clean up, after reading the exit status
                detach=True,
            )
        except docker.errors.ImageNotFound as error:
            self._release(None, spec.sandbox_id, uid, spec.workdir, spec.channel_dir)
            raise SandboxError(f"no image {self.image} on the Docker engine: build it (docs/sandboxing.md)") from error
        except (docker.errors.APIError, OSError) as error:
            self._release(None, spec.sandbox_id, uid, spec.workdir, spec.channel_dir)
            raise SandboxError(f"could not create sandbox {spec.sandbox_id}: {error}") from error
        try:
            container.start()
        except docker.errors.APIError as error:
            self._release(container, spec.sandbox_id, uid)
            raise SandboxError(f"could not start sandbox {spec.sandbox_id}: {error}") from error
        return container, uid

    def _release(
        self,
        container: Any,
        sandbox_id: str,
        uid: int | None,
        workdir: Path | None = None,
        channel_dir: Path | None = None,
    ) -> None:
        """Remove the container, give its directories back, then free its uid."""
        if container is not None:
            labels = container.labels
            workdir = workdir or Path(labels[LABEL_WORKDIR])
            channel_dir = channel_dir or Path(labels[LABEL_CHANNEL])
            _ignore_gone(container.remove, force=True)
        if uid is not None:
            if workdir is not None:
                stepdirs.reclaim(workdir)
            if channel_dir is not None:
                hostpaths.reclaim_channel(channel_dir)
            self.uids.release(uid, sandbox_id)

    def _owned(self) -> list[Any]:
        return list(self.client.containers.list(all=True, filters={"label": LABEL}))

    async def list_owned(self) -> list[SandboxRecord]:
        containers = await asyncio.to_thread(self._owned)
        records = []
        for container in containers:
            labels = container.labels
            records.append(
                SandboxRecord(
                    sandbox_id=labels[LABEL],
                    workspace_id=labels.get(LABEL_WORKSPACE, ""),
                    worker_id=labels.get(LABEL_WORKER, ""),
                    running=container.status in ("created", "running", "restarting"),
                    created=float(labels[LABEL_CREATED]) if LABEL_CREATED in labels else None,
                    deadline=float(labels[LABEL_DEADLINE]) if LABEL_DEADLINE in labels else None,
                )
            )
        return records

    async def destroy(self, sandbox_id: str) -> None:
        live = self._live.get(sandbox_id)
        if live is not None:
            await live.remove()
            return
        await asyncio.to_thread(self._destroy, sandbox_id)

    def _destroy(self, sandbox_id: str) -> None:
        try:
            container = self.client.containers.get(container_name(sandbox_id))
        except docker.errors.NotFound:
            return
        if container.labels.get(LABEL) != sandbox_id:
            return  # a container of that name that Marid did not label is not ours to remove
        uid_label = container.labels.get(LABEL_UID)
        self._release(container, sandbox_id, int(uid_label) if uid_label else None)

    def close(self) -> None:
        self._waiters.shutdown(wait=False, cancel_futures=True)
        self.client.close()
