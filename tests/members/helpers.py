"""Helpers for member, settings and audit tests: people and workspaces made directly in the database, an HTTP
client signed in through the real login form (all from tests.helpers), and a live server whose mail links
point at itself."""

from __future__ import annotations

from contextlib import AbstractContextManager

from tests.helpers import (
    add_member,
    count,
    csrf_of,
    log_in,
    make_user,
    make_workspace,
    post,
    random_ip,
    role_of,
)
from tests.servers import web_server

__all__ = [
    "add_member",
    "count",
    "csrf_of",
    "live_server",
    "log_in",
    "make_user",
    "make_workspace",
    "post",
    "random_ip",
    "role_of",
]


def live_server(env: dict[str, str], timeout: float = 30) -> AbstractContextManager[str]:
    """`marid web` on a free port whose mailed links point at itself (see tests.servers.web_server)."""
    return web_server(env, timeout)
