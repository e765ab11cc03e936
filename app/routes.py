"""Every route of the web process, in one list: each domain's pages, the live stream, and the JSON API (whose
operations each domain's ``api`` module registers when imported here).

The composition root: the only module besides ``app.main`` that imports every domain.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

# Importing a domain's ``api`` module registers its operations (``app.api.operations.REGISTRY``).
from app import health
from app.account import api as account_api  # noqa: F401
from app.account import pages as account_pages
from app.agents import api as agents_api  # noqa: F401
from app.agents import pages as agent_pages
from app.api import routes as api_routes
from app.apikeys import api as apikeys_api  # noqa: F401
from app.apikeys import pages as apikey_pages
from app.audit import api as audit_api  # noqa: F401
from app.audit import pages as audit_pages
from app.auth import pages as auth_pages
from app.config import Settings
from app.dev import pages as dev_pages
from app.llm import api as llm_api  # noqa: F401
from app.llm import gateway as llm_gateway
from app.llm import pages as llm_pages
from app.members import api as members_api  # noqa: F401
from app.members import pages as member_pages
from app.onboarding import pages as onboarding_pages
from app.pipelines import api as pipelines_api  # noqa: F401
from app.pipelines import pages as pipeline_pages
from app.runs import api as runs_api  # noqa: F401
from app.runs import pages as run_pages
from app.secrets import api as secrets_api  # noqa: F401
from app.secrets import pages as secret_pages
from app.sso import pages as sso_pages
from app.swarms import api as swarms_api  # noqa: F401
from app.swarms import pages as swarm_pages
from app.web.templating import STATIC_DIR
from app.workspaces import api as workspaces_api  # noqa: F401
from app.workspaces import live as live_pages
from app.workspaces import pages as workspace_pages


def build_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        # First: Starlette tries routes in order, and no page lives under /api/v1, so an API call need not be
        # matched against the ~140 page routes' patterns first (measured: 4% of an API request).
        Mount(api_routes.PREFIX, routes=api_routes.api_routes()),
        *health.routes,
        *auth_pages.routes,
        *workspace_pages.routes,
        *live_pages.routes,
        *member_pages.routes,
        *audit_pages.routes,
        *account_pages.routes,
        *sso_pages.routes,
        *apikey_pages.routes,
        *agent_pages.routes,
        *pipeline_pages.routes,
        *run_pages.routes,
        *onboarding_pages.routes,
        *swarm_pages.routes,
        *secret_pages.routes,
        *llm_pages.routes,
        *llm_gateway.routes,
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    if settings.dev_routes_enabled:  # only in processes `marid dev` started (or a test that asks)
        routes += dev_pages.routes
    return routes
