"""The runner the settings ask for, built for one worker process (the supervisor's and the reaper's way in)."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.sandbox.runners.docker import DockerRunner
from app.sandbox.runners.local import LocalRunner
from app.sandbox.runtime_env import ensure_runtime_venv


def local_runtime(settings: Settings) -> Path:
    """The local runner's agent runtime, a venv built from ./agent-runtime and cached (the first build takes some
    seconds, so ``marid dev`` makes it before the workers start)."""
    cache = settings.sandbox_runtime_dir or str(Path(settings.sandbox_state_dir) / "runtime")
    return ensure_runtime_venv(Path(cache))


def local_runner(settings: Settings, *, worker_id: str, runtime: Path | None = None) -> LocalRunner:
    return LocalRunner(
        state_dir=Path(settings.sandbox_state_dir),
        worker_id=worker_id,
        runtime=runtime,
        uid_base=settings.sandbox_uid_base,
        uid_count=settings.sandbox_uid_count,
        # Production never runs a sandbox it cannot bound unless told to (docs/sandboxing.md).
        require_limits=settings.is_production and not settings.sandbox_allow_unlimited,
    )


def docker_runner(settings: Settings, *, worker_id: str) -> DockerRunner:
    return DockerRunner(
        image=settings.sandbox_docker_image,
        state_dir=Path(settings.sandbox_state_dir),
        worker_id=worker_id,
        base_url=settings.sandbox_docker_host,
        uid_base=settings.sandbox_uid_base,
        uid_count=settings.sandbox_uid_count,
    )


def runner_for(settings: Settings, *, worker_id: str) -> LocalRunner | DockerRunner:
    """The configured runner, ready to start steps (blocking: the local one may build its runtime first)."""
    if settings.sandbox_runner == "docker":
        return docker_runner(settings, worker_id=worker_id)
    return local_runner(settings, worker_id=worker_id, runtime=local_runtime(settings))
