"""Tenant revisions rendered to SQL once, then run in any number of workspace schemas.

Alembic renders each upgrade path in offline mode against the placeholder schema ``marid_tenant``; the
rendered SQL is cached per starting revision and re-targeted at a workspace schema by rewriting the
qualified names. This is the "pre-rendered DDL" that provisioning and ``marid migrate`` both execute, so
neither replays Alembic's Python per workspace.
"""

from __future__ import annotations

import io
import re
from functools import cached_property
from pathlib import Path
from threading import Lock

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.db import TENANT_SCHEMA, quote_ident
from migrations import TENANT_DIR

_QUALIFIED = re.compile(rf"\b{TENANT_SCHEMA}\.")


class TenantScripts:
    """The tenant revision stream found in ``directory`` (the project's own by default)."""

    def __init__(self, directory: Path = TENANT_DIR) -> None:
        self.directory = directory
        self._rendered: dict[str | None, str] = {}
        self._lock = Lock()

    def _config(self, buffer: io.StringIO | None = None) -> Config:
        config = Config(output_buffer=buffer)
        config.set_main_option("script_location", str(self.directory))
        return config

    @cached_property
    def _script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self._config())

    @cached_property
    def head(self) -> str:
        head = self._script.get_current_head()
        if head is None:
            raise RuntimeError(f"no tenant revisions in {self.directory}")
        return head

    def known(self, revision: str) -> bool:
        try:
            return self._script.get_revision(revision) is not None
        except Exception:  # alembic raises several kinds for unknown or ambiguous ids
            return False

    def upgrade_sql(self, from_revision: str | None) -> str:
        """The SQL that takes a placeholder schema from ``from_revision`` (None: empty) to head."""
        with self._lock:
            if from_revision not in self._rendered:
                buffer = io.StringIO()
                target = "head" if from_revision is None else f"{from_revision}:head"
                command.upgrade(self._config(buffer), target, sql=True)
                self._rendered[from_revision] = buffer.getvalue()
            return self._rendered[from_revision]

    def upgrade_sql_for(self, schema: str, from_revision: str | None) -> str:
        return retarget(self.upgrade_sql(from_revision), schema)


def retarget(sql: str, schema: str) -> str:
    """Point SQL rendered against the placeholder schema at ``schema``."""
    return _QUALIFIED.sub(lambda _match: quote_ident(schema) + ".", sql)


default_scripts = TenantScripts()
