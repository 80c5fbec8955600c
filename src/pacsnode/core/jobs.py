"""Background jobs kept in the index (table ``job``): today one kind, ``send`` — a study sent
to a peer with C-STORE (:mod:`pacsnode.dimse.send_job` runs it, :mod:`pacsnode.dimse.job_runner`
schedules it). No network code here: creating, listing, cancelling, claiming and recording.

States: ``queued`` → ``running`` → ``completed`` | ``failed`` | ``cancelled`` (a running job
that will be retried goes back to ``queued``). The rules:

* **Claiming** (:func:`claim_next`): the oldest due queued job is taken by
  ``UPDATE job SET state='running', owner=… WHERE pk=… AND state='queued'``; only the runner
  whose update changed a row runs it. Under PostgreSQL's READ COMMITTED a second concurrent
  update of that row waits for the first to commit, then finds ``state`` no longer
  ``queued`` and changes nothing; SQLite writers are serialised. So several pacsnode
  processes sharing one database never run the same job twice at the same time.
* **Ownership**: every later write of the runner (progress, heartbeat, outcome) is
  conditional on ``state='running' AND owner=<its id>``. A write that changes nothing means
  the job was cancelled (or recovered by another process): the runner stops sending.
* **Retries**: an attempt that cannot establish the association, ends with failed
  sub-operations, loses its association or meets an unexpected error is retried, up to
  ``max_attempts`` attempts in all (default 3), after a back-off (10 s, 60 s, then 300 s);
  then the job is ``failed``. An unknown peer, or a study no longer in the archive, fails
  the job at once. Warning statuses count as success (PS3.4 B.2.3, C.4.2.3.1).
* **Restart**: a running job's runner writes a heartbeat every few seconds. A job still
  ``running`` whose heartbeat is older than ``stale_after`` (its process crashed or was
  killed) goes back to ``queued`` (:func:`recover_stale`, run when a runner starts and
  periodically): it is **re-run from the start** (the interrupted attempt counts, so a
  job interrupted on its last attempt is ``failed`` instead). Sending again an instance
  the peer already holds is harmless: a Storage SCP receiving a SOP Instance UID it has
  keeps one instance (it replaces or keeps the copy it has, possibly answering a warning
  status). A runner stopped in an orderly way puts its job back at once
  (:func:`release`), without using up an attempt.
* **Counts** (total, completed, failed, warning) are those of the current (or last) attempt,
  the sub-operation counts of PS3.4 C.4.2.3.1; the failed list keeps the first
  :data:`MAX_FAILED_LIST` failed SOP Instance UIDs with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import job as job_table

log = logging.getLogger(__name__)

KIND_SEND = "send"
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS_LIMIT = 20
DEFAULT_BACKOFF: tuple[float, ...] = (10.0, 60.0, 300.0)  # seconds after attempt 1, 2, 3+
MAX_FAILED_LIST = 100
MAX_ERROR_LENGTH = 2000
HEARTBEAT_S = 5.0  # how often a runner marks its running job alive
STALE_AFTER_S = 60.0  # a running job without heartbeat for this long is recovered

# Sub-operation status categories (the values of pynetdicom.status.STATUS_*).
SUCCESS, WARNING, FAILURE = "Success", "Warning", "Failure"


class State(StrEnum):
    """The state of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED})


class JobError(Exception):
    """A job operation that cannot be done (the message says why)."""


class AlreadyFinished(JobError):
    """The job has already ended (completed, failed or cancelled)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.pk} is already {job.state.value}")
        self.job = job


# -- time -----------------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """``moment`` as fixed-width UTC ISO 8601 text (compares as text in time order)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedInstance:
    """A sub-operation that failed: which instance, and why."""

    sop_instance_uid: str
    reason: str


@dataclass
class Progress:
    """The sub-operation counts of one attempt (PS3.4 C.4.2.3.1) and the first failures."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failures: list[FailedInstance] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.warning

    def record(self, sop_instance_uid: str, category: str, reason: str = "") -> None:
        """Count one sub-operation by its status category (Success, Warning, Failure)."""
        if category == SUCCESS:
            self.completed += 1
        elif category == WARNING:
            self.warning += 1
        else:
            self.failed += 1
            if len(self.failures) < MAX_FAILED_LIST:
                self.failures.append(FailedInstance(sop_instance_uid, reason or "failed"))

    def columns(self) -> dict[str, Any]:
        return {"total": self.total, "completed": self.completed, "failed": self.failed,
                "warning": self.warning, "failed_list": _dump_failures(self.failures)}


@dataclass(frozen=True)
class Job:
    """One job as the index has it."""

    pk: int
    kind: str
    state: State
    params: dict[str, Any]
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    max_attempts: int
    next_attempt_at: str
    owner: str | None
    heartbeat_at: str | None
    progress: Progress
    last_error: str | None

    @property
    def study_instance_uid(self) -> str:
        return str(self.params.get("study_instance_uid", ""))

    @property
    def peer(self) -> str:
        return str(self.params.get("peer", ""))

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _dump_failures(failures: Sequence[FailedInstance]) -> str:
    return json.dumps([{"sop_instance_uid": f.sop_instance_uid, "reason": f.reason}
                       for f in failures[:MAX_FAILED_LIST]])


def _load_failures(text: str | None) -> list[FailedInstance]:
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return []
    return [FailedInstance(str(i.get("sop_instance_uid", "")), str(i.get("reason", "")))
            for i in items if isinstance(i, dict)]


def _job(row: sa.RowMapping) -> Job:
    try:
        params = json.loads(row["params"])
    except ValueError:
        params = {}
    progress = Progress(int(row["total"]), int(row["completed"]), int(row["failed"]),
                        int(row["warning"]), _load_failures(row["failed_list"]))
    return Job(pk=int(row["pk"]), kind=str(row["kind"]), state=State(row["state"]),
               params=params if isinstance(params, dict) else {},
               created_at=row["created_at"], updated_at=row["updated_at"],
               started_at=row["started_at"], finished_at=row["finished_at"],
               attempts=int(row["attempts"]), max_attempts=int(row["max_attempts"]),
               next_attempt_at=row["next_attempt_at"], owner=row["owner"],
               heartbeat_at=row["heartbeat_at"], progress=progress,
               last_error=row["last_error"])


def _error_text(error: str | None) -> str | None:
    return error[:MAX_ERROR_LENGTH] if error else error


# -- the API side ---------------------------------------------------------------------------


def create_send_job(engine: Engine, study_instance_uid: str, peer: str, *,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
    """Queue a job sending study ``study_instance_uid`` to the peer named ``peer``, due now.
    The caller checks that both exist; the runner checks again when it runs the job."""
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise JobError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    now = iso(utc_now())
    params = json.dumps({"study_instance_uid": study_instance_uid, "peer": peer})
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.insert().values(
            kind=KIND_SEND, state=State.QUEUED.value, params=params, created_at=now,
            updated_at=now, started_at=None, finished_at=None, attempts=0,
            max_attempts=max_attempts, next_attempt_at=now, owner=None, heartbeat_at=None,
            total=0, completed=0, failed=0, warning=0, failed_list="[]", last_error=None))
        key = result.inserted_primary_key
        assert key is not None  # an INSERT of one row
        pk = int(key[0])
        row = conn.execute(sa.select(job_table).where(job_table.c.pk == pk)).mappings().one()
    log.info("job %d queued: send study %s to %s", pk, study_instance_uid, peer)
    return _job(row)


def get(engine: Engine, pk: int) -> Job | None:
    """The job ``pk``, if any."""
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(job_table).where(job_table.c.pk == pk)).mappings().first()
    return _job(row) if row is not None else None


def list_jobs(engine: Engine, *, state: State | None = None, limit: int = 100,
              offset: int = 0) -> list[Job]:
    """Jobs, newest first (optionally only those in ``state``)."""
    query = sa.select(job_table).order_by(job_table.c.pk.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(job_table.c.state == state.value)
    with read_transaction(engine) as conn:
        return [_job(r) for r in conn.execute(query).mappings()]


def cancel(engine: Engine, pk: int) -> Job | None:
    """Cancel a queued or running job (a running one stops before its next instance);
    ``None`` if there is no such job, :class:`AlreadyFinished` if it has ended."""
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        result = conn.execute(
            job_table.update()
            .where(job_table.c.pk == pk,
                   job_table.c.state.in_([State.QUEUED.value, State.RUNNING.value]))
            .values(state=State.CANCELLED.value, updated_at=now, finished_at=now))
        row = conn.execute(sa.select(job_table).where(job_table.c.pk == pk)).mappings().first()
    if row is None:
        return None
    job = _job(row)
    if result.rowcount != 1:
        raise AlreadyFinished(job)
    log.info("job %d cancelled", pk)
    return job


# -- the runner side ------------------------------------------------------------------------


def _owned(pk: int, owner: str, state: State = State.RUNNING) -> sa.ColumnElement[bool]:
    return sa.and_(job_table.c.pk == pk, job_table.c.state == state.value,
                   job_table.c.owner == owner)


def _claim(conn: Connection, pk: int, owner: str, now: str) -> bool:
    result = conn.execute(
        job_table.update()
        .where(job_table.c.pk == pk, job_table.c.state == State.QUEUED.value)
        .values(state=State.RUNNING.value, owner=owner, heartbeat_at=now, updated_at=now,
                started_at=now, finished_at=None, attempts=job_table.c.attempts + 1,
                total=0, completed=0, failed=0, warning=0, failed_list="[]"))
    return result.rowcount == 1


def claim_next(engine: Engine, owner: str, *, now: dt.datetime | None = None,
               candidates: int = 5) -> Job | None:
    """Take the oldest due queued job for ``owner`` (state ``running``, one more attempt,
    counts reset), or ``None``. Atomic: see the module documentation."""
    stamp = iso(now or utc_now())
    due = (sa.select(job_table.c.pk)
           .where(job_table.c.state == State.QUEUED.value,
                  job_table.c.next_attempt_at <= stamp)
           .order_by(job_table.c.next_attempt_at, job_table.c.pk).limit(candidates))
    with read_transaction(engine) as conn:  # the usual case, nothing due: no write lock
        if conn.execute(due.limit(1)).first() is None:
            return None
    with write_transaction(engine) as conn:
        for pk in list(conn.execute(due).scalars()):
            if _claim(conn, int(pk), owner, stamp):
                row = conn.execute(sa.select(job_table).where(job_table.c.pk == pk)
                                   ).mappings().one()
                return _job(row)
    return None


def heartbeat(engine: Engine, pk: int, owner: str) -> bool:
    """Mark the job alive; False if it is no longer ``owner``'s running job."""
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.update().where(_owned(pk, owner))
                              .values(heartbeat_at=now))
    return result.rowcount == 1


def record_progress(engine: Engine, pk: int, owner: str, progress: Progress) -> bool:
    """Write the counts (and a heartbeat); False if the job is no longer ``owner``'s running
    job (cancelled, or recovered by another process): the runner must stop."""
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.update().where(_owned(pk, owner))
                              .values(updated_at=now, heartbeat_at=now, **progress.columns()))
    return result.rowcount == 1


def _finish(engine: Engine, pk: int, owner: str, values: dict[str, Any],
            progress: Progress | None) -> bool:
    now = iso(utc_now())
    values = {"updated_at": now, **values}
    if progress is not None:
        values.update(progress.columns())
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.update().where(_owned(pk, owner)).values(**values))
    return result.rowcount == 1


def complete(engine: Engine, pk: int, owner: str, progress: Progress) -> bool:
    """The attempt sent everything (success or warning statuses): ``completed``."""
    now = iso(utc_now())
    done = _finish(engine, pk, owner, {"state": State.COMPLETED.value, "finished_at": now,
                                       "last_error": None}, progress)
    if done:
        log.info("job %d completed: %d sent, %d with warnings", pk, progress.completed,
                 progress.warning)
    return done


def fail(engine: Engine, pk: int, owner: str, error: str,
         progress: Progress | None = None) -> bool:
    """The job cannot succeed (unknown peer, study gone, attempts used up): ``failed``."""
    now = iso(utc_now())
    done = _finish(engine, pk, owner, {"state": State.FAILED.value, "finished_at": now,
                                       "last_error": _error_text(error)}, progress)
    if done:
        log.warning("job %d failed: %s", pk, error)
    return done


def backoff_delay(attempt: int, backoff: Sequence[float] = DEFAULT_BACKOFF) -> float:
    """Seconds to wait after attempt number ``attempt`` (1-based) failed."""
    if not backoff:
        return 0.0
    return float(backoff[min(max(attempt, 1), len(backoff)) - 1])


def retry_or_fail(engine: Engine, pk: int, owner: str, error: str,
                  progress: Progress | None = None, *,
                  backoff: Sequence[float] = DEFAULT_BACKOFF) -> State | None:
    """The attempt failed in a way another attempt may fix: back to ``queued`` after the
    back-off if attempts remain, else ``failed``. The new state, or ``None`` if the job was
    no longer ``owner``'s running job."""
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(job_table.c.attempts, job_table.c.max_attempts)
                           .where(job_table.c.pk == pk)).first()
    if row is None:
        return None
    attempts, max_attempts = int(row[0]), int(row[1])
    if attempts >= max_attempts:
        message = f"{error} (attempt {attempts} of {max_attempts}; giving up)"
        return State.FAILED if fail(engine, pk, owner, message, progress) else None
    delay = backoff_delay(attempts, backoff)
    when = iso(utc_now() + dt.timedelta(seconds=delay))
    message = f"{error} (attempt {attempts} of {max_attempts}; retrying)"
    if not _finish(engine, pk, owner, {"state": State.QUEUED.value, "owner": None,
                                       "heartbeat_at": None, "next_attempt_at": when,
                                       "last_error": _error_text(message)}, progress):
        return None
    log.warning("job %d attempt %d of %d failed, retry in %.0f s: %s", pk, attempts,
                max_attempts, delay, error)
    return State.QUEUED


def release(engine: Engine, pk: int, owner: str, progress: Progress | None = None) -> bool:
    """Put ``owner``'s running job back in the queue, due now, without using up an attempt
    (the runner is stopping)."""
    done = _finish(engine, pk, owner, {"state": State.QUEUED.value, "owner": None,
                                       "heartbeat_at": None,
                                       "next_attempt_at": iso(utc_now()),
                                       "attempts": job_table.c.attempts - 1}, progress)
    if done:
        log.info("job %d put back in the queue (runner stopping)", pk)
    return done


def record_cancelled(engine: Engine, pk: int, owner: str, progress: Progress) -> bool:
    """Write the final counts of a job cancelled while ``owner`` ran it."""
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.update().where(_owned(pk, owner, State.CANCELLED))
                              .values(updated_at=now, **progress.columns()))
    return result.rowcount == 1


def recover_stale(engine: Engine, *, stale_after: float = STALE_AFTER_S,
                  now: dt.datetime | None = None) -> list[int]:
    """Put back in the queue, due now, every running job whose heartbeat is older than
    ``stale_after`` seconds (its runner's process is gone): it will be re-run from the
    start. The interrupted attempt counts as used, so a job that keeps crashing its process
    ends ``failed`` after ``max_attempts``. Returns the jobs recovered."""
    moment = now or utc_now()
    limit = iso(moment - dt.timedelta(seconds=stale_after))
    stamp = iso(moment)
    stale = sa.and_(job_table.c.state == State.RUNNING.value,
                    sa.or_(job_table.c.heartbeat_at.is_(None),
                           job_table.c.heartbeat_at < limit))
    why = "interrupted: its pacsnode process stopped while running it"
    recovered: list[tuple[int, str]] = []
    with write_transaction(engine) as conn:
        rows = conn.execute(sa.select(job_table.c.pk, job_table.c.attempts,
                                      job_table.c.max_attempts).where(stale)).all()
        for pk, attempts, max_attempts in rows:
            last = int(attempts) >= int(max_attempts)
            values: dict[str, Any] = (
                {"state": State.FAILED.value, "finished_at": stamp,
                 "last_error": f"{why} (attempt {attempts} of {max_attempts}; giving up)"}
                if last else
                {"state": State.QUEUED.value, "next_attempt_at": stamp,
                 "last_error": f"{why}; re-run from the start"})
            result = conn.execute(job_table.update().where(job_table.c.pk == pk, stale)
                                  .values(owner=None, heartbeat_at=None, updated_at=stamp,
                                          **values))
            if result.rowcount == 1:
                recovered.append((int(pk), values["state"]))
    for pk, state in recovered:
        log.warning("job %d was left running by a stopped process: %s", pk,
                    "queued again" if state == State.QUEUED.value else "failed (no attempt "
                    "left)")
    return [pk for pk, _ in recovered]
