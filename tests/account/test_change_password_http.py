"""Changing the password while signed in: the current one is required, bad input changes nothing, and the
other sessions end."""

from __future__ import annotations

import pytest

from app.auth.models import User, UserSession
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.security.passwords import verify_password
from tests.browser import STRONG_PASSWORD
from tests.helpers import count, http_client, log_in, make_user, post_form, sign_in

NEW_PASSWORD = "a different long passphrase 77"
PAGE = "/account/password"


async def password_hash(db: Database, user: User) -> str | None:
    async with db.public_session() as session:
        fresh = await session.get(User, user.id)
        return fresh.password_hash if fresh else None


def change(current: str, new: str, confirm: str | None = None) -> dict[str, str]:
    return {"current_password": current, "new_password": new, "confirm": new if confirm is None else confirm}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (change("not it at all", NEW_PASSWORD), "not your current"),
        (change(STRONG_PASSWORD, "short"), "at least 12"),
        (change(STRONG_PASSWORD, "password1234"), "common"),
        (change(STRONG_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x"), "not the same"),
        (change(STRONG_PASSWORD, STRONG_PASSWORD), "different"),
        # An empty form is refused for what was typed, and never counted as a wrong password (issue 10).
        ({}, "Enter your current password"),
    ],
)
async def test_bad_input_changes_nothing(settings: Settings, db: Database, form: dict[str, str], message: str) -> None:
    user = await make_user(db, "pw")
    before = await password_hash(db, user)
    with http_client(create_app(settings)) as client:
        log_in(client, user.email)
        response = post_form(client, PAGE, PAGE, form)
        assert response.status_code == 422
        assert message in response.text
    assert await password_hash(db, user) == before


async def test_change_password_ends_the_other_sessions(settings: Settings, db: Database) -> None:
    user = await make_user(db, "pw")
    with http_client(create_app(settings)) as here, http_client(create_app(settings)) as elsewhere:
        log_in(here, user.email)
        log_in(elsewhere, user.email)
        response = post_form(here, PAGE, PAGE, change(STRONG_PASSWORD, NEW_PASSWORD))
        assert response.status_code == 303 and response.headers["location"] == "/account/security"
        assert here.get("/account/security").status_code == 200
        assert elsewhere.get("/account/security").headers["location"].startswith("/login")
        assert await count(db, UserSession, UserSession.user_id == user.id) == 1
    hashed = await password_hash(db, user)
    assert hashed is not None and verify_password(hashed, NEW_PASSWORD)
    with http_client(create_app(settings)) as later:
        assert sign_in(later, user.email, STRONG_PASSWORD).status_code == 401
        assert sign_in(later, user.email, NEW_PASSWORD).status_code == 303
