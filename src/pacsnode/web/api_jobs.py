"""REST API: send a study to a peer as a background job, and follow the jobs.

* ``POST /api/studies/{study_uid}/send`` with ``{"peer": "NAME"}`` (optionally
  ``"max_attempts"``): queues a job that C-STOREs every instance of the study to the peer
  (:mod:`pacsnode.dimse.send_job`); **202 Accepted** with the job and
  ``Location: /api/jobs/{id}``. A study not in the archive: **404**. A peer name neither
  the TOML file nor the index declares: **400** (the request body is wrong; 404 is kept for
  the resource the URL names, so that a client can tell the two apart).
* ``GET /api/jobs`` (newest first, ``{"items": [...], "offset", "limit", "more"}``;
  ``?state=``, ``?limit=`` (100, at most 1000), ``?offset=``) and
  ``GET /api/jobs/{id}``: state, attempts, sub-operation counts (PS3.4 C.4.2.3.1), the
  first failed instances with their reason, the last error. Unknown job: **404**.
* ``DELETE /api/jobs/{id}``: cancels a queued or running job (a running one stops before
  its next instance): **200** with the job; **409** if it has already ended; **404** if
  unknown.

Jobs live in the index, so they survive a restart and every process sharing the database
sees them; the runner (``app.state.jobs``, a :class:`pacsnode.dimse.job_runner.JobRunner`)
is told when a job is queued or cancelled here. Errors are ``application/problem+json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from pacsnode.core import jobs, peers
from pacsnode.core.archive import Archive
from pacsnode.core.jobs import Job, State
from pacsnode.index.levels import Level
from pacsnode.web.problems import Problem

router = APIRouter(tags=["Jobs"])

JOBS_PATH = "/api/jobs"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
StateName = Literal["queued", "running", "completed", "failed", "cancelled"]
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request (e.g. unknown peer), as application/problem+json"},
    404: {"description": "Not found, as application/problem+json"},
    409: {"description": "Conflict: the job has already ended, as application/problem+json"},
}


# -- bodies ---------------------------------------------------------------------------------


class SendRequest(BaseModel):
    """What to send the study to."""

    peer: str = Field(min_length=1, max_length=peers.MAX_NAME,
                      description="Name of a declared peer (`pacsnode peers list`).",
                      examples=["ORTHANC"])
    max_attempts: int = Field(jobs.DEFAULT_MAX_ATTEMPTS, ge=1, le=jobs.MAX_ATTEMPTS_LIMIT,
                              description="Attempts before the job is failed (an attempt "
                              "is retried when the association cannot be established or "
                              "some C-STOREs fail).")


class JobProgress(BaseModel):
    """C-STORE sub-operation counts of the current (or last) attempt (PS3.4 C.4.2.3.1)."""

    total: int = Field(description="Instances to send.")
    completed: int = Field(description="Sent with a Success status.")
    failed: int = Field(description="Failed (refused, not sent, or no response).")
    warning: int = Field(description="Sent with a Warning status (PS3.4 B.2.3).")
    remaining: int = Field(description="Not sent yet.")


class FailedInstanceModel(BaseModel):
    """A C-STORE sub-operation that failed."""

    sop_instance_uid: str
    reason: str


class JobModel(BaseModel):
    """A background job."""

    id: int
    kind: str = Field(description="`send`: a study sent to a peer with C-STORE; "
                      "`commitment`: a Storage Commitment report (N-EVENT-REPORT) to the "
                      "peer named by its AE title in `peer`.")
    state: StateName
    study_instance_uid: str
    peer: str = Field(description="The peer's name.")
    created_at: str = Field(description="UTC, ISO 8601.")
    updated_at: str
    started_at: str | None = Field(description="Start of the current or last attempt.")
    finished_at: str | None
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int
    next_attempt_at: str | None = Field(description="When a queued job is due (a retry "
                                        "waits for its back-off).")
    progress: JobProgress
    failed_instances: list[FailedInstanceModel] = Field(
        description=f"The first {jobs.MAX_FAILED_LIST} failed sub-operations of the "
        "current or last attempt.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    url: str = Field(description="This job's resource.")


class JobList(BaseModel):
    """A page of jobs, newest first."""

    items: list[JobModel]
    offset: int
    limit: int
    more: bool = Field(description="Whether jobs follow this page.")


def job_model(job: Job) -> JobModel:
    p = job.progress
    return JobModel(
        id=job.pk, kind=job.kind, state=job.state.value,
        study_instance_uid=job.study_instance_uid, peer=job.peer,
        created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
        finished_at=job.finished_at, attempts=job.attempts, max_attempts=job.max_attempts,
        next_attempt_at=job.next_attempt_at if job.state is State.QUEUED else None,
        progress=JobProgress(total=p.total, completed=p.completed, failed=p.failed,
                             warning=p.warning, remaining=max(0, p.total - p.done)),
        failed_instances=[FailedInstanceModel(sop_instance_uid=f.sop_instance_uid,
                                              reason=f.reason) for f in p.failures],
        last_error=job.last_error, url=f"{JOBS_PATH}/{job.pk}")


# -- helpers --------------------------------------------------------------------------------


def _archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


def _runner(request: Request) -> Any:
    """The app's JobRunner, or None (jobs are then only queued)."""
    return getattr(request.app.state, "jobs", None)


def _job_or_404(archive: Archive, job_id: int) -> Job:
    job = jobs.get(archive.engine, job_id)
    if job is None:
        raise Problem(404, f"no job {job_id}")
    return job


# -- routes ---------------------------------------------------------------------------------


@router.post("/api/studies/{study_uid}/send", status_code=202, response_model=JobModel,
             responses=PROBLEM_RESPONSES, summary="Send a study to a peer (background job)")
def send_study(study_uid: str, body: SendRequest, request: Request,
               response: Response) -> JobModel:
    """Queue a job sending every instance of the study to the peer with C-STORE (one
    association, each instance as stored when the peer accepts its transfer syntax). The
    answer is the queued job; follow it at its `Location`."""
    archive = _archive(request)
    settings = request.app.state.settings
    node = archive.find(study_uid)
    if node is None or node.level != Level.STUDY.value:
        raise Problem(404, f"no study {study_uid} in the archive")
    name = body.peer.strip()
    if peers.by_name(settings, name, archive.engine) is None:
        known = ", ".join(p.name for p in peers.all_peers(settings, archive.engine))
        raise Problem(400, f"unknown peer {name!r}: declare it first (`pacsnode peers add "
                      f"NAME AET HOST PORT` or [peers.NAME] in the configuration file); "
                      f"known peers: {known or 'none'}")
    job = jobs.create_send_job(archive.engine, study_uid, name,
                               max_attempts=body.max_attempts)
    runner = _runner(request)
    if runner is not None:
        runner.notify()
    response.headers["Location"] = f"{JOBS_PATH}/{job.pk}"
    return job_model(job)


@router.get(JOBS_PATH, response_model=JobList, responses=PROBLEM_RESPONSES,
            summary="List jobs, newest first")
def list_jobs(request: Request,
              state: Annotated[StateName | None,
                               Query(description="Only the jobs in this state.")] = None,
              limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
              offset: Annotated[int, Query(ge=0)] = 0) -> JobList:
    """The jobs, newest first, a page at a time (`more`: there are further pages)."""
    found = jobs.list_jobs(_archive(request).engine,
                           state=State(state) if state is not None else None,
                           limit=limit + 1, offset=offset)
    return JobList(items=[job_model(j) for j in found[:limit]], offset=offset, limit=limit,
                   more=len(found) > limit)


@router.get(JOBS_PATH + "/{job_id}", response_model=JobModel, responses=PROBLEM_RESPONSES,
            summary="One job")
def get_job(job_id: int, request: Request) -> JobModel:
    """A job's state, progress, failures and retries."""
    return job_model(_job_or_404(_archive(request), job_id))


@router.delete(JOBS_PATH + "/{job_id}", response_model=JobModel, responses=PROBLEM_RESPONSES,
               summary="Cancel a job")
def cancel_job(job_id: int, request: Request) -> JobModel:
    """Cancel a queued or running job (a running one stops before its next instance;
    instances already sent stay at the peer)."""
    archive = _archive(request)
    try:
        job = jobs.cancel(archive.engine, job_id)
    except jobs.AlreadyFinished as exc:
        raise Problem(409, f"job {job_id} cannot be cancelled: it is already "
                      f"{exc.job.state.value}") from exc
    if job is None:
        raise Problem(404, f"no job {job_id}")
    runner = _runner(request)
    if runner is not None:
        runner.cancel(job_id)
    return job_model(job)
