"""Revision p0007: allowed domains become unverified domains (fresh tokens), old identities are marked legacy,
and the downgrade puts the list back."""

from __future__ import annotations

import secrets

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from migrations import PUBLIC_DIR
from tests.conftest import Services


def _to(revision: str, *, down: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(PUBLIC_DIR))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def test_allowed_domains_become_unverified_domains_and_come_back_on_downgrade(services: Services) -> None:
    url = await services.postgres.ensure_database(f"p0007_{secrets.token_hex(4)}")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to("p0006"))  # type: ignore[arg-type]
            await connection.execute(
                text(
                    "INSERT INTO public.workspaces (id, slug, name) "
                    "VALUES ('aaaaaaaaaaaa', 'a', 'A'), ('bbbbbbbbbbbb', 'b', 'B')"
                )
            )
            await connection.execute(
                text("INSERT INTO public.users (email, display_name) VALUES ('u@example.com', 'U')")
            )
            await connection.execute(
                text(
                    "INSERT INTO public.sso_connections (workspace_id, issuer, client_id, client_secret_enc, "
                    "allowed_domains) VALUES ('aaaaaaaaaaaa', 'https://i', 'c', 's', '{victim.example,a.example}'), "
                    "('bbbbbbbbbbbb', 'https://j', 'c', 's', '{victim.example}')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO public.sso_identities (issuer, subject, user_id, workspace_id, email_at_link) "
                    "SELECT 'https://i', 's', id, 'aaaaaaaaaaaa', email FROM public.users"
                )
            )
            await connection.run_sync(_to("p0007"))  # type: ignore[arg-type]
            rows = (
                await connection.execute(
                    text(
                        "SELECT workspace_id, domain, verified_at, length(token) FROM public.sso_domains ORDER BY 1, 2"
                    )
                )
            ).all()
            assert [tuple(row) for row in rows] == [
                ("aaaaaaaaaaaa", "a.example", None, 32),
                ("aaaaaaaaaaaa", "victim.example", None, 32),
                ("bbbbbbbbbbbb", "victim.example", None, 32),
            ]
            tokens = await connection.scalar(text("SELECT count(DISTINCT token) FROM public.sso_domains"))
            assert tokens == 3
            assert await connection.scalar(text("SELECT link_method FROM public.sso_identities")) == "legacy"

            await connection.run_sync(_to("p0006", down=True))  # type: ignore[arg-type]
            back = await connection.execute(
                text("SELECT workspace_id, allowed_domains FROM public.sso_connections ORDER BY 1")
            )
            assert [tuple(row) for row in back] == [
                ("aaaaaaaaaaaa", ["a.example", "victim.example"]),
                ("bbbbbbbbbbbb", ["victim.example"]),
            ]
    finally:
        await engine.dispose()
