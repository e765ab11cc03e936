"""The few statements that run on every request, sent by asyncpg itself on a connection from the engine's pool.

SQLAlchemy's execution of an already built Core statement costs 150-200 µs of CPU per call on top of asyncpg's
own (the ``Connection`` wrapper and its events, the execution context, the compiled-cache lookup, the result
wrapper, the greenlet hop): measured as a third of a signed-in dashboard request, whose two statements are a few
hundred microseconds of PostgreSQL's time. A :class:`DirectQuery` is compiled by SQLAlchemy once, for the
asyncpg dialect, so it is the same SQL with the same type handling: arguments and rows go through SQLAlchemy's own
bind and result processors for each column's type. Only the per-call machinery is skipped.

It keeps the pool's rules: :func:`direct_connection` checks a connection out of the engine's pool (its limits,
its idle pings: ``app.db.pinging``) and gives it back, invalidating it when the connection itself failed. Each
statement commits by itself (asyncpg outside a transaction): for reads and single-statement writes on the hot
path only. Statements with expanding parameters (``IN`` lists) are refused
when built; use ``= ANY(:array)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from app.db.base import TENANT_SCHEMA

# The engines all use asyncpg (``postgresql+asyncpg://``); type processors depend on the dialect class only.
_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_MARKER = f"__[SCHEMA_{TENANT_SCHEMA}]"  # where SQLAlchemy leaves a translated schema's name to fill in

Processor = Callable[[Any], Any]


class DirectQuery:
    """A Core statement compiled once; :meth:`DirectConnection.fetch` runs it."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        compiled = self._compile(None)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a direct statement cannot have expanding parameters (IN lists): use = ANY(:array)")
        names = compiled.positiontup or []
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        self.order: tuple[str, ...] = tuple(names)
        # Values fixed in the statement (literals SQLAlchemy made into parameters, bindparam defaults).
        self.fixed: dict[str, Any] = {
            name: bind.effective_value for name, bind in binds.items() if not bind.required and name in names
        }
        self.binders: dict[str, Processor] = {}
        for name in names:
            processor = binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            if processor is not None:
                self.binders[name] = processor
        columns = list(getattr(statement, "selected_columns", ()))
        readers = [column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None) for column in columns]
        self.readers: tuple[Processor | None, ...] = tuple(readers)
        self._read_any = any(reader is not None for reader in readers)
        # Compiled with the tenant schema left as SQLAlchemy's marker, which each call replaces by the workspace's
        # schema (as SQLAlchemy's own execution does): one text for every workspace, nothing kept per workspace.
        marked = self._compile({TENANT_SCHEMA: TENANT_SCHEMA}).string
        self.tenant = _MARKER in marked
        self._text = marked if self.tenant else compiled.string

    def _compile(self, schemas: dict[str, str] | None) -> SQLCompiler:
        """Compiled for the asyncpg dialect; with ``schemas`` (a ``schema_translate_map``), each translated schema
        is left as SQLAlchemy's marker for :meth:`sql` to fill in."""
        options: dict[str, Any] = {"schema_translate_map": schemas} if schemas else {}
        compiled = cast(ClauseElement, self.statement).compile(dialect=_DIALECT, **options)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("a direct statement must be a SQL statement")
        return compiled

    def sql(self, schema: str | None) -> str:
        """The SQL text for a workspace's schema (``schema``), or for the platform's tables (None)."""
        if not self.tenant:
            return self._text
        if schema is None:
            raise ValueError("this statement reads a workspace's tables: run it on the workspace's connection")
        return self._text.replace(_MARKER, _DIALECT.identifier_preparer.quote_schema(schema))

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = []
        for name in self.order:
            value = params[name] if name in params else self.fixed[name]
            binder = self.binders.get(name)
            values.append(value if binder is None else binder(value))
        return values

    def rows(self, records: Sequence[asyncpg.Record]) -> list[tuple[Any, ...]]:
        if not self._read_any:
            return [tuple(record) for record in records]
        readers = self.readers
        return [
            tuple(value if reader is None else reader(value) for reader, value in zip(readers, record, strict=True))
            for record in records
        ]


class DirectConnection:
    """A checked-out pooled connection; ``schema`` is the workspace's schema on a tenant connection."""

    def __init__(self, raw: asyncpg.Connection, schema: str | None) -> None:
        self._raw = raw
        self._schema = schema

    async def fetch(self, query: DirectQuery, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        records = await self._raw.fetch(query.sql(self._schema), *query.arguments(params or {}))
        return query.rows(records)

    async def execute(self, query: DirectQuery, params: Mapping[str, Any] | None = None) -> None:
        await self._raw.execute(query.sql(self._schema), *query.arguments(params or {}))


@asynccontextmanager
async def direct_connection(engine: AsyncEngine, schema: str | None = None) -> AsyncIterator[DirectConnection]:
    """A connection of ``engine``'s pool for :class:`DirectQuery` statements (see the module docstring)."""
    pooled = await engine.raw_connection()
    try:
        yield DirectConnection(pooled.driver_connection, schema)
    except BaseException:
        # A connection the server ended says so in many ways (an admin shutdown error, an asyncpg protocol state
        # error, a closed transport), and a cancelled statement may leave it mid-protocol. The hot path's
        # statements do not fail otherwise, so any failure costs this connection rather than risk handing a
        # broken one to the next request (SQLAlchemy's execution did the same for disconnects).
        pooled.invalidate()
        raise
    finally:
        await greenlet_spawn(pooled.close)


async def fetch(
    db: AsyncSession | DirectConnection, query: DirectQuery, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """``query``'s rows on either kind of connection: a service that reads with one statement serves the hot path
    (a :class:`DirectConnection`) and callers inside a unit of work (their session) alike."""
    if isinstance(db, DirectConnection):
        return await db.fetch(query, params)
    return [tuple(row) for row in await db.execute(query.statement, params)]
