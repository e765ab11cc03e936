"""The ``marid`` command: ``dev``, ``web``, ``worker``, ``migrate``, ``keys``, ``run``, ``swarm``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.config import ConfigError, get_settings
from app.embedded.util import MissingDependency
from app.queues import Queue

ALL_QUEUES = "all"


def _cmd_dev(args: argparse.Namespace) -> int:
    from app.cli.dev import run_dev

    return run_dev(port=args.port, data_dir=args.data_dir)


def _cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from app.live.sse import tune_gc_for_streaming

    get_settings().check()
    # Thousands of open SSE streams make CPython's default GC thresholds stall every stream (bench/sse.py).
    tune_gc_for_streaming()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        log_level=get_settings().log_level,
        access_log=False,
        # Open SSE streams never finish on their own: give requests 3 s to end, then close the rest
        # (browsers reconnect and resume from Last-Event-ID).
        timeout_graceful_shutdown=3,
    )
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    queues = list(Queue) if args.queue == ALL_QUEUES else [Queue(args.queue)]
    if args.check:
        from worker.run import check

        return check(queues)

    from worker.run import run

    return run(queues)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from app.cli.keys import run_upgrade_legacy
    from app.tenants.migrate import run_migrate

    settings = get_settings()
    settings.check()
    keyring = settings.keyring()
    code = asyncio.run(run_migrate(settings.database_url, keyring=keyring, concurrency=args.concurrency))
    return code or asyncio.run(run_upgrade_legacy(settings, keyring))


def _cmd_keys(args: argparse.Namespace) -> int:
    from app.cli import keys

    if args.action == "new":
        return keys.print_new_key()
    settings = get_settings()
    settings.check()
    keyring = settings.keyring()
    if args.action == "status":
        return asyncio.run(keys.run_status(settings, keyring))
    return asyncio.run(keys.run_rotate(settings, keyring, quiet=args.quiet))


def _cmd_swarm(args: argparse.Namespace) -> int:
    from app.cli import swarm

    return swarm.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marid", description="Marid: teams of autonomous AI agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run everything on this machine (private Postgres and Redis)")
    dev.add_argument("--port", type=int, default=8000, help="web port (default 8000)")
    dev.add_argument("--data-dir", default=".marid", help="where the private data lives (default ./.marid)")
    dev.set_defaults(handler=_cmd_dev)

    web = commands.add_parser("web", help="serve the web app (MARID_DATABASE_URL, MARID_REDIS_URL)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.set_defaults(handler=_cmd_web)

    worker = commands.add_parser("worker", help="run a background worker (MARID_DATABASE_URL, MARID_REDIS_URL)")
    worker.add_argument(
        "--queue",
        choices=[*(queue.value for queue in Queue), ALL_QUEUES],
        default=ALL_QUEUES,
        help="the queue to serve: short (mail, nudges), long (agent work) or all (the default: both, in this"
        " one process, each with its own job slots)",
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if a worker of the queue is running (for healthchecks)"
    )
    worker.set_defaults(handler=_cmd_worker)

    migrate = commands.add_parser("migrate", help="upgrade the platform schema, then every workspace")
    migrate.add_argument("--concurrency", type=int, default=None, help="workspaces upgraded at once")
    migrate.set_defaults(handler=_cmd_migrate)

    keys = commands.add_parser("keys", help="master keys: new, status, rotate")
    actions = keys.add_subparsers(dest="action", required=True)
    actions.add_parser("new", help="print a fresh master key for MARID_ENCRYPTION_KEYS")
    actions.add_parser("status", help="how many secrets each configured master key protects")
    rotate = actions.add_parser("rotate", help="move every secret onto the primary key (safe while serving)")
    rotate.add_argument("--quiet", action="store_true", help="no progress bars")
    keys.set_defaults(handler=_cmd_keys)

    from app.cli import run

    run.add_parser(commands)

    from app.cli.swarm import add_parser as add_swarm_parser

    add_swarm_parser(commands)
    commands.choices["swarm"].set_defaults(handler=_cmd_swarm)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ConfigError, MissingDependency) as error:
        print(f"marid: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
