"""The small interface every sandbox runner implements (DESIGN principle 5: pluggable backends).

A runner starts one isolated process tree from a :class:`SandboxSpec` and hands back a :class:`Sandbox` to wait
for, kill and remove. What runs inside (normally the agent runtime) talks to its supervisor only over the
channel: a unix socket the supervisor listens on in ``spec.channel_dir``, which the runner makes visible inside
the sandbox at ``/run/marid`` (``MARID_CHANNEL=unix:/run/marid/channel.sock``). The step's files are
``spec.workdir`` (a per-workspace directory on the host), visible inside as ``/workspace``.

Runners label what they start (workspace, sandbox id, the id of the worker process the runner was built for,
and ``spec.labels``) and record it, so the reaper can find sandboxes whose worker died (``list_owned``) and
destroy them.

Two things the supervisor can count on (docs/sandboxing.md):

- Create the listening socket in ``spec.channel_dir`` *before* ``start()``: the runner hands the directory and
  what is in it to the sandbox's own unprivileged uid (a socket is only connectable with write permission on
  it) and mounts it read-only, so the sandbox can connect but cannot leave files there.
- The sandbox's stdout and stderr go to ``spec.channel_dir / OUTPUT_LOG`` (capped by ``file_size_bytes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

CHANNEL_MOUNT = "/run/marid"
CHANNEL_SOCKET = "channel.sock"
WORKSPACE_MOUNT = "/workspace"
OUTPUT_LOG = "output.log"


class SandboxError(RuntimeError):
    """A sandbox could not be started (a missing tool, no way to enforce limits); the message says why."""


class Ending(StrEnum):
    """Why a sandbox ended, as far as its runner knows."""

    EXITED = "exited"  # its main process ended by itself
    TIMEOUT = "timeout"  # the runner stopped it at ``timeout_seconds``
    OUT_OF_MEMORY = "out_of_memory"  # the kernel killed it at ``memory_bytes``
    KILLED = "killed"  # ``kill()`` or ``destroy()``


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use. ``timeout_seconds`` is wall-clock; the supervisor also enforces it."""

    memory_bytes: int = 512 * 1024 * 1024
    pids: int = 128
    cpus: float = 1.0
    timeout_seconds: float = 300.0
    open_files: int = 256
    file_size_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class SandboxSpec:
    workspace_id: str
    # Unique per sandbox; letters, digits, '-' and '_' only (it names cgroups, containers and folders).
    sandbox_id: str
    workdir: Path
    channel_dir: Path
    # What to run inside; None: the runner's agent runtime (``python -m agent_runtime``).
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxRecord:
    """A sandbox a runner knows about (for the reaper)."""

    sandbox_id: str
    workspace_id: str
    worker_id: str
    running: bool
    # Epoch seconds: when it was started, and after when it has outlived its timeout whoever owns it.
    created: float | None = None
    deadline: float | None = None


class Sandbox(Protocol):
    sandbox_id: str

    async def wait(self) -> int:
        """Wait for the sandbox's main process to end; its exit status (137 and the like when killed)."""
        ...

    async def kill(self) -> None:
        """Stop everything in the sandbox now (idempotent)."""
        ...

    async def remove(self) -> None:
        """Release what the runner made for it (cgroups, container); the workdir stays."""
        ...


@runtime_checkable
class ExplainsEnding(Protocol):
    """A sandbox that says why it ended (the local and Docker runners do): ``ending`` is set once ``wait()`` returns."""

    ending: Ending | None


def ending_of(sandbox: Sandbox) -> Ending | None:
    """Why ``sandbox`` ended (after ``wait()``); None when its runner cannot tell."""
    return sandbox.ending if isinstance(sandbox, ExplainsEnding) else None


class Runner(Protocol):
    name: str

    async def start(self, spec: SandboxSpec) -> Sandbox: ...

    async def list_owned(self) -> list[SandboxRecord]:
        """Every sandbox this runner started on this host that still exists (running or not)."""
        ...

    async def destroy(self, sandbox_id: str) -> None:
        """Kill and remove a sandbox by id (the reaper's tool)."""
        ...
