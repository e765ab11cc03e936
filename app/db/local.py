"""No TLS attempt on connections that never leave the host.

asyncpg's default ``sslmode`` is ``prefer``: every new connection first asks the server for TLS (an
``SSLContext`` and a round trip; measured in a dashboard request's profile while pools churned). Over a
loopback address or a unix socket TLS protects nothing, so there the attempt is skipped. Any other host keeps
asyncpg's default, and a URL that says ``ssl=`` or ``sslmode=`` itself is always left as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_local(url: URL) -> bool:
    """Whether ``url`` reaches PostgreSQL over a loopback address or a unix socket."""
    host = url.query.get("host") or url.host  # ``?host=/run/postgresql`` names a socket directory
    if isinstance(host, tuple):  # a multi-host URL: local only if every host is
        return all(_local_host(one) for one in host)
    return _local_host(host)


def _local_host(host: str | None) -> bool:
    return not host or host.startswith("/") or host.lower() in LOOPBACK


def local_connect_args(url: URL) -> dict[str, Any]:
    """asyncpg connect arguments for ``url``: ``ssl=False`` when it is local and names no TLS mode itself."""
    if url.query.keys() & {"ssl", "sslmode"} or not is_local(url):
        return {}
    return {"ssl": False}
