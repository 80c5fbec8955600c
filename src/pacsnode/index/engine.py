"""Opening the index database: SQLite (the embedded default) or PostgreSQL, same code.

SQLite runs in WAL mode with ``synchronous=FULL`` so a committed transaction survives a power
cut, and write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the
lock instead of failing on a lock upgrade. A serving node's ingest commits may skip the flush
(``write_transaction(flush=False)``, see :mod:`pacsnode.core.index_flush`): what a C-STORE
success promises then rests on the instance's file, which is always flushed first.

SQLite writers also queue on a :class:`WriteGate` first (a thread lock plus ``flock`` on a lock
file beside the database, for other processes): SQLite's own busy handler polls with sleeps
of up to 100 ms, which would stall concurrent associations; a blocked ``flock`` wakes as
soon as the lock is released.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

WRITE_OPTION = "pacsnode_write"


class WriteGate:
    """Serialises write transactions on one SQLite database across threads and processes."""

    def __init__(self, database: str) -> None:
        self._thread_lock = threading.Lock()
        self._path = database + ".writelock"
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def create_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url`` with pacsnode's connection settings."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=pool_size,
                                  max_overflow=64, connect_args={"check_same_thread": False,
                                                                 "timeout": 60})
        _configure_sqlite(engine)
        database = engine.url.database
        if database and database != ":memory:":
            _GATES[engine] = WriteGate(database)
    else:
        engine = sa.create_engine(url, pool_size=pool_size, max_overflow=64,
                                  pool_pre_ping=True)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")
        # DICOM matching is case-sensitive except for person names, whose match columns are
        # upper-cased (pacsnode.index.matching); SQLite's LIKE is not, unless told.
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: Engine, *, flush: bool = True) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error.

    ``flush=False`` (SQLite only; PostgreSQL always flushes): the commit is atomic but not
    flushed to disk (``synchronous=NORMAL`` for this transaction): a power cut may undo it
    until a later flushed commit (:mod:`pacsnode.core.index_flush`). Only ingest uses it,
    and only where the data set's file is durable and the index can be completed from it.
    """
    gate = _GATES.get(engine)
    with gate.held() if gate is not None else nullcontext(), \
            engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        relaxed = not flush and conn.dialect.name == "sqlite"
        if relaxed:  # on the DBAPI connection: SQLAlchemy would begin a transaction
            conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
        try:
            with conn.begin():
                yield conn
        finally:
            if relaxed and not conn.invalidated:
                conn.connection.dbapi_connection.execute("PRAGMA synchronous=FULL")  # type: ignore[union-attr]


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction (a consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn
