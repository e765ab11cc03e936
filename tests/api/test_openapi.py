"""The OpenAPI document describes every operation completely, and the reference page renders all of it."""

from __future__ import annotations

import re
from typing import Any

from app.api.operations import REGISTRY
from app.config import Settings
from tests.api.helpers import api_client

SUCCESS = {"200", "201", "204"}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node)) if node else set()
    return set()


def test_the_document_covers_every_operation(settings: Settings) -> None:
    with api_client(settings) as client:
        response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert set(document["components"]["securitySchemes"]) == {"apiKey", "session"}
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {(op.method, "/api/v1" + op.path) for op in REGISTRY}
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and op["tags"], where
            assert {p["name"] for p in op["parameters"] if p["in"] == "path"} == set(re.findall(r"\{(\w+)\}", path))
            statuses = set(op["responses"])
            assert len(statuses & SUCCESS) == 1, where
            assert {"401", "403", "500"} <= statuses, where
            if "{slug}" in path or "_id}" in path:
                assert "404" in statuses, where
            if "requestBody" in op:
                assert {"413", "415", "422"} <= statuses, where
            for status, answer in op["responses"].items():
                if status not in SUCCESS:
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_reference_resolves(settings: Settings) -> None:
    with api_client(settings) as client:
        document = client.get("/api/v1/openapi.json").json()
    names = set(document["components"]["schemas"])
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in names, ref


def test_the_reference_page_lists_every_operation_without_outside_resources(settings: Settings) -> None:
    with api_client(settings) as client:
        response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'href="/api/v1/openapi.json"' in page
    for op in REGISTRY:
        assert f'id="{op.operation_id}"' in page
        assert f"<code>{op.method} /api/v1{op.path}</code>" in page
    for name in ("Error", "MemberOut", "AuditEventOut", "ApiKeyCreated"):
        assert f'id="schema-{name}"' in page
    # Every link in the page's body resolves within it or within the site; no CDN, no external script.
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "#", "http://testserver/")), url
