"""The JSON API's routes: one Starlette route per path of the registered operations, mounted at ``/api/v1``.

Unknown paths and methods fall through to the app's handlers (``app.web.errors``), which answer every path
under ``/api/`` with the same JSON error body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.api.docs import docs_page, openapi_json
from app.api.operations import REGISTRY, Operation, dispatch

PREFIX = "/api/v1"


def _endpoint(operations: dict[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await dispatch(operations[method], request)

    first = next(iter(operations.values()))
    endpoint.__name__ = first.operation_id
    # The route-table tests read these: which routes are workspace-scoped, and the operations behind them.
    endpoint.workspace_scoped = first.workspace_scoped  # type: ignore[attr-defined]
    endpoint.operations = operations  # type: ignore[attr-defined]
    return endpoint


def api_routes() -> list[BaseRoute]:
    by_path: dict[str, dict[str, Operation]] = {}
    for operation in REGISTRY:
        by_path.setdefault(operation.path, {})[operation.method] = operation
    inner: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
    ]
    for path, operations in by_path.items():
        inner.append(Route(path, _endpoint(operations), methods=sorted(operations)))
    return inner
