"""The instances a retrieve (C-MOVE, C-GET, and later WADO) sends, read from the index in one
snapshot: their number, the stored transfer syntaxes per SOP class, and the instances
themselves, streamed in batches so memory stays bounded whatever their number."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition
from pacsnode.index.schema import instance
from pacsnode.index.search import FETCH_BATCH, compile_search


@dataclass(frozen=True)
class StoredInstance:
    """What a sub-operation needs to know of one instance."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    storage_key: str


@dataclass
class Selection:
    """The instances a retrieve sends, read in one snapshot of the index: their number,
    the stored transfer syntaxes per SOP class, and the instances themselves (streamed)."""

    count: int
    syntaxes: dict[str, set[str]]
    instances: Iterator[StoredInstance]


@contextlib.contextmanager
def select_instances(engine: Engine, keys: dict[int, Condition]) -> Iterator[Selection]:
    """Open a read snapshot (REPEATABLE READ on PostgreSQL, a read transaction on SQLite)
    and select the instances matching ``keys``; the instances are fetched in batches as the
    iterator is consumed, until the context ends."""
    plan = compile_search(Level.IMAGE, keys)
    if plan.json_filters or plan.unmatchable:  # only index columns are used as keys
        raise RuntimeError("retrieve keys must all be index columns")
    stmt = plan.statement
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            count = conn.execute(stmt.with_only_columns(sa.func.count()).order_by(None)
                                 ).scalar_one()
            syntaxes: dict[str, set[str]] = {}
            pairs = stmt.with_only_columns(instance.c.sop_class_uid,
                                           instance.c.transfer_syntax_uid
                                           ).distinct().order_by(None)
            for sop_class, syntax in conn.execute(pairs):
                syntaxes.setdefault(str(sop_class), set()).add(str(syntax))

            def stream() -> Generator[StoredInstance, None, None]:
                rows = conn.execution_options(yield_per=FETCH_BATCH).execute(
                    stmt.with_only_columns(instance.c.sop_instance_uid,
                                           instance.c.sop_class_uid,
                                           instance.c.transfer_syntax_uid,
                                           instance.c.storage_key))
                for uid, sop_class, syntax, key in rows:
                    yield StoredInstance(str(uid), str(sop_class), str(syntax), str(key))

            instances = stream()
            try:
                yield Selection(int(count), syntaxes, instances)
            finally:
                instances.close()
