"""Property-based testing of every API operation against the OpenAPI document (schemathesis + Hypothesis).

Each operation is called with generated input, valid and invalid, by the owner of a workspace that has
members, an invitation and audit entries: no answer may be a server error, and every answer must match the
document (status code, content type, body schema). Most calls name the real workspace (a random slug only
finds 404s); ids in paths stay random, so a DELETE cannot take the fixture apart mid-run.

(schemathesis' own pytest integration does not run under pytest 9, so each operation is one parametrised
test driving the operation's Hypothesis strategy; the operation list comes from the same document.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, strategies
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.openapi import build_document
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.security.tokens import new_token
from tests.api.helpers import Team, make_team

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
OPERATIONS = [(method.upper(), path) for path, item in build_document(Settings())["paths"].items() for method in item]
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
# One call in eight keeps its generated credentials (401), another its generated slug (404).
_turn = itertools.count()


@pytest.fixture(scope="module")
async def fuzz_team(db: Database, settings: Settings) -> Team:
    return await make_team(db, settings, "fuzz")


@pytest.fixture(scope="module")
def api_schema(settings: Settings, fuzz_team: Team) -> Iterator[Any]:
    # Created after the team: audit entries written from the test's loop must not reach this app's event bus,
    # whose Redis connections belong to the loop schemathesis runs the app on.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(settings))
    yield schema
    shutdown_lifespans()


def test_the_document_lists_every_operation() -> None:
    assert len(OPERATIONS) >= 16


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda mode: mode.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_matches_the_document(
    api_schema: Any, fuzz_team: Team, settings: Settings, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    owner_cookie = fuzz_team.cookies["owner"]

    @given(case=operation.as_strategy(mode) | strategies.nothing())
    @hypothesis_settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        turn = next(_turn) % 8
        if turn != 0:
            # Signed in as the owner (the generated credentials, kept one time in eight, only find 401s).
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            case.cookies = {**(case.cookies or {}), settings.session_cookie: owner_cookie}
        if turn != 1 and "slug" in (case.path_parameters or {}):
            case.path_parameters["slug"] = fuzz_team.workspace.slug
        if turn % 2 and method == "PATCH" and "user_id" in case.path_parameters:
            # Role changes of a real member (never the owner, whose role cannot change this way).
            case.path_parameters["user_id"] = str(fuzz_team.member.id)
        csrf = new_token()
        headers = {"X-CSRF-Token": csrf} if case.method.upper() in UNSAFE else {}
        case.call_and_validate(headers=headers, cookies={settings.csrf_cookie: csrf}, checks=CHECKS)

    call()
