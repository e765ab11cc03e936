"""Client secrets sealed before the secrets service, moved onto it.

They were sealed directly under the master key (AAD ``sso:<workspace id>``); they move under the workspace's
data key, bound to their row like any other workspace secret. `marid migrate` and `marid keys rotate` run
this; until then :func:`app.sso.service.decrypt_secret` still reads them. Each row is its own short
transaction, so a run that stops is resumed by running it again.
"""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database
from app.security.crypto import DecryptionError
from app.security.rotation import ProgressCallback, StepReport
from app.security.secrets import SecretsService
from app.sso.models import SsoConnection
from app.sso.service import decrypt_secret, encrypt_secret
from app.tenants.models import Workspace

LABEL = "SSO client secrets sealed under the master key"


async def legacy_secret_workspaces(db: Database, secrets: SecretsService) -> list[str]:
    """The workspaces whose client secret is still sealed under a master key."""
    async with db.public_session() as session:
        rows = await session.execute(
            select(SsoConnection.workspace_id, SsoConnection.client_secret_enc).order_by(SsoConnection.workspace_id)
        )
        return [workspace_id for workspace_id, sealed in rows if secrets.keyring.owns(sealed)]


async def upgrade_legacy_secrets(
    db: Database, secrets: SecretsService, progress: ProgressCallback | None = None
) -> StepReport:
    report = StepReport(LABEL)
    pending = await legacy_secret_workspaces(db, secrets)
    report.pending = len(pending)
    for done, workspace_id in enumerate(pending, 1):
        try:
            async with db.public_session() as session:
                # The workspace first, then its connection: the order saving the settings locks them in, so
                # the two cannot deadlock (and a new data key's foreign key waits for nobody).
                await session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
                connection = await session.get(SsoConnection, workspace_id, with_for_update=True)
                if connection is not None and secrets.keyring.owns(connection.client_secret_enc):
                    plaintext = await decrypt_secret(secrets, connection)
                    connection.client_secret_enc = await encrypt_secret(secrets, session, workspace_id, plaintext)
                    report.changed += 1
        except DecryptionError:
            report.failed.append(workspace_id)
        if progress is not None:
            progress(done, len(pending))
    return report
