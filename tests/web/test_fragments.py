"""One template per page: a normal request gets the whole page, an htmx request the same page's content block
only (no second <html>, no layout) — for every page in the route table."""

from __future__ import annotations

from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.web.pages import fill, page_get_routes


async def test_every_page_is_a_full_page_and_an_htmx_fragment(
    settings: Settings, owner_client: tuple[TestClient, dict[str, str]]
) -> None:
    client, known = owner_client
    checked, failures = 0, []
    for path in page_get_routes(create_app(settings).routes):
        url = fill(path, known)
        full = client.get(url)
        if full.status_code != 200 or not full.headers.get("content-type", "").startswith("text/html"):
            continue  # redirects, JSON, and pages that need a real token
        fragment = client.get(url, headers={"HX-Request": "true"})
        checked += 1
        if "<html" not in full.text or '<header class="topbar">' not in full.text:
            failures.append(f"{path}: the full page lacks the layout")
        if fragment.status_code != 200 or "<html" in fragment.text or 'class="topbar"' in fragment.text:
            failures.append(f"{path}: the htmx answer is not just the fragment ({fragment.status_code})")
        elif fragment.text.strip() == "":
            failures.append(f"{path}: the htmx fragment is empty")
    assert checked >= 12
    assert failures == []
