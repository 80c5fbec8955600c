"""Storage Commitment reports as jobs of the job table (:mod:`pacsnode.core.jobs`, kind
``commitment``), so that a report not delivered yet survives a restart and is retried.

* The N-ACTION handler creates the job already ``running``, owned by the process that holds
  the association, and tries the report on that association
  (:mod:`pacsnode.dimse.commitment_scp`). Delivered: ``completed``. Association gone:
  :func:`pacsnode.core.jobs.release` puts it back in the queue, due now, and a job runner
  (:mod:`pacsnode.dimse.commitment_report`) sends it on a new association. A process that
  dies meanwhile leaves it ``running`` without heartbeat: it is recovered and queued again
  (:func:`pacsnode.core.jobs.recover_stale`).
* ``params`` (JSON): ``transaction_uid``, ``references`` (pairs of SOP Class and Instance
  UIDs), ``peer`` (the requester's AE title: the report goes to the peer declared with that
  AE title), ``duplicate`` (the Transaction UID was already pending: every instance fails
  with 0131H). The decision itself is taken when the report is sent, so it says what the
  archive holds then.
* Counts: ``total`` references, ``completed`` committed, ``failed`` not committed (with the
  Failure Reason in the failed list).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.core import jobs
from pacsnode.core.commitment import REASON_TEXT, Report, Request
from pacsnode.core.jobs import FailedInstance, Job, Progress, State
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import job as job_table

log = logging.getLogger(__name__)

KIND_COMMITMENT = "commitment"
# A report is worth retrying longer than a send: with the runner's default back-off
# (10 s, 60 s, then 300 s) ten attempts span about 36 minutes.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class PendingReport:
    """What a commitment job has to report, and to whom."""

    request: Request
    requester_aet: str
    duplicate: bool


def create(engine: Engine, request: Request, requester_aet: str, *, duplicate: bool = False,
           owner: str | None = None, max_attempts: int = MAX_ATTEMPTS) -> Job:
    """Record a commitment report to deliver: ``running`` for ``owner`` (who tries the
    requester's association first), or ``queued`` and due now without one."""
    now = jobs.iso(jobs.utc_now())
    params = json.dumps({**request.to_json(), "peer": requester_aet.strip(),
                         "duplicate": duplicate})
    running = owner is not None
    with write_transaction(engine) as conn:
        result = conn.execute(job_table.insert().values(
            kind=KIND_COMMITMENT,
            state=(State.RUNNING if running else State.QUEUED).value, params=params,
            created_at=now, updated_at=now, started_at=now if running else None,
            finished_at=None, attempts=1 if running else 0, max_attempts=max_attempts,
            next_attempt_at=now, owner=owner, heartbeat_at=now if running else None,
            total=len(request.references), completed=0, failed=0, warning=0,
            failed_list="[]", last_error=None))
        key = result.inserted_primary_key
        assert key is not None  # an INSERT of one row
    job = jobs.get(engine, int(key[0]))
    assert job is not None
    log.info("job %d: storage commitment %s from %s (%d instances)", job.pk,
             request.transaction_uid, requester_aet, len(request.references))
    return job


def pending_report(job: Job) -> PendingReport:
    """The request of a commitment job (KeyError/ValueError if its params are damaged)."""
    return PendingReport(Request.from_json(job.params), str(job.params["peer"]),
                         bool(job.params.get("duplicate", False)))


def is_pending(engine: Engine, transaction_uid: str) -> bool:
    """Whether a commitment request with this Transaction UID awaits its report (a queued
    or running job): a new request reusing it is a duplicate (PS3.3 C.14.1.1, 0131H)."""
    query = sa.select(job_table.c.params).where(
        job_table.c.kind == KIND_COMMITMENT,
        job_table.c.state.in_([State.QUEUED.value, State.RUNNING.value]))
    with read_transaction(engine) as conn:
        for (text,) in conn.execute(query):
            try:
                if json.loads(text).get("transaction_uid") == transaction_uid:
                    return True
            except (ValueError, AttributeError):
                continue
    return False


def progress_of(report: Report) -> Progress:
    """The job counts of a report: committed as completed, the failures with their reason."""
    progress = Progress(total=len(report.committed) + len(report.failed),
                        completed=len(report.committed), failed=len(report.failed))
    progress.failures = [
        FailedInstance(ref.sop_instance_uid, f"0x{reason:04X} {REASON_TEXT.get(reason, '')}")
        for ref, reason in report.failed[:jobs.MAX_FAILED_LIST]]
    return progress
