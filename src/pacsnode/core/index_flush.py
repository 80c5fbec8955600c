"""Periodic flushing of ingest's index commits, and recovery after a power cut (SQLite).

Acknowledged means durable: a C-STORE or STOW-RS success is answered only once the data
set's file is flushed to disk, linked to its name and the directory flushed. Flushing the
SQLite index as well, commit by commit, costs one more synchronous disk write per
instance — on slow disks the largest single wait of ingest. A serving node (``index_sync =
"periodic"``, the default) therefore commits ingest's index transactions with
``synchronous=NORMAL``: atomic and in order, but flushed only by a later flushed commit.

* :class:`IndexFlusher` makes such a flushed commit about once a second, when ingest committed
  anything since the last one, and records when: ``index_state.flushed_at`` is the time up to
  which every ingest commit is on disk (in WAL mode one flushed commit makes every earlier
  one durable too).
* ``index_state.clean`` is 0 while a server runs and 1 after it stopped cleanly (after its
  last flush).
* When a server starts and finds ``clean`` = 0 (a crash, a kill or a power cut), the files
  placed since ``flushed_at`` (less a margin for the clock) that the index does not know are
  indexed from the files themselves (:func:`pacsnode.core.consistency.recover_placed_since`)
  before anything is served. Re-indexing is what ingest does, so running it after a crash
  that lost nothing changes nothing.

PostgreSQL commits are always flushed (this module does nothing there); so is every other
write (deletes, worklist, MPPS, jobs), and ingest through the CLI or the Python API.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import index_state

if TYPE_CHECKING:
    from pacsnode.core.archive import Archive
    from pacsnode.core.consistency import Problem

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
# Files are compared with flushed_at by their change time: allow for a clock stepped back
# (NTP) and for the file system's coarse timestamps.
CLOCK_MARGIN_S = 60.0


def applies(archive: Archive) -> bool:
    """Whether this archive's ingest commits may skip the flush (SQLite, ``periodic``)."""
    return (archive.settings.index_sync == "periodic"
            and archive.engine.dialect.name == "sqlite")


def _state(archive: Archive) -> dict[str, float]:
    with read_transaction(archive.engine) as conn:
        return {name: value for name, value in conn.execute(
            sa.select(index_state.c.name, index_state.c.value))}


def _set(archive: Archive, **values: float) -> None:
    """A flushed commit (``synchronous=FULL``) of ``values``."""
    with write_transaction(archive.engine) as conn:
        for name, value in values.items():
            conn.execute(index_state.update().where(index_state.c.name == name)
                         .values(value=value))


class IndexFlusher:
    """Flushes an archive's ingest commits about once a second (see the module doc).

    ``owner``: the serving process that recovers at start and marks a clean stop (the
    ``serve`` process); receiving processes it started only flush their own commits.
    """

    def __init__(self, archive: Archive, *, owner: bool, interval: float = INTERVAL_S) -> None:
        self.archive = archive
        self.owner = owner
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flushed = 0  # the ingestor's unflushed_commits at the last flush

    def start(self) -> list[Problem]:
        """Recover if the last server did not stop cleanly (owner only), then let ingest
        skip flushes and start flushing periodically. Returns what recovery did. Does
        nothing where the archive flushes every commit (:func:`applies`)."""
        problems: list[Problem] = []
        if not applies(self.archive):
            return problems
        if self.owner:
            state = _state(self.archive)
            if state.get("clean", 1.0) != 1.0:
                since = state.get("flushed_at", 0.0) - CLOCK_MARGIN_S
                log.warning("the last server did not stop cleanly: indexing the files "
                            "placed since %s that the index lacks",
                            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)))
                from pacsnode.core.consistency import recover_placed_since

                problems = recover_placed_since(self.archive, since)
                log.warning("recovery done: %d file(s) indexed or removed", len(problems))
            _set(self.archive, clean=0.0, flushed_at=time.time())
        ingestor = self.archive.ingestor
        self._flushed = ingestor.unflushed_commits
        ingestor.flush_index = False
        self._thread = threading.Thread(target=self._run, name="pacsnode-index-flush",
                                        daemon=True)
        self._thread.start()
        return problems

    def flush(self) -> None:
        """Flush every ingest commit made so far, if any was not."""
        done = self.archive.ingestor.unflushed_commits
        if done == self._flushed:
            return
        # flushed_at is taken once this transaction holds the write lock: every commit
        # before it is in the WAL ahead of this one, and flushed with it.
        with write_transaction(self.archive.engine) as conn:
            conn.execute(index_state.update().where(index_state.c.name == "flushed_at")
                         .values(value=time.time()))
        self._flushed = done

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except sa.exc.SQLAlchemyError as exc:  # retried at the next interval
                log.error("cannot flush the index: %s", exc)

    def stop(self) -> None:
        """Stop flushing; flush what is left and let ingest flush every commit again; the
        owner marks the stop clean. Does nothing if :meth:`start` did not start."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self.archive.ingestor.flush_index = True
        self.flush()
        if self.owner:
            _set(self.archive, clean=1.0)
