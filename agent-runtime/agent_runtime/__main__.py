"""``python -m agent_runtime`` / ``marid-agent-runtime``: what a sandbox runs.

Environment: ``MARID_CHANNEL`` (``unix:/run/marid/channel.sock`` or ``stdio``), ``MARID_WORKSPACE`` (the root the
file tools are confined to; default ``/workspace``, where runners mount the step's files).
"""

from __future__ import annotations

import asyncio
import os
import sys

from agent_runtime.channel import Channel, ChannelError
from agent_runtime.runtime import Runtime, workspace_root
from agent_runtime.workspace import Workspace


async def _serve(address: str) -> int:
    root = workspace_root()
    if not root.is_dir():
        print(f"marid-agent-runtime: the workspace {root} is not a folder", file=sys.stderr)
        return 2
    try:
        channel = await Channel.connect(address)
    except (ChannelError, OSError) as error:
        print(f"marid-agent-runtime: cannot open the channel {address}: {error}", file=sys.stderr)
        return 2
    return await Runtime(channel, Workspace(root)).serve()


def main(argv: list[str] | None = None) -> int:
    address = os.environ.get("MARID_CHANNEL", "")
    if not address:
        print("marid-agent-runtime: no channel given (set MARID_CHANNEL=unix:/path or stdio)", file=sys.stderr)
        return 2
    return asyncio.run(_serve(address))


if __name__ == "__main__":
    sys.exit(main())
