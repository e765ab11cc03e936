"""A private PostgreSQL cluster in a folder, run as a child process on a loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from app.embedded.util import (
    MissingDependency,
    child_command,
    chown_tree,
    free_port,
    stop_process,
    unprivileged_user,
    wait_until,
)

INSTALL_HINT = "PostgreSQL is not installed: run `sudo apt-get install postgresql` (or `./marid dev` as root)."


def find_bindir() -> Path:
    """Debian keeps server binaries in /usr/lib/postgresql/<major>/bin; take the newest."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]), reverse=True
    )
    if candidates:
        return Path(candidates[0]).parent
    on_path = shutil.which("postgres") or shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    raise MissingDependency(INSTALL_HINT)


class EmbeddedPostgres:
    """``start()`` initialises the cluster on first use and reuses it afterwards; ``stop()`` shuts it down.

    The cluster listens on 127.0.0.1 only and has no unix socket. It trusts the superuser ``postgres`` and
    the application role (which ``postgres`` creates: LOGIN CREATEROLE, not superuser, owner of its
    database); every other role, the workspaces' login roles, must prove its password (SCRAM), as in
    production.
    """

    APP_ROLE = "marid"

    def __init__(
        self, data_dir: Path, *, port: int | None = None, durable: bool = True, bindir: Path | None = None
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self.bindir = bindir or find_bindir()
        self.user = unprivileged_user()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / "postgres.log"

    def _run_as_owner(self, argv: list[str]) -> None:
        subprocess.run(
            child_command(argv, user=self.user), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            chown_tree(self.data_dir, self.user)
            self._check_reachable()
        self._run_as_owner(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )  # fmt: skip

    def _check_reachable(self) -> None:
        """As root, the server user must be able to reach the data folder through every parent.

        Where a parent folder is closed to others (``/root`` typically), grant only the traverse bit (o+x:
        enter, not list), as PostgreSQL's own packaging expects, and say so.
        """
        if self._reachable():
            return
        for parent in reversed(self.data_dir.parents):
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(parent, mode | stat.S_IXOTH)
                print(f"marid: allowed the '{self.user}' user to traverse {parent} (chmod o+x)", file=sys.stderr)
        if not self._reachable():
            raise MissingDependency(
                f"The '{self.user}' user cannot reach {self.data_dir}: put the project somewhere world-traversable."
            )

    def _reachable(self) -> bool:
        probe = child_command(["test", "-w", str(self.data_dir)], user=self.user)
        return subprocess.run(probe, check=False).returncode == 0

    def _write_hba(self) -> None:
        # Rewritten at every start, so clusters made by older releases (trust for all) get the same rules.
        (self.data_dir / "pg_hba.conf").write_text(
            "# Written by Marid at every start (app/embedded/postgres.py).\n"
            "host all postgres 127.0.0.1/32 trust\n"
            f"host all {self.APP_ROLE} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )

    def start(self, timeout: float = 30) -> None:
        if not self.initialised():
            self.init()
        self._write_hba()
        options = [
            "-c", f"port={self.port}",
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "max_locks_per_transaction=256",
        ]  # fmt: skip
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.log_path, "ab")
        if self.user is not None:
            chown_tree(self.data_dir, self.user)
        self.process = subprocess.Popen(
            child_command([str(self.bindir / "postgres"), "-D", str(self.data_dir), *options], user=self.user),
            stdout=log,
            stderr=log,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops us last.
            process_group=0,
        )
        log.close()
        isready = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        wait_until(
            lambda: subprocess.run(isready, check=False).returncode == 0,
            timeout=timeout,
            what=f"PostgreSQL (log: {self.log_path})",
            process=self.process,
        )

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, write a checkpoint, exit.
            stop_process(self.process)
            self.process = None

    def superuser_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def app_url(self, database: str = "marid", role: str = APP_ROLE) -> str:
        return f"postgresql+asyncpg://{role}@127.0.0.1:{self.port}/{database}"

    async def ensure_database(self, database: str = "marid", role: str = APP_ROLE) -> str:
        """Create the application role and database if missing; returns the SQLAlchemy URL."""
        import asyncpg

        connection = await asyncpg.connect(self.superuser_dsn())
        try:
            if not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await connection.execute(f'CREATE ROLE "{role}" LOGIN CREATEROLE')
            if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await connection.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
        finally:
            await connection.close()
        return self.app_url(database, role)
