"""Master-key rotation while Marid serves traffic, then the old key removed.

A database of its own holds workspaces (role passwords, SSO secrets: half of them still sealed the old way,
directly under the master key), people with 2FA and a few hundred more rows to rotate, all made under the old
key. Then, configured with the new key first and the old one retired, `marid keys rotate` runs while a live
`marid web` saves SSO secrets over HTTP and sessions read and write secrets, enrol in 2FA, provision
workspaces and log in as workspace roles. Every secret still decrypts; a fresh app configured with only the new
key signs in with 2FA and with SSO, and reaches every workspace.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select, text

from app.account.twofactor import begin_enrolment, seal_secret, secret_of
from app.audit.actor import Actor
from app.auth.models import User
from app.cli.keys import RotationReport, rotate, take_census
from app.config import Settings
from app.db import Database, schema_for
from app.main import create_app
from app.security.crypto import DecryptionError, Keyring, new_data_key, new_key
from app.security.models import WorkspaceKey
from app.security.secrets import SecretsService
from app.sso.models import SsoConnection
from app.sso.service import ConnectionSettings, decrypt_secret, legacy_secret_aad, save_connection
from app.tenants.models import Workspace
from app.workspaces.service import new_workspace_id
from tests.account.helpers import is_signed_in, sign_in, totp_code, turn_on_2fa
from tests.conftest import Services
from tests.dns_server import TestDns
from tests.helpers import STRONG_PASSWORD, csrf_of, http_client, make_user, make_workspace
from tests.servers import web_server
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, StartProvider, providers  # noqa: F401 (a fixture)
from tests.sso.flow import sso
from tests.sso.helpers import configure, unique_domain

pytestmark = pytest.mark.timeout(300)

OLD, NEW = new_key(), new_key()
WORKSPACES = 12
PEOPLE = 8
# Rows that only make the rotation long enough to overlap the load: people with 2FA, bare workspace keys.
EXTRA_PEOPLE, EXTRA_KEYS = 300, 200


def _settings(base: Settings, url: str, keys: str) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        redis_url=base.redis_url,
        dns_nameservers=base.dns_nameservers,
        encryption_keys=keys,
    )


def _form(issuer: str, secret: str) -> ConnectionSettings:
    return ConnectionSettings(
        issuer=issuer, client_id=CLIENT_ID, client_secret=secret, default_role="member", enabled=True
    )


@dataclass
class World:
    """What was stored, and what each secret must still say."""

    workspaces: list[Workspace] = field(default_factory=list)
    issuers: dict[str, str] = field(default_factory=dict)
    sso_secrets: dict[str, str] = field(default_factory=dict)
    totp: dict[uuid.UUID, str] = field(default_factory=dict)
    emails: dict[uuid.UUID, str] = field(default_factory=dict)
    owner_email: str = ""
    domain: str = ""


async def _build(db: Database, settings: Settings, keyring: Keyring, dns: TestDns, issuer: str, domain: str) -> World:
    world = World(domain=domain)
    owner = await make_user(db, "rotation-owner")
    world.owner_email = owner.email
    for number in range(WORKSPACES):
        workspace = await make_workspace(db, owner, "rotation")
        world.workspaces.append(workspace)
        # The first workspace's SSO is a real provider (signed into at the end); the others only keep a secret.
        real = number == 0
        world.issuers[workspace.id] = issuer if real else f"https://idp-{secrets.token_hex(4)}.example.com"
        secret = CLIENT_SECRET if real else f"secret-{secrets.token_hex(8)}"
        await configure(
            db, settings, workspace, world.issuers[workspace.id], domain if real else "", dns=dns if real else None,
            client_secret=secret,
        )  # fmt: skip
        world.sso_secrets[workspace.id] = secret
    async with db.public_session() as session:
        for workspace in world.workspaces[0::2]:  # as a release before the secrets service sealed them
            row = await session.get(SsoConnection, workspace.id)
            assert row is not None
            secret = world.sso_secrets[workspace.id]
            row.client_secret_enc = keyring.encrypt(secret.encode(), aad=legacy_secret_aad(workspace.id))
    for _ in range(PEOPLE):
        person = await make_user(db, "rotation-2fa")
        world.totp[person.id] = (await turn_on_2fa(db, settings, person.id))[0]
        world.emails[person.id] = person.email
    async with db.public_session() as session:
        for _ in range(EXTRA_PEOPLE):
            person = User(email=f"bulk-{secrets.token_hex(6)}@example.com", display_name="Bulk")
            person.id = uuid.uuid4()
            secret = secrets.token_hex(10)
            person.totp_secret_enc = seal_secret(keyring, person.id, secret)
            session.add(person)
            world.totp[person.id] = secret
        for _ in range(EXTRA_KEYS):  # workspaces without a schema: only their data keys matter here
            workspace_id = new_workspace_id()
            session.add(Workspace(id=workspace_id, slug=f"bulk-{workspace_id}", name="Bulk"))
            await session.flush()
            session.add(
                WorkspaceKey(
                    workspace_id=workspace_id,
                    wrapped_key=keyring.wrap_data_key(new_data_key(), workspace_id),
                    master_key_id=keyring.primary_key_id,
                )
            )
    return world


class Load:
    """Runs ``step`` again and again until the rotation is over; counts the steps that ran entirely during it."""

    def __init__(self, rotation: asyncio.Task[RotationReport]) -> None:
        self.rotation = rotation
        self.during: dict[str, int] = {}

    async def run(self, name: str, step: Callable[[int], Awaitable[None]]) -> None:
        self.during[name] = 0
        number = 0
        while not self.rotation.done():
            await step(number)
            number += 1
            if not self.rotation.done():
                self.during[name] += 1
        await step(number)  # and once more after it


async def _http_writer(base: str, world: World, workspace: Workspace) -> Callable[[int], Awaitable[None]]:
    """An admin saving the SSO secret on the settings page of a live `marid web`."""
    client = httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=30, trust_env=False)
    token = csrf_of((await client.get("/login")).text)
    login = {"email": world.owner_email, "password": STRONG_PASSWORD, "csrf_token": token}
    assert (await client.post("/login", data=login)).status_code == 303
    page = f"/w/{workspace.slug}/settings/sso"

    async def step(number: int) -> None:
        secret = f"http-{number}-{secrets.token_hex(6)}"
        token = csrf_of((await client.get(page)).text)
        form = {
            "issuer": world.issuers[workspace.id],
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "default_role": "member",
            "enabled": "on",
            "csrf_token": token,
        }
        response = await client.post(page, data=form)
        assert response.status_code == 303, response.text
        world.sso_secrets[workspace.id] = secret

    return step


async def test_rotation_under_load_then_the_old_key_can_go(
    services: Services,
    settings: Settings,
    dns: TestDns,
    providers: StartProvider,  # noqa: F811
) -> None:
    url = await services.new_database("rotation_load")
    domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", domain)
    before = _settings(settings, url, OLD)
    old_db = before.database(before.keyring())
    world = await _build(old_db, before, before.keyring(), dns, issuer, domain)
    await old_db.dispose()

    # Deployed: the new key first, the old one retired. Then `marid keys rotate`, under load.
    during = _settings(settings, url, f"{NEW},{OLD}")
    keyring = during.keyring()
    db = during.database(keyring)
    service = SecretsService(keyring, db)
    readers = world.workspaces[0::2]  # legacy at first, moved by the rotation while being read
    writers = world.workspaces[3::2]
    people = list(world.totp)[:PEOPLE]
    enrolling = [await make_user(db, "rotation-enrolling") for _ in range(3)]
    env = {
        **os.environ,
        "MARID_ENV": "test",
        "MARID_DATABASE_URL": url,
        "MARID_REDIS_URL": settings.redis_url,
        "MARID_DNS_NAMESERVERS": settings.dns_nameservers,
        "MARID_ENCRYPTION_KEYS": f"{NEW},{OLD}",
    }
    progress: dict[str, tuple[int, int]] = {}

    def shown(label: str) -> Callable[[int, int], None]:
        return lambda done, total: progress.__setitem__(label, (done, total))

    with web_server(env) as base:
        http_step = await _http_writer(base, world, world.workspaces[1])
        # `marid keys rotate` is a process of its own: its own keyring, engines and data-key cache.
        rotation_keyring = during.keyring()
        rotation_db = during.database(rotation_keyring, pool_size=2)
        rotation = asyncio.create_task(rotate(rotation_db, SecretsService(rotation_keyring, rotation_db), shown))
        load = Load(rotation)

        async def read_sso(number: int) -> None:
            workspace = readers[number % len(readers)]
            fresh = SecretsService(keyring, db)  # an empty cache: the wrapped key is read mid-rotation
            async with db.public_session() as session:
                row = await session.get(SsoConnection, workspace.id)
                assert row is not None
                assert await decrypt_secret(fresh, row, session) == world.sso_secrets[workspace.id]

        async def write_sso(number: int) -> None:
            workspace = writers[number % len(writers)]
            secret = f"write-{number}-{secrets.token_hex(6)}"
            async with db.public_session() as session:
                await save_connection(
                    session,
                    during,
                    service,
                    workspace_id=workspace.id,
                    actor=Actor.system(),
                    values=_form(world.issuers[workspace.id], secret),
                )
            world.sso_secrets[workspace.id] = secret

        async def read_totp(number: int) -> None:
            person = people[number % len(people)]
            async with db.public_session() as session:
                user = await session.get(User, person, with_for_update=True)
                assert user is not None and secret_of(keyring, user) == world.totp[person]

        async def enrol(number: int) -> None:
            person = enrolling[number % len(enrolling)]
            async with db.public_session() as session:
                user = await session.get(User, person.id, with_for_update=True)
                assert user is not None
                world.totp[person.id] = begin_enrolment(keyring, user)

        async def connect_as_workspace(number: int) -> None:
            workspace = world.workspaces[number % len(world.workspaces)]
            fresh = Database(url, pool_size=1, keyring=keyring)  # a new process: the role password is opened again
            try:
                async with fresh.tenant_session(workspace.id) as session:
                    assert await session.scalar(text("SELECT current_user")) == schema_for(workspace.id)
            finally:
                await fresh.dispose()

        async def provision(number: int) -> None:
            owner = await make_user(db, "rotation-new")
            workspace = await make_workspace(db, owner, "rotation-new")
            secret = f"new-{secrets.token_hex(6)}"
            async with db.public_session() as session:
                await save_connection(
                    session,
                    during,
                    service,
                    workspace_id=workspace.id,
                    actor=Actor.system(),
                    values=_form("https://new.example.com", secret),
                )
            world.workspaces.append(workspace)
            world.issuers[workspace.id], world.sso_secrets[workspace.id] = "https://new.example.com", secret

        await asyncio.gather(
            load.run("http", http_step),
            load.run("read_sso", read_sso),
            load.run("write_sso", write_sso),
            load.run("read_totp", read_totp),
            load.run("enrol", enrol),
            load.run("connect", connect_as_workspace),
            load.run("provision", provision),
        )
        report = await rotation
        await rotation_db.dispose()
    await db.dispose()

    print(
        "steps during the rotation:", load.during, "rotated:", [(s.label, s.changed, s.pending) for s in report.steps]
    )
    rotated = [(step.label, step.changed, step.pending) for step in report.steps]
    assert all(count >= 1 for count in load.during.values()), (load.during, rotated)
    assert report.failed == 0 and report.after is not None
    assert report.after.left_behind(keyring) == 0, report.after
    assert {step.label for step in report.steps} <= set(progress)  # progress was shown for every step with work
    assert all(done == total for done, total in progress.values())

    # Deployed again with only the new key: everything still opens, the old key alone opens nothing.
    after = _settings(settings, url, NEW)
    only_new = after.keyring()
    db = after.database(only_new)
    fresh = SecretsService(only_new, db)
    try:
        assert (await take_census(db, fresh)).left_behind(only_new) == 0
        async with db.public_session() as session:
            for workspace_id, secret in world.sso_secrets.items():
                row = await session.get(SsoConnection, workspace_id)
                assert row is not None and await decrypt_secret(fresh, row, session) == secret
            for person, secret in world.totp.items():
                user = await session.get(User, person)
                assert user is not None and secret_of(only_new, user) == secret
            wrapped = list(await session.scalars(select(WorkspaceKey)))
        assert len(wrapped) >= WORKSPACES + EXTRA_KEYS
        for row in wrapped:
            assert row.master_key_id == only_new.primary_key_id
            with pytest.raises(DecryptionError):
                Keyring(OLD).unwrap_data_key(row.wrapped_key, row.workspace_id)
        for workspace in world.workspaces:
            async with db.tenant_session(workspace.id) as session:
                assert await session.scalar(text("SELECT current_user")) == schema_for(workspace.id)
    finally:
        await db.dispose()

    person = people[0]
    with http_client(create_app(after)) as client:
        assert sign_in(client, world.emails[person], code=totp_code(world.totp[person])).status_code == 303
        assert is_signed_in(client)
    with http_client(create_app(after)) as client:
        signed = sso(client, world.workspaces[0].slug, f"rot{secrets.token_hex(3)}", page="/sso")
        assert signed.status_code == 303, signed.text
        assert is_signed_in(client)
