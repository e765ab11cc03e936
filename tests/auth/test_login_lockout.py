"""Nobody can lock an account's owner out by hammering its sign-in form (issue 8, defect 8).

The attack: the per-account sign-in limit also refused the right password, so anyone who knew an address
could keep its owner out for good by sending wrong passwords. Now failures are limited per (account, client)
and per client: the attacker's client is stopped, the owner's own client still signs in. Clients are told
apart by address (each TestClient here has its own, see tests/helpers.py).
"""

from __future__ import annotations

import secrets

from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.helpers import STRONG_PASSWORD, http_client, make_user, sign_in


def _attempts(client: TestClient, email: str, password: str, times: int) -> list[int]:
    return [sign_in(client, email, password).status_code for _ in range(times)]


async def test_an_attacker_hammering_an_address_does_not_lock_its_owner_out(settings: Settings, db: Database) -> None:
    victim = await make_user(db, f"victim-{secrets.token_hex(3)}")
    app = create_app(settings)
    with http_client(app) as attacker:
        statuses = _attempts(attacker, victim.email, "wrong password, again", 25)
        assert statuses[:10] == [401] * 10
        assert set(statuses[10:]) == {429}
        # Stopped for this account from this client, whatever the password.
        assert sign_in(attacker, victim.email).status_code == 429
    with http_client(app) as owner:
        assert sign_in(owner, victim.email).status_code == 303
        # A typo or two of the owner's own counts against the owner's client only.
        owner.cookies.clear()
        assert sign_in(owner, victim.email, "not my password").status_code == 401
        assert sign_in(owner, victim.email).status_code == 303


async def test_one_client_trying_many_accounts_is_stopped(settings: Settings, db: Database) -> None:
    users = [await make_user(db, f"spray-{i}-{secrets.token_hex(3)}") for i in range(4)]
    with http_client(create_app(settings)) as sprayer:
        statuses = [sign_in(sprayer, users[i % 4].email, "Winter2026!!spray").status_code for i in range(40)]
    # 30 failures, then refused (the allowance refills one every 10 s, so a slow run may see one more).
    assert statuses[:30] == [401] * 30 and statuses.count(401) <= 32 and set(statuses[-5:]) == {429}
    # The accounts themselves are untouched: their owners sign in from their own clients.
    with http_client(create_app(settings)) as owner:
        assert sign_in(owner, users[0].email, STRONG_PASSWORD).status_code == 303


async def test_successful_sign_ins_do_not_use_up_a_shared_clients_allowance(settings: Settings, db: Database) -> None:
    # An office behind one address: many people signing in is not an attack.
    people = [await make_user(db, f"office-{i}-{secrets.token_hex(3)}") for i in range(35)]
    with http_client(create_app(settings)) as office:
        for person in people:
            office.cookies.clear()
            assert sign_in(office, person.email).status_code == 303
