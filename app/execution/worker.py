"""The sandbox side of one worker process, shared by the pipeline engine and the swarm scheduler: one runner
(one uid pool, one view of its sandboxes for the reaper) and one folder for the channels' sockets."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from app.config import Settings
from app.llm.tokens import gateway_base_url
from app.sandbox.configured import runner_for
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.rpc import RpcRegistry
from app.sandbox.runner import Runner
from app.sandbox.supervisor import Supervisor

_runners: dict[str, Runner] = {}
_channels: dict[str, Path] = {}
_lock = asyncio.Lock()


async def worker_runner(settings: Settings, worker_id: str) -> Runner:
    """The configured runner of worker ``worker_id``, built on first use (the local one may build its runtime)."""
    async with _lock:
        runner = _runners.get(worker_id)
        if runner is None:
            runner = _runners[worker_id] = await asyncio.to_thread(runner_for, settings, worker_id=worker_id)
        return runner


def channels_root(worker_id: str) -> Path:
    """Where this worker's sandboxes get their channel folders: right under /tmp, as a unix socket path holds
    at most 107 bytes; passable (o+x) for the sandboxes' uids."""
    root = _channels.get(worker_id)
    if root is None:
        root = _channels[worker_id] = Path(tempfile.mkdtemp(prefix="mch-", dir="/tmp"))
        os.chmod(root, 0o711)
    return root


async def worker_supervisor(settings: Settings, worker_id: str, rpc: RpcRegistry) -> Supervisor:
    """A supervisor on this worker's runner, pointed at the LLM gateway, offering the platform tools ``rpc``."""
    runner = await worker_runner(settings, worker_id)
    endpoint = LlmEndpoint(gateway_base_url(settings))
    return Supervisor(runner, endpoint, channels_root=channels_root(worker_id), rpc=rpc, worker_id=worker_id)
