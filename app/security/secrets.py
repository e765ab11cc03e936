"""The secrets service: what a workspace keeps secret, sealed under that workspace's own data key.

Envelope encryption (docs/secrets.md). Each workspace has one random data key, stored only wrapped by the
master key in ``public.workspace_keys`` (made the first time the workspace seals something). A secret is
encrypted under its workspace's data key with associated data naming the workspace, the purpose and the row
it belongs to, so a ciphertext copied to another row, another purpose or another workspace fails to
decrypt. Rotating the master key re-wraps the data keys (:mod:`app.security.rotation`); the secrets
themselves never need re-encrypting.

One service per process, built at start next to the :class:`~app.db.Database` from the one keyring, and
passed to whatever seals or opens secrets::

    sealed = await secrets.seal(session, workspace_id, "sso.client_secret", row_id, plaintext)
    plaintext = await secrets.open(session, workspace_id, "sso.client_secret", row_id, sealed)

The service never logs and never keeps a plaintext secret; only unwrapped data keys are cached (a bounded
LRU: they never change, rotation only re-wraps them).
"""

from __future__ import annotations

import re
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from app.db import Database, is_public_session
from app.security.crypto import DataKey, DecryptionError, Keyring, new_data_key
from app.security.models import WorkspaceKey

# Purposes are names chosen by the domains ("sso.client_secret", "llm.provider_key"): short and plain, so no
# two (workspace, purpose, row) triples can encode to the same associated data.
_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
_AAD = b"marid.secret\x00"
# session.info: data keys created in the session's transaction. They are not cached for the process until
# committed (a rolled-back key would otherwise seal secrets nobody else can open).
_PENDING = "marid.secrets.pending"


def secret_aad(workspace_id: str, purpose: str, row_id: str) -> bytes:
    """The associated data binding a ciphertext to its workspace, purpose and row (length-prefixed parts)."""
    if not _PURPOSE.match(purpose):
        raise ValueError(f"a secret's purpose is a short lower-case name like 'sso.client_secret', not {purpose!r}")
    if not workspace_id or not row_id:
        raise ValueError("a secret belongs to a workspace and a row")
    parts = (part.encode() for part in (workspace_id, purpose, row_id))
    return _AAD + b"".join(len(part).to_bytes(4, "big") + part for part in parts)


class SecretsService:
    """Seals and opens workspace secrets; holds the process's one keyring (``keyring``) for the few values
    sealed under the master key itself (workspace role passwords, people's TOTP secrets)."""

    def __init__(self, keyring: Keyring, db: Database, *, cache_size: int = 4096) -> None:
        if cache_size < 1:
            raise ValueError("the data-key cache needs room for at least one key")
        self.keyring = keyring
        self._db = db
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"<SecretsService {self.keyring!r} cached={len(self._cache)}>"

    async def seal(
        self, session: AsyncSession | None, workspace_id: str, purpose: str, row_id: str, plaintext: str
    ) -> str:
        """``plaintext`` encrypted for this (workspace, purpose, row); store the result in that row.

        ``session`` is the caller's unit of work. A public session reads the data key and, the first time,
        creates it in its own transaction (it may hold locks on the workspace's row that a second connection
        would wait for). With a tenant session (which cannot see platform tables) or none, the service uses
        a short transaction of its own.
        """
        aad = secret_aad(workspace_id, purpose, row_id)
        key = await self._data_key(session, workspace_id, create=True)
        assert key is not None
        return key.encrypt(plaintext.encode(), aad=aad)

    async def open(
        self, session: AsyncSession | None, workspace_id: str, purpose: str, row_id: str, sealed: str
    ) -> str:
        """The plaintext of :meth:`seal`; DecryptionError if it was altered or belongs elsewhere."""
        aad = secret_aad(workspace_id, purpose, row_id)
        key = await self._data_key(session, workspace_id, create=False)
        if key is None:
            raise DecryptionError(f"workspace {workspace_id} has no data key: nothing was sealed for it")
        return key.decrypt(sealed, aad=aad).decode()

    @property
    def cached_keys(self) -> int:
        return len(self._cache)

    def forget(self, workspace_id: str) -> None:
        """Drop a workspace's data key from the cache (say, once the workspace is deleted)."""
        self._cache.pop(workspace_id, None)

    async def _data_key(self, session: AsyncSession | None, workspace_id: str, *, create: bool) -> DataKey | None:
        pending: dict[str, DataKey] = session.info.get(_PENDING, {}) if session is not None else {}
        if workspace_id in pending:
            return pending[workspace_id]
        key = self._cache.get(workspace_id)
        if key is not None:
            self._cache.move_to_end(workspace_id)
            return key
        in_session = session is not None and is_public_session(session)
        wrapped = await self._read(session if in_session else None, workspace_id)
        if wrapped is None and create:
            if in_session:
                assert session is not None
                return await self._create_in(session, workspace_id)
            wrapped = await self._create_alone(workspace_id)
        if wrapped is None:
            return None
        key = DataKey(self.keyring.unwrap_data_key(wrapped, workspace_id))
        self._remember(workspace_id, key)
        return key

    async def _read(self, session: AsyncSession | None, workspace_id: str) -> str | None:
        query = select(WorkspaceKey.wrapped_key).where(WorkspaceKey.workspace_id == workspace_id)
        if session is not None:
            return await session.scalar(query)
        async with self._db.engine.connect() as connection:
            return await connection.scalar(query)

    def _new_row(self, workspace_id: str) -> tuple[bytes, ReturningInsert[str]]:
        raw = new_data_key()
        row = (
            insert(WorkspaceKey)
            .values(
                workspace_id=workspace_id,
                wrapped_key=self.keyring.wrap_data_key(raw, workspace_id),
                master_key_id=self.keyring.primary_key_id,
            )
            .on_conflict_do_nothing(index_elements=[WorkspaceKey.workspace_id])
            .returning(WorkspaceKey.workspace_id)
        )
        return raw, row

    async def _create_in(self, session: AsyncSession, workspace_id: str) -> DataKey:
        raw, row = self._new_row(workspace_id)
        if await session.scalar(row) is not None:
            key = DataKey(raw)
            session.info.setdefault(_PENDING, {})[workspace_id] = key
            return key
        # Another transaction made the workspace's key first (and committed it: the insert waited for it).
        wrapped = await self._read(session, workspace_id)
        assert wrapped is not None
        key = DataKey(self.keyring.unwrap_data_key(wrapped, workspace_id))
        self._remember(workspace_id, key)
        return key

    async def _create_alone(self, workspace_id: str) -> str:
        _raw, row = self._new_row(workspace_id)
        async with self._db.engine.begin() as connection:
            await connection.execute(row)
            wrapped = await connection.scalar(
                select(WorkspaceKey.wrapped_key).where(WorkspaceKey.workspace_id == workspace_id)
            )
        assert wrapped is not None  # ours, or the one another process made first
        return wrapped

    def _remember(self, workspace_id: str, key: DataKey) -> None:
        self._cache[workspace_id] = key
        self._cache.move_to_end(workspace_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
