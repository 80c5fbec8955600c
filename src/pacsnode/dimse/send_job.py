"""Running one ``send`` job (:mod:`pacsnode.core.jobs`): a study of the archive sent to a
peer with C-STORE (PS3.4 Annex B, Storage Service Class, pacsnode as SCU) — the same
sub-operations a C-MOVE to that peer performs (PS3.4 C.4.2.3.1), started from the REST API
instead of a C-MOVE request.

* The peer is looked up by name (:func:`pacsnode.core.peers.by_name`: the TOML
  ``[peers.NAME]`` entry, else the index's); an unknown peer fails the job at once, as does
  a study no longer in the archive.
* The study's instances are read from the index in one snapshot
  (:func:`pacsnode.core.retrieve.select_instances`) and sent over **one association**, our
  AE title calling, proposing per SOP class each stored transfer syntax and both
  uncompressed ones (:func:`pacsnode.dimse.retrieve_scp.propose_contexts`); each instance
  goes as stored when its transfer syntax was accepted, else converted losslessly
  (:class:`pacsnode.dimse.store_suboperations.StoreSender`). The C-STOREs have priority
  MEDIUM and no Move Originator (PS3.7 9.1.1.1). ``TCP_NODELAY`` is set on the socket by
  :mod:`pacsnode.dimse.transport_tuning`.
* Progress (total, completed, failed, warning, the first failed SOP Instance UIDs) is
  written to the job row every :data:`PROGRESS_INTERVAL_S` seconds or every
  :data:`PROGRESS_EVERY` instances; a cancellation (in this process, or seen in the row)
  or a stopping runner ends the run before the next instance, and the association is
  released (A-RELEASE, PS3.8 7.2) in every case.
* Outcome: every sub-operation Success or Warning (PS3.4 B.2.3) → ``completed``; an
  association that cannot be established, failed sub-operations or an unexpected error →
  retried after a back-off, then ``failed`` (:func:`pacsnode.core.jobs.retry_or_fail`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from enum import Enum

from pynetdicom.association import Association
from pynetdicom.status import STATUS_FAILURE
from sqlalchemy.engine import Engine

from pacsnode.config import Peer, Settings
from pacsnode.core import jobs, peers
from pacsnode.core.archive import Archive
from pacsnode.core.jobs import Job, Progress, State
from pacsnode.core.retrieve import Selection, select_instances
from pacsnode.dimse.reactor import pause_reactor
from pacsnode.dimse.retrieve_scp import MAX_CONTEXTS, RetrieveService, propose_contexts
from pacsnode.dimse.store_suboperations import StoreSender
from pacsnode.index.matching import Condition, Kind

log = logging.getLogger(__name__)

STUDY_INSTANCE_UID = 0x0020000D
PRIORITY_MEDIUM = 0  # C-STORE Priority (PS3.7 9.1.1.1): 0 MEDIUM, 1 HIGH, 2 LOW
PROGRESS_INTERVAL_S = 0.5
PROGRESS_EVERY = 100


class _Stop(Enum):
    """Why the sending loop ended early."""

    CANCELLED = "cancelled"
    STOPPING = "stopping"
    LOST = "lost"  # the row is no longer ours and running


def _never() -> bool:
    return False


class SendJob:
    """One attempt at one send job, claimed by the runner ``owner``."""

    def __init__(self, archive: Archive, settings: Settings, job: Job, owner: str, *,
                 cancelled: Callable[[], bool] = _never,
                 stopping: Callable[[], bool] = _never,
                 backoff: Sequence[float] = jobs.DEFAULT_BACKOFF,
                 progress_interval: float = PROGRESS_INTERVAL_S,
                 progress_every: int = PROGRESS_EVERY) -> None:
        self.archive = archive
        self.settings = settings
        self.job = job
        self.owner = owner
        self.cancelled = cancelled
        self.stopping = stopping
        self.backoff = tuple(backoff)
        self.progress_interval = progress_interval
        self.progress_every = max(1, progress_every)
        self.progress = Progress()
        self.started = time.monotonic()
        self.destination = job.peer

    @property
    def engine(self) -> Engine:
        return self.archive.engine

    # -- the attempt -------------------------------------------------------------------------

    def run(self) -> State | None:
        """Run the attempt to its outcome, recorded in the job row; the job's new state
        (``None`` if the job stopped being this runner's, e.g. recovered by another
        process)."""
        job = self.job
        if job.kind != jobs.KIND_SEND:
            return self._fail(f"unknown job kind {job.kind!r}")
        peer = peers.by_name(self.settings, job.peer, self.engine)
        if peer is None:
            known = ", ".join(p.name for p in peers.all_peers(self.settings, self.engine))
            return self._fail(f"unknown peer {job.peer!r} (known peers: {known or 'none'}; "
                              "add one with `pacsnode peers add`)")
        self.destination = f"{peer.name} ({peer.aet}@{peer.host}:{peer.port})"
        keys = {STUDY_INSTANCE_UID: Condition(Kind.SINGLE, "UI",
                                              values=(job.study_instance_uid,))}
        try:
            with select_instances(self.engine, keys) as selection:
                return self._send_selection(selection, peer)
        except Exception as exc:  # the index, the store, pynetdicom: retry later
            log.exception("job %d: send to %s failed", job.pk, self.destination)
            return self._retry(f"internal error: {type(exc).__name__}: {exc}")

    def _send_selection(self, selection: Selection, peer: Peer) -> State | None:
        if selection.count == 0:
            return self._fail(f"study {self.job.study_instance_uid} is not in the archive")
        self.progress.total = selection.count
        if not jobs.record_progress(self.engine, self.job.pk, self.owner, self.progress):
            return self._ended_elsewhere()
        contexts, left_out = propose_contexts(selection.syntaxes)
        if left_out:
            log.warning("job %d: more than %d SOP classes, no presentation context for %d",
                        self.job.pk, MAX_CONTEXTS, len(left_out))
        try:
            assoc = RetrieveService(self.archive, self.settings).associate(peer, contexts)
        except ConnectionError as exc:
            return self._retry(str(exc))
        try:
            sender = StoreSender(self.archive, assoc, other_thread=True,
                                 priority=PRIORITY_MEDIUM)
            with sender.running():
                stop = self._send_each(selection, sender)
        finally:
            _release(assoc)
        return self._outcome(stop, sender.converted)

    def _send_each(self, selection: Selection, sender: StoreSender) -> _Stop | None:
        """The C-STOREs, progress written as it goes; why they stopped early, if they did."""
        progress = self.progress
        last_write, last_count = time.monotonic(), 0
        for item in selection.instances:
            if self.cancelled():
                return _Stop.CANCELLED
            if self.stopping():
                return _Stop.STOPPING
            category, reason = sender.send(item)
            progress.record(item.sop_instance_uid, category, reason)
            if category == STATUS_FAILURE:
                log.debug("job %d: %s failed: %s", self.job.pk, item.sop_instance_uid, reason)
            now = time.monotonic()
            if progress.done < progress.total and (
                    now - last_write >= self.progress_interval
                    or progress.done - last_count >= self.progress_every):
                last_write, last_count = now, progress.done
                if not jobs.record_progress(self.engine, self.job.pk, self.owner, progress):
                    return _Stop.LOST
        return None

    # -- outcomes ----------------------------------------------------------------------------

    def _outcome(self, stop: _Stop | None, converted: int) -> State | None:
        p = self.progress
        extra = f", {converted} converted" if converted else ""
        log.info("job %d: study %s to %s: %d completed, %d failed, %d warning of %d%s%s in "
                 "%.2f s", self.job.pk, self.job.study_instance_uid, self.destination,
                 p.completed, p.failed, p.warning, p.total, extra,
                 f" ({stop.value})" if stop else "", time.monotonic() - self.started)
        if stop is _Stop.CANCELLED or stop is _Stop.LOST:
            return self._ended_elsewhere()
        if stop is _Stop.STOPPING:
            jobs.release(self.engine, self.job.pk, self.owner, p)
            return State.QUEUED
        if p.failed:
            first = p.failures[0].reason if p.failures else "failed"
            return self._retry(f"{p.failed} of {p.total} C-STORE sub-operations failed "
                               f"(first: {first})")
        if jobs.complete(self.engine, self.job.pk, self.owner, p):
            return State.COMPLETED
        return self._ended_elsewhere()

    def _ended_elsewhere(self) -> State | None:
        """The row is no longer this runner's running job: cancelled (record the final
        counts) or recovered by another process (leave it alone)."""
        if jobs.record_cancelled(self.engine, self.job.pk, self.owner, self.progress):
            return State.CANCELLED
        current = jobs.get(self.engine, self.job.pk)
        if current is not None and current.state is State.CANCELLED:
            return State.CANCELLED
        log.warning("job %d is no longer run by this process (%s); stopped", self.job.pk,
                    current.state.value if current is not None else "deleted")
        return None

    def _fail(self, error: str) -> State | None:
        if jobs.fail(self.engine, self.job.pk, self.owner, error, self.progress):
            return State.FAILED
        return self._ended_elsewhere()

    def _retry(self, error: str) -> State | None:
        state = jobs.retry_or_fail(self.engine, self.job.pk, self.owner, error, self.progress,
                                   backoff=self.backoff)
        return state if state is not None else self._ended_elsewhere()


def _release(assoc: Association) -> None:
    """End the association: A-RELEASE if it is up (the reactor parked first, as the
    C-MOVE sender does), else abort what is left of it."""
    try:
        if assoc.is_established:
            pause_reactor(assoc)
            assoc.release()
        elif assoc.is_alive():
            assoc.abort()
    except Exception:  # a peer vanishing during release must not lose the outcome
        log.warning("releasing the association with %s failed", assoc.acceptor.ae_title,
                    exc_info=True)


def run_send_job(archive: Archive, settings: Settings, job: Job, owner: str, *,
                 cancelled: Callable[[], bool] = _never,
                 stopping: Callable[[], bool] = _never,
                 backoff: Sequence[float] = jobs.DEFAULT_BACKOFF,
                 progress_interval: float = PROGRESS_INTERVAL_S,
                 progress_every: int = PROGRESS_EVERY) -> State | None:
    """Run one attempt of the claimed send ``job`` (see the module documentation); the
    job's new state, or ``None`` if it stopped being ``owner``'s."""
    return SendJob(archive, settings, job, owner, cancelled=cancelled, stopping=stopping,
                   backoff=backoff, progress_interval=progress_interval,
                   progress_every=progress_every).run()
