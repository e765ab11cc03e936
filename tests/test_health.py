"""/healthz says the process is alive; /readyz checks Postgres and Redis for real."""

from __future__ import annotations

from starlette.testclient import TestClient

from app.config import Settings
from app.embedded import free_port
from app.main import create_app


def test_healthz_and_readyz(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def test_readyz_reports_what_is_down(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(broken)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["redis"].startswith("unavailable")


def test_errors_are_pages_and_headers_are_set(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        missing = client.get("/no/such/page")
        assert missing.status_code == 404
        # One clear thing (issue 10): not "Page not found / Not Found".
        assert "There is nothing at this address" in missing.text and "<html" in missing.text
        assert "Not Found" not in missing.text
        api = client.get("/api/v1/no-such-thing")
        assert api.status_code == 404
        assert api.json()["error"]["code"] == "not_found"
        headers = client.get("/").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in headers
        assert headers["cache-control"] == "no-store"
        assert client.get("/api/v1/me").headers["cache-control"] == "no-store"
        assert "no-store" not in client.get("/static/css/marid.css").headers.get("cache-control", "")


def test_a_service_outage_is_a_clear_503_not_a_crash(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        page = client.get("/login")
        token = page.cookies.get(broken.csrf_cookie) or client.cookies.get(broken.csrf_cookie)
        response = client.post("/login", data={"csrf_token": token, "email": "a@example.com", "password": "x" * 12})
        assert response.status_code == 503
        assert "Temporarily unavailable" in response.text and "Try again" in response.text
        assert response.headers["retry-after"] == "30"
