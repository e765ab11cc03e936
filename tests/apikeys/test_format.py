"""The key format: prefix, checksum, length, entropy; and the database never holds a key."""

from __future__ import annotations

import math
import secrets

import pytest
from sqlalchemy import select, text

from app.apikeys import format as key_format
from app.apikeys.format import ALPHABET, KeyKind, MalformedKey
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.security.tokens import token_hash
from tests.apikeys.helpers import make_key
from tests.helpers import make_user, make_workspace


@pytest.mark.parametrize("kind", list(KeyKind))
def test_a_key_has_its_type_prefix_length_and_entropy(kind: KeyKind) -> None:
    token = key_format.generate(kind)
    assert token.startswith(f"marid_{kind.tag}_")
    assert len(token) == key_format.TOKEN_CHARS >= 40
    assert key_format.BODY_CHARS * math.log2(len(ALPHABET)) >= 190
    parsed = key_format.parse(token)
    assert parsed.kind == kind and parsed.lookup_id == token[9:17]
    assert key_format.display_prefix(kind, parsed.lookup_id) == token[:17] + "…"
    assert len({key_format.generate(kind) for _ in range(200)}) == 200


def test_the_checksum_catches_any_changed_character() -> None:
    token = key_format.generate(KeyKind.SERVICE)
    # Every character after "marid_", each replaced by another of the alphabet (the type letters included).
    for position in range(len("marid_"), len(token)):
        if token[position] == "_":
            continue
        other = secrets.choice([char for char in ALPHABET if char != token[position]])
        changed = token[:position] + other + token[position + 1 :]
        with pytest.raises(MalformedKey):
            key_format.parse(changed)
    swapped = token[:-8] + token[-7] + token[-8] + token[-6:]
    if swapped != token:
        with pytest.raises(MalformedKey, match="checksum"):
            key_format.parse(swapped)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "starts with “marid_”"),
        ("ghp_" + "a" * 36, "starts with “marid_”"),
        ("marid_xx_" + "a" * 38, "Unknown key type"),
        ("marid_pk" + "a" * 39, "Unknown key type"),
        ("marid_pk_" + "a" * 10, "47 characters long; this one has 19"),
        ("marid_pk_" + "a" * 37 + "-", "only letters and digits"),
        ("marid_pk_" + "a" * 38, "checksum does not match"),
    ],
)
def test_malformed_keys_are_refused_with_a_reason(token: str, reason: str) -> None:
    with pytest.raises(MalformedKey, match=reason):
        key_format.parse(token)


async def test_the_database_holds_only_a_hash_and_the_public_lookup_id(db: Database, settings: Settings) -> None:
    owner = await make_user(db, "format")
    workspace = await make_workspace(db, owner, "format")
    key, token = await make_key(db, workspace, owner, "owner", kind="service", scope="admin", settings=settings)
    body = token[len("marid_sk_") :]
    async with db.public_session() as session:
        row = (await session.execute(text("SELECT * FROM public.api_keys WHERE id = :id"), {"id": key.id})).one()
    stored = " ".join(str(value) for value in row)
    assert token not in stored and body not in stored and body[8:20] not in stored
    assert key.token_hash == token_hash(token) and key.lookup_id == body[:8]
    # The audit log names the key by its prefix only.
    async with db.tenant_session(workspace.id) as session:
        events = list(await session.scalars(select(AuditEvent).where(AuditEvent.action == "apikey.created")))
    assert len(events) == 1
    assert events[0].details["lookup"] == f"marid_sk_{key.lookup_id}…"
    assert body not in str(events[0].details) and body[8:20] not in str(events[0].details)
