"""The job runner of a pacsnode process: a daemon thread taking due jobs from the index
(:func:`pacsnode.core.jobs.claim_next`) and running them one at a time
(:mod:`pacsnode.dimse.send_job`; Storage Commitment reports:
:mod:`pacsnode.dimse.commitment_report`).

* It polls every ``poll_interval`` seconds (1 s), and at once when :meth:`JobRunner.notify`
  says a job was queued in this process.
* When it starts, and then every ``stale_after / 2`` seconds, jobs left ``running`` by a
  process that stopped (no heartbeat for ``stale_after`` seconds, 60 s) are queued again and
  re-run from the start (:func:`pacsnode.core.jobs.recover_stale`). While it runs a job, a
  second thread writes the job's heartbeat every ``heartbeat_interval`` seconds (5 s), so
  that a live job is never taken for a crashed one, even while one C-STORE takes long.
* Several processes sharing one database may each run a runner: a job is claimed by one
  only (see :mod:`pacsnode.core.jobs`).
* :meth:`JobRunner.stop` stops before the next instance and puts the running job back in
  the queue, without using up an attempt. A job whose thread is still blocked (connecting,
  waiting for a C-STORE response) when the timeout ends stays ``running`` until another
  runner recovers it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence

from pacsnode.config import Settings
from pacsnode.core import jobs
from pacsnode.core.archive import Archive
from pacsnode.core.commitment_jobs import KIND_COMMITMENT
from pacsnode.core.jobs import Job, State
from pacsnode.dimse import transport_tuning
from pacsnode.dimse.commitment_report import run_commitment_job
from pacsnode.dimse.send_job import PROGRESS_EVERY, PROGRESS_INTERVAL_S, run_send_job

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0


class JobRunner:
    """Runs the jobs of ``archive``'s index, one at a time, in a daemon thread."""

    def __init__(self, archive: Archive, settings: Settings | None = None, *,
                 poll_interval: float = POLL_INTERVAL_S,
                 backoff: Sequence[float] = jobs.DEFAULT_BACKOFF,
                 stale_after: float = jobs.STALE_AFTER_S,
                 heartbeat_interval: float = jobs.HEARTBEAT_S,
                 progress_interval: float = PROGRESS_INTERVAL_S,
                 progress_every: int = PROGRESS_EVERY) -> None:
        self.archive = archive
        self.settings = settings or archive.settings
        self.poll_interval = poll_interval
        self.backoff = tuple(backoff)
        self.stale_after = stale_after
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self.progress_every = progress_every
        # Who runs a job (the ``owner`` column): unique per runner, readable by people.
        self.owner = f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._current: int | None = None
        self._cancelled: set[int] = set()
        self._threads: list[threading.Thread] = []

    # -- control -----------------------------------------------------------------------------

    def start(self) -> None:
        """Recover jobs left running by a stopped process, then start the threads."""
        if self._threads:
            raise RuntimeError("the job runner is already started")
        transport_tuning.install(self.settings.max_pdu_size)  # TCP_NODELAY and friends
        self._recover()
        self._threads = [
            threading.Thread(target=self._loop, name="pacsnode-jobs", daemon=True),
            threading.Thread(target=self._beat, name="pacsnode-jobs-heartbeat", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("job runner %s started", self.owner)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop (the running job, if any, goes back to the queue before its next instance);
        True if the threads ended within ``timeout`` seconds."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("job runner %s: %s still busy after %.0f s (job %s left running)",
                        self.owner, ", ".join(alive), timeout, self._current)
            return False
        log.info("job runner %s stopped", self.owner)
        return True

    def notify(self) -> None:
        """A job was queued: look for it now rather than at the next poll."""
        self._wake.set()

    def cancel(self, pk: int) -> None:
        """Job ``pk`` was cancelled (:func:`pacsnode.core.jobs.cancel`): if this runner is
        running it, stop before the next instance (the row is checked too, but less
        often)."""
        with self._lock:
            if self._current == pk:
                self._cancelled.add(pk)

    @property
    def current_job(self) -> int | None:
        """The job being run now, if any."""
        return self._current

    @property
    def is_running(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._stop.is_set()

    # -- the threads -------------------------------------------------------------------------

    def _recover(self) -> None:
        try:
            jobs.recover_stale(self.archive.engine, stale_after=self.stale_after)
        except Exception:  # the index may be briefly unavailable; try again later
            log.exception("job runner: recovering interrupted jobs failed")

    def _loop(self) -> None:
        next_recovery = time.monotonic() + self.stale_after / 2
        while not self._stop.is_set():
            if time.monotonic() >= next_recovery:
                self._recover()
                next_recovery = time.monotonic() + self.stale_after / 2
            self._wake.clear()
            try:
                job = jobs.claim_next(self.archive.engine, self.owner)
            except Exception:
                log.exception("job runner: cannot read the job queue")
                job = None
            if job is None:
                self._wake.wait(self.poll_interval)
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            self._current = job.pk
            self._cancelled.discard(job.pk)
        what = (f"report to {job.peer}" if job.kind == KIND_COMMITMENT else
                f"study {job.study_instance_uid} to {job.peer}")
        log.info("job %d (%s, attempt %d of %d) started: %s", job.pk, job.kind,
                 job.attempts, job.max_attempts, what)
        try:
            if job.kind == KIND_COMMITMENT:  # a Storage Commitment report (PS3.4 J.3.3)
                run_commitment_job(self.archive, self.settings, job, self.owner,
                                   backoff=self.backoff)
            else:
                run_send_job(self.archive, self.settings, job, self.owner,
                             cancelled=lambda: job.pk in self._cancelled,
                             stopping=self._stop.is_set, backoff=self.backoff,
                             progress_interval=self.progress_interval,
                             progress_every=self.progress_every)
        except Exception as exc:  # the outcome could not be recorded (index unavailable)
            log.exception("job %d: unexpected error", job.pk)
            try:
                jobs.retry_or_fail(self.archive.engine, job.pk, self.owner,
                                   f"internal error: {type(exc).__name__}: {exc}",
                                   backoff=self.backoff)
            except Exception:
                log.exception("job %d: cannot record the error; it will be recovered when "
                              "its heartbeat is stale", job.pk)
        finally:
            with self._lock:
                self._current = None
                self._cancelled.discard(job.pk)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            pk = self._current
            if pk is None:
                continue
            try:
                if not jobs.heartbeat(self.archive.engine, pk, self.owner):
                    current = jobs.get(self.archive.engine, pk)
                    if current is not None and current.state is State.CANCELLED:
                        self.cancel(pk)
            except Exception:
                log.warning("job %d: heartbeat failed", pk, exc_info=True)
