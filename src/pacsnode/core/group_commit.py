"""Group commit for receivers that answer each data set on its own (C-STORE): the data sets
of concurrent associations that are ready while a commit is under way are stored together
(:meth:`pacsnode.core.ingest.Ingestor.commit_prepared`: their files fsynced at once, one
fsync per directory, one index transaction) instead of queueing for one fsync and one
index commit each. Each thread parses and checks its own data set first
(:meth:`~pacsnode.core.ingest.Ingestor.prepare_spooled`), while a commit may be under way.

Leader and followers, without a thread of its own: a thread that submits a data set when
no commit is under way stores it at once (so one association alone pays nothing); one that
submits during a commit waits, and when the commit ends the first waiting thread takes
every waiting data set — its own included — as the next batch. Each thread gets its own
result back only once its batch is durable and indexed, so a success still means what
PS3.4 B.2.3 and the module :mod:`pacsnode.core.ingest` say.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pacsnode.core.ingest import Expectation, Ingestor, Prepared, Spooled
from pacsnode.core.results import IngestResult, Outcome, RejectReason

MAX_BATCH = 64  # data sets per commit, at most


@dataclass
class _Slot:
    prepared: Prepared
    result: IngestResult | None = None
    done: bool = field(default=False)


class GroupCommitter:
    """Stores spooled data sets for many threads, batching those that arrive together."""

    def __init__(self, ingestor: Ingestor, *, max_batch: int = MAX_BATCH) -> None:
        self.ingestor = ingestor
        self.max_batch = max_batch
        self._changed = threading.Condition()
        self._waiting: list[_Slot] = []
        self._committing = False
        self.batches = 0  # how many commits; for tests and the log
        self.largest_batch = 0

    def ingest_spooled(self, spooled: Spooled, *, sending_aet: str = "",
                       expect: Expectation | None = None) -> IngestResult:
        """Store ``spooled`` as :meth:`Ingestor.ingest_spooled` does, possibly together
        with data sets other threads submit at the same time; returns its own result."""
        prepared = self.ingestor.prepare_spooled(spooled, expect or Expectation(), sending_aet)
        if isinstance(prepared, IngestResult):
            return prepared  # refused: nothing to commit
        slot = _Slot(prepared)
        with self._changed:
            self._waiting.append(slot)
            while not slot.done and self._committing:
                self._changed.wait()
            if slot.done:
                assert slot.result is not None
                return slot.result
            self._committing = True
            batch, self._waiting = (self._waiting[:self.max_batch],
                                    self._waiting[self.max_batch:])
        try:
            self._commit(batch)
        finally:
            with self._changed:
                self._committing = False
                self._changed.notify_all()
        assert slot.result is not None
        return slot.result

    def _commit(self, batch: list[_Slot]) -> None:
        error: BaseException | None = None
        try:
            results = self.ingestor.commit_prepared([s.prepared for s in batch])
        except BaseException as exc:  # every waiter must get an answer, whatever happened
            error = exc
            results = [IngestResult(Outcome.REJECTED, reason=RejectReason.OUT_OF_RESOURCES,
                                    detail=f"internal error: {type(exc).__name__}")
                       for _ in batch]
        with self._changed:
            for s, result in zip(batch, results, strict=True):
                s.result = result
                s.done = True
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(batch))
        if error is not None:
            raise error
