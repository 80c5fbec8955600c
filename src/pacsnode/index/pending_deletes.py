"""The files of deleted instances that are not yet removed: recorded in the delete's own
index transaction, dropped once the files are gone.

A delete commits the removal of the index rows first (nothing may refer to a missing file),
then removes the files. Without a record, a file left by a crash between the two would be
taken for a complete instance whose index commit was lost, and ``check --repair`` would
adopt it: the deleted instance would come back. With it, the file is known to be deleted
and is removed instead (:func:`pacsnode.core.archive.Archive.finish_deletes`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pacsnode.index.engine import read_transaction
from pacsnode.index.schema import instance, pending_delete

CHUNK = 500  # keys per statement (well under SQLite's bound on variables)


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start:start + CHUNK]


def record(conn: Connection, keys: Sequence[str]) -> None:
    """Record, in the caller's delete transaction, that the files ``keys`` are to go."""
    now = time.time()
    forget(conn, keys)  # a key may be recorded already, by an earlier, interrupted delete
    for chunk in _chunks(keys):
        conn.execute(pending_delete.insert(),
                     [{"storage_key": key, "deleted_at": now} for key in chunk])


def forget(conn: Connection, keys: Sequence[str]) -> None:
    """The files ``keys`` are gone (or stored again): drop their records."""
    for chunk in _chunks(keys):
        conn.execute(pending_delete.delete().where(pending_delete.c.storage_key.in_(chunk)))


def pending(engine: Engine) -> list[str]:
    """Every recorded key (a few, unless a large delete was interrupted)."""
    with read_transaction(engine) as conn:
        return list(conn.execute(sa.select(pending_delete.c.storage_key)
                                 .order_by(pending_delete.c.storage_key)).scalars())


def unindexed(engine: Engine, keys: Sequence[str]) -> list[str]:
    """The ``keys`` no instance row refers to: those files may go. (A key is indexed again
    when the same content of the same instance was stored after its delete.)"""
    indexed: set[str] = set()
    with read_transaction(engine) as conn:
        for chunk in _chunks(keys):
            indexed.update(conn.execute(sa.select(instance.c.storage_key)
                                        .where(instance.c.storage_key.in_(chunk))).scalars())
    return [key for key in keys if key not in indexed]
