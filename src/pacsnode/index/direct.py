"""Hot-path statements run on the DBAPI cursor of the connection's transaction.

SQLAlchemy's execution layer costs about 20 µs per statement here, the SQL itself 2 µs; the
ingest of one instance runs six such statements. A :class:`Direct` statement is compiled by
SQLAlchemy once per dialect and set of parameter names (so the SQL is still SQLAlchemy's,
the same for SQLite and PostgreSQL) and then executed on the DBAPI cursor, inside the
transaction the caller began with SQLAlchemy. Only for statements whose columns need no type
processing (integers, floats, text); a DBAPI error is raised as SQLAlchemy's own
:class:`~sqlalchemy.exc.DBAPIError` subclass, so callers handle it as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: list[str] | None  # parameter names in order, for a positional paramstyle
    fixed: dict[str, Any]


class Direct:
    """One statement, compiled lazily per (dialect, parameter names)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _sql(self, conn: Connection, params: Mapping[str, Any]) -> _Compiled:
        key = (conn.dialect.name, tuple(params))
        found = self._compiled.get(key)
        if found is None:
            compiled = self.statement.compile(dialect=conn.dialect, column_keys=list(params))
            assert isinstance(compiled, SQLCompiler)
            positions = list(compiled.positiontup or ()) if compiled.positional else None
            # values written into the statement itself (the 1 of "n + 1")
            fixed = {name: bind.value for name, bind in compiled.binds.items()
                     if name not in params}
            found = _Compiled(compiled.string, positions, fixed)
            self._compiled[key] = found
        return found

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run with ``params``; returns the (open) DBAPI cursor."""
        compiled = self._sql(conn, params)
        sql, positions, fixed = compiled.sql, compiled.positions, compiled.fixed
        args: Any
        if positions is not None:
            args = [params[n] if n in params else fixed[n] for n in positions]
        else:
            args = {**fixed, **params} if fixed else params
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, args)
        except dbapi_error as exc:
            cursor.close()
            raise sqlalchemy.exc.DBAPIError.instance(
                sql, args, exc, dbapi_error, dialect=conn.dialect) from exc
        return cursor

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict by column label, or ``None``."""
        cursor = self.execute(conn, params)
        try:
            row = cursor.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cursor.description], row, strict=True))
        finally:
            cursor.close()

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run a statement whose result is not needed."""
        self.execute(conn, params).close()
