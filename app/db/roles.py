"""Login credentials of workspace roles: random passwords, stored encrypted, given to Postgres as SCRAM secrets.

Each workspace role logs in with its own password (the application role is not a member of any workspace
role, so a tenant connection cannot become another workspace even with arbitrary SQL). The password is 256
random bits; Postgres only ever sees its SCRAM-SHA-256 verifier (``CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'``),
so no plaintext reaches a statement log. Marid keeps the password encrypted under the master key, bound to
the workspace (``public.workspaces.db_password_enc``): not under the workspace's data key, because a tenant
connection needs it before anything else; `marid keys rotate` re-seals it (:data:`ROLE_PASSWORDS`).

The verifier uses few PBKDF2 iterations on purpose: iterations slow down guessing a weak password, and a
256-bit random one cannot be guessed; each cold tenant connection would otherwise pay 4,096 SHA-256 rounds
on both sides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from app.db.base import schema_for
from app.security.crypto import Keyring
from app.security.sealed import MasterSealedColumn

SCRAM_ITERATIONS = 16
_AAD_PREFIX = b"marid.db-role\x00"


def new_role_password() -> str:
    return secrets.token_urlsafe(32)


def scram_verifier(password: str, *, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 secret Postgres stores for ``password`` (RFC 7677; Postgres's own format)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def role_password_aad(workspace_id: str) -> bytes:
    return _AAD_PREFIX + schema_for(workspace_id).encode()


ROLE_PASSWORDS = MasterSealedColumn(
    "workspace role passwords", "public.workspaces", "id", "db_password_enc", role_password_aad
)


class RoleSecrets:
    """Encrypts and decrypts workspace role passwords with the platform keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, workspace_id: str, password: str) -> str:
        return self.keyring.encrypt(password.encode(), aad=role_password_aad(workspace_id))

    def open(self, workspace_id: str, sealed: str) -> str:
        return self.keyring.decrypt(sealed, aad=role_password_aad(workspace_id)).decode()
