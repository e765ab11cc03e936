"""Walking the page routes of the app for generated tests (every page, every form)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator

from starlette.routing import BaseRoute, Mount, Route


def page_get_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[str]:
    for route in routes:
        if isinstance(route, Mount):
            if not (prefix + route.path).startswith(("/api", "/static")):
                yield from page_get_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and "GET" in (route.methods or set()):
            # The live stream never ends by itself; tests/workspaces/test_live.py feeds it bad input.
            if not (prefix + route.path).endswith("/events"):
                yield prefix + route.path


def fill(path: str, known: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name in known:
            return known[name]
        return str(uuid.uuid4()) if name.endswith("id") else secrets.token_urlsafe(16)

    return re.sub(r"\{([^}]+)\}", value, path)
