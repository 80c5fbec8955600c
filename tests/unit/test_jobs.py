"""Send jobs (:mod:`pacsnode.core.jobs`, :mod:`pacsnode.dimse.send_job`,
:mod:`pacsnode.dimse.job_runner`, :mod:`pacsnode.web.api_jobs`) run in-process against a
real DCMTK storescp, on both index backends.

What must hold: a job sends exactly the study's instances, each data set byte-identical to
the one ingested (storescp ``+B`` writes what it receives), and ends ``completed`` with the
right counts; an unknown peer fails at once; an unreachable peer or failed sub-operations
are retried with back-off, then ``failed``, with the failed instances listed; a cancelled
job stops between instances; a stopped runner gives its job back without using an attempt;
a job left ``running`` by a dead process is run again when a runner starts (a live one is
left alone); two claimers never take the same job; the 0004 migration upgrades and
downgrades; the REST routes answer the documented statuses with problem+json errors.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid
from pynetdicom.status import STATUS_FAILURE, STATUS_SUCCESS, STATUS_WARNING

from pacsnode.config import Peer
from pacsnode.core import jobs, peers
from pacsnode.core.archive import Archive
from pacsnode.core.jobs import State
from pacsnode.dimse.job_runner import JobRunner
from pacsnode.index import migrate, schema
from pacsnode.index.engine import create_engine, write_transaction
from pacsnode.web.app import create_app
from tests.conftest import free_port
from tests.storescp import StorescpReceiver
from tests.unit.dicomdata import data_set_bytes, ingest_all, make_dataset, part10

pytestmark = pytest.mark.dcmtk

CT_ONLY_PROFILE = f"""[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = 1.2.840.10008.1.2.1
TransferSyntax2 = 1.2.840.10008.1.2

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = {CTImageStorage}\\Uncompressed

[[Profiles]]
[CT]
PresentationContexts = CTOnly
"""
FAST = {"poll_interval": 0.05, "progress_interval": 0.05, "heartbeat_interval": 0.2}


# -- helpers --------------------------------------------------------------------------------


class Storescp(StorescpReceiver):
    """storescp under ``directory/AET``; :meth:`received` gives data set bytes (a UID sent
    twice, as by a re-run job, keeps its last file)."""

    def __init__(self, directory: Path, aet: str, *options: str) -> None:
        super().__init__(directory / aet, aet, *options)

    def received(self) -> dict[str, bytes]:
        """SOP Instance UID -> the received file's data set bytes (file meta aside)."""
        return {uid: data_set_bytes(path.read_bytes())
                for uid, path in self.files(unique=False).items()}

    def count(self) -> int:
        return len(list(self.out_dir.iterdir()))


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[..., Storescp]]:
    """``receivers(aet, *options)`` starts a storescp; all are stopped afterwards."""
    started: list[Storescp] = []

    def start(aet: str, *options: str) -> Storescp:
        scp = Storescp(tmp_path / "peers", aet, *options)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def runners() -> Iterator[Callable[..., JobRunner]]:
    """``runners(archive, **options)`` starts a JobRunner; all are stopped afterwards."""
    started: list[JobRunner] = []

    def start(archive: Archive, **options: object) -> JobRunner:
        runner = JobRunner(archive, **{**FAST, **options})  # type: ignore[arg-type]
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop(10)


def study(n: int, *, study_uid: str | None = None, sop_class: str = CTImageStorage,
          modality: str = "CT", series: int = 2) -> list[Dataset]:
    """``n`` instances of one study in ``series`` series."""
    study_uid = study_uid or generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    return [make_dataset(study_uid=study_uid, series_uid=series_uids[i % series],
                         sop_class=sop_class, modality=modality, instance_number=i + 1,
                         pixel_seed=i) for i in range(n)]


def add_peer(archive: Archive, scp: Storescp | None, name: str = "DEST",
             port: int | None = None) -> Peer:
    peer = Peer(name=name, aet=scp.aet if scp else "NOBODY", host="127.0.0.1",
                port=port or (scp.port if scp else free_port()))
    return peers.add(archive.engine, peer)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0,
             what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def job_of(archive: Archive, pk: int) -> jobs.Job:
    job = jobs.get(archive.engine, pk)
    assert job is not None
    return job


def wait_state(archive: Archive, pk: int, *states: State, timeout: float = 30.0) -> jobs.Job:
    wait_for(lambda: job_of(archive, pk).state in states, timeout,
             f"job {pk} to be {'/'.join(s.value for s in states)}")
    return job_of(archive, pk)


def expected_bytes(datasets: list[Dataset]) -> dict[str, bytes]:
    """SOP Instance UID -> the data set bytes that were ingested (computed by pydicom)."""
    return {str(ds.SOPInstanceUID): data_set_bytes(part10(ds)) for ds in datasets}


def set_heartbeat(archive: Archive, pk: int, when: dt.datetime) -> None:
    with write_transaction(archive.engine) as conn:
        conn.execute(schema.job.update().where(schema.job.c.pk == pk)
                     .values(heartbeat_at=jobs.iso(when)))


# -- running jobs ---------------------------------------------------------------------------


def test_send_job_completes_byte_identical(archive: Archive, receivers: Callable[..., Storescp],
                                           runners: Callable[..., JobRunner]) -> None:
    sent = study(5)
    other = study(2)  # another study of the archive: must not be sent
    ingest_all(archive, sent + other)
    scp = receivers("DEST", "+xa")
    add_peer(archive, scp)
    uid = str(sent[0].StudyInstanceUID)

    runner = runners(archive)
    job = jobs.create_send_job(archive.engine, uid, "DEST")
    assert (job.state, job.attempts, job.study_instance_uid, job.peer) == \
        (State.QUEUED, 0, uid, "DEST")
    runner.notify()
    done = wait_state(archive, job.pk, State.COMPLETED, State.FAILED)

    assert done.state is State.COMPLETED, done.last_error
    p = done.progress
    assert (p.total, p.completed, p.failed, p.warning, p.failures) == (5, 5, 0, 0, [])
    assert (done.attempts, done.last_error, done.owner) == (1, None, runner.owner)
    assert done.started_at and done.finished_at and done.finished_at >= done.started_at
    assert scp.received() == expected_bytes(sent)


def test_unknown_peer_fails_at_once(archive: Archive, runners: Callable[..., JobRunner]) -> None:
    sent = study(1)
    ingest_all(archive, sent)
    job = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "NOPE")
    runners(archive).notify()
    done = wait_state(archive, job.pk, State.FAILED, State.COMPLETED)
    assert done.state is State.FAILED
    assert done.attempts == 1  # no retry
    assert done.last_error is not None and "unknown peer 'NOPE'" in done.last_error


def test_study_gone_fails(archive: Archive, receivers: Callable[..., Storescp],
                          runners: Callable[..., JobRunner]) -> None:
    sent = study(1)
    ingest_all(archive, sent)
    add_peer(archive, receivers("DEST", "+xa"))
    uid = str(sent[0].StudyInstanceUID)
    job = jobs.create_send_job(archive.engine, uid, "DEST")
    assert archive.delete(uid) is not None
    runners(archive).notify()
    done = wait_state(archive, job.pk, State.FAILED, State.COMPLETED)
    assert done.state is State.FAILED and done.attempts == 1
    assert done.last_error == f"study {uid} is not in the archive"


def test_unreachable_peer_retried_then_failed(archive: Archive,
                                              runners: Callable[..., JobRunner]) -> None:
    sent = study(2)
    ingest_all(archive, sent)
    add_peer(archive, None, port=free_port())  # nobody listens there
    job = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "DEST",
                               max_attempts=3)
    started = time.monotonic()
    runners(archive, backoff=(0.4, 0.4))
    seen: list[tuple[State, int]] = []

    def finished() -> bool:
        current = job_of(archive, job.pk)
        seen.append((current.state, current.attempts))
        return current.finished

    wait_for(finished, 30, "the job to end")
    elapsed = time.monotonic() - started
    done = job_of(archive, job.pk)
    assert done.state is State.FAILED
    assert done.attempts == 3
    assert done.last_error is not None
    assert "association with NOBODY@127.0.0.1" in done.last_error
    assert "attempt 3 of 3; giving up" in done.last_error
    assert (State.QUEUED, 1) in seen and (State.QUEUED, 2) in seen  # waiting for a retry
    assert elapsed >= 0.8  # two back-offs of 0.4 s


def test_failed_suboperations_retried_then_failed(archive: Archive, tmp_path: Path,
                                                  receivers: Callable[..., Storescp],
                                                  runners: Callable[..., JobRunner]) -> None:
    ct = study(2)
    uid = str(ct[0].StudyInstanceUID)
    mr = study(1, study_uid=uid, sop_class=MRImageStorage, modality="MR", series=1)
    ingest_all(archive, ct + mr)
    profile = tmp_path / "ct-only.cfg"
    profile.write_text(CT_ONLY_PROFILE)
    scp = receivers("CTONLY", "-xf", str(profile), "CT")
    add_peer(archive, scp, name="CTONLY")
    job = jobs.create_send_job(archive.engine, uid, "CTONLY", max_attempts=2)
    runners(archive, backoff=(0.1,))
    done = wait_state(archive, job.pk, State.FAILED, State.COMPLETED)

    assert done.state is State.FAILED
    assert done.attempts == 2
    p = done.progress
    assert (p.total, p.completed, p.failed, p.warning) == (3, 2, 1, 0)
    assert [f.sop_instance_uid for f in p.failures] == [str(mr[0].SOPInstanceUID)]
    assert "no accepted presentation context" in p.failures[0].reason
    assert done.last_error is not None and "1 of 3 C-STORE sub-operations failed" in \
        done.last_error
    assert scp.received() == expected_bytes(ct)


def test_cancel_running_job_stops_between_instances(
        archive: Archive, receivers: Callable[..., Storescp],
        runners: Callable[..., JobRunner]) -> None:
    sent = study(60)
    ingest_all(archive, sent)
    # about 30 ms per C-STORE: the job runs long enough to be cancelled in the middle
    scp = receivers("SLOW", "+xa", "--exec-on-reception", "sleep 0.03", "--exec-sync")
    add_peer(archive, scp, name="SLOW")
    job = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "SLOW")
    runner = runners(archive, heartbeat_interval=60)  # the progress write must see it
    observed: list[int] = []

    def some_sent() -> bool:
        current = job_of(archive, job.pk)
        if current.state is State.RUNNING:
            assert current.progress.total in (0, 60)  # 0: claimed, not counted yet
            observed.append(current.progress.completed)
        return current.progress.completed >= 5

    wait_for(some_sent, 30, "progress")
    # cancelled through the index only, as another process would: seen at the next write
    assert jobs.cancel(archive.engine, job.pk) is not None
    wait_for(lambda: runner.current_job is None, 10, "the runner to let the job go")
    done = job_of(archive, job.pk)
    assert done.state is State.CANCELLED
    assert observed == sorted(observed)  # progress only grows
    assert 5 <= done.progress.completed < 60
    assert done.progress.failed == 0
    time.sleep(0.3)
    assert scp.count() == done.progress.completed  # nothing sent after the cancellation
    with pytest.raises(jobs.AlreadyFinished):
        jobs.cancel(archive.engine, job.pk)
    assert job_of(archive, job.pk).state is State.CANCELLED


def test_cancel_queued_job_never_runs(archive: Archive, receivers: Callable[..., Storescp],
                                      runners: Callable[..., JobRunner]) -> None:
    sent = study(2)
    ingest_all(archive, sent)
    scp = receivers("DEST", "+xa")
    add_peer(archive, scp)
    job = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "DEST")
    cancelled = jobs.cancel(archive.engine, job.pk)
    assert cancelled is not None and cancelled.state is State.CANCELLED
    assert jobs.cancel(archive.engine, 999999) is None
    control = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "DEST")
    runners(archive).notify()
    assert wait_state(archive, control.pk, State.COMPLETED, State.FAILED).state is \
        State.COMPLETED
    current = job_of(archive, job.pk)
    assert (current.state, current.attempts, current.started_at) == \
        (State.CANCELLED, 0, None)
    assert len(scp.received()) == 2  # the control job's instances, once


def test_stopped_runner_requeues_its_job(archive: Archive, receivers: Callable[..., Storescp],
                                         runners: Callable[..., JobRunner]) -> None:
    sent = study(40)
    ingest_all(archive, sent)
    scp = receivers("SLOW", "+xa", "--exec-on-reception", "sleep 0.03", "--exec-sync")
    add_peer(archive, scp, name="SLOW")
    job = jobs.create_send_job(archive.engine, str(sent[0].StudyInstanceUID), "SLOW")
    first = runners(archive)
    wait_for(lambda: job_of(archive, job.pk).progress.completed >= 3, 30, "progress")
    assert first.stop(10)
    paused = job_of(archive, job.pk)
    assert (paused.state, paused.attempts, paused.owner) == (State.QUEUED, 0, None)
    assert 3 <= paused.progress.completed < 40

    second = runners(archive)  # as after a restart: re-run from the start
    done = wait_state(archive, job.pk, State.COMPLETED, State.FAILED)
    assert done.state is State.COMPLETED and done.owner == second.owner
    assert (done.attempts, done.progress.total, done.progress.completed) == (1, 40, 40)
    assert scp.received() == expected_bytes(sent)


def test_job_left_running_by_dead_process_rerun_on_start(
        archive: Archive, receivers: Callable[..., Storescp],
        runners: Callable[..., JobRunner]) -> None:
    sent = study(3)
    ingest_all(archive, sent)
    scp = receivers("DEST", "+xa")
    add_peer(archive, scp)
    uid = str(sent[0].StudyInstanceUID)
    dead = jobs.create_send_job(archive.engine, uid, "DEST")
    claimed = jobs.claim_next(archive.engine, "crashed-host:4242:dead")
    assert claimed is not None and claimed.pk == dead.pk and claimed.state is State.RUNNING
    set_heartbeat(archive, dead.pk, jobs.utc_now() - dt.timedelta(minutes=5))
    # another process's job, alive (fresh heartbeat): must be left alone
    alive = jobs.create_send_job(archive.engine, uid, "DEST")
    assert jobs.claim_next(archive.engine, "other-host:77:alive") is not None

    runners(archive)
    done = wait_state(archive, dead.pk, State.COMPLETED, State.FAILED)
    assert done.state is State.COMPLETED
    assert done.attempts == 2  # the interrupted attempt counts
    assert scp.received() == expected_bytes(sent)
    other = job_of(archive, alive.pk)
    assert (other.state, other.owner) == (State.RUNNING, "other-host:77:alive")


def test_stale_job_on_its_last_attempt_fails(archive: Archive) -> None:
    job = jobs.create_send_job(archive.engine, "1.2.3", "DEST", max_attempts=1)
    assert jobs.claim_next(archive.engine, "crashed") is not None
    assert jobs.recover_stale(archive.engine, stale_after=60) == []  # heartbeat fresh
    set_heartbeat(archive, job.pk, jobs.utc_now() - dt.timedelta(minutes=2))
    assert jobs.recover_stale(archive.engine, stale_after=60) == [job.pk]
    done = job_of(archive, job.pk)
    assert done.state is State.FAILED
    assert done.last_error is not None and "giving up" in done.last_error
    # and the crashed owner can no longer write to it
    assert not jobs.record_progress(archive.engine, job.pk, "crashed", jobs.Progress(total=1))


# -- claiming -------------------------------------------------------------------------------


def test_two_claimers_never_take_the_same_job(archive: Archive) -> None:
    url = archive.settings.db_url
    engines = [create_engine(url), create_engine(url)]  # as two processes would have
    try:
        for _ in range(10):  # one job, both claim it at the same instant
            job = jobs.create_send_job(archive.engine, "1.2.3", "DEST")
            barrier = threading.Barrier(2)
            got: list[jobs.Job | None] = [None, None]

            def claim(i: int, barrier: threading.Barrier, got: list[jobs.Job | None]) -> None:
                barrier.wait()
                got[i] = jobs.claim_next(engines[i], f"claimer-{i}")

            threads = [threading.Thread(target=claim, args=(i, barrier, got))
                       for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            winners = [g for g in got if g is not None]
            assert [w.pk for w in winners] == [job.pk], got
            assert job_of(archive, job.pk).owner == f"claimer-{got.index(winners[0])}"

        queued = {jobs.create_send_job(archive.engine, "1.2.3", "DEST").pk for _ in range(30)}
        taken: list[list[int]] = [[], []]
        barrier = threading.Barrier(2)

        def drain(i: int) -> None:
            barrier.wait()
            while (job := jobs.claim_next(engines[i], f"drainer-{i}")) is not None:
                taken[i].append(job.pk)

        threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not set(taken[0]) & set(taken[1])
        assert sorted(taken[0] + taken[1]) == sorted(queued)
        for pk in queued:
            assert job_of(archive, pk).attempts == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_claim_respects_backoff_and_order(archive: Archive) -> None:
    first = jobs.create_send_job(archive.engine, "1.2.3", "DEST")
    second = jobs.create_send_job(archive.engine, "1.2.4", "DEST")
    claimed = jobs.claim_next(archive.engine, "me")
    assert claimed is not None and claimed.pk == first.pk and claimed.attempts == 1
    assert jobs.retry_or_fail(archive.engine, first.pk, "me", "boom",
                              backoff=(60.0,)) is State.QUEUED
    retried = job_of(archive, first.pk)
    assert retried.last_error == "boom (attempt 1 of 3; retrying)"
    assert jobs.parse_iso(retried.next_attempt_at) > jobs.utc_now() + dt.timedelta(seconds=50)
    nxt = jobs.claim_next(archive.engine, "me")
    assert nxt is not None and nxt.pk == second.pk  # the first waits for its back-off
    assert jobs.claim_next(archive.engine, "me") is None
    later = jobs.utc_now() + dt.timedelta(seconds=61)
    again = jobs.claim_next(archive.engine, "me", now=later)
    assert again is not None and again.pk == first.pk and again.attempts == 2
    # writes by someone who does not own the job change nothing
    assert not jobs.complete(archive.engine, first.pk, "not-me", jobs.Progress())
    assert jobs.backoff_delay(1) == 10 and jobs.backoff_delay(2) == 60
    assert jobs.backoff_delay(3) == 300 and jobs.backoff_delay(9) == 300


def test_list_newest_first_and_by_state(archive: Archive) -> None:
    made = [jobs.create_send_job(archive.engine, f"1.2.{i}", "DEST") for i in range(3)]
    assert [j.pk for j in jobs.list_jobs(archive.engine)] == [j.pk for j in reversed(made)]
    jobs.cancel(archive.engine, made[1].pk)
    assert [j.pk for j in jobs.list_jobs(archive.engine, state=State.CANCELLED)] == \
        [made[1].pk]
    assert [j.pk for j in jobs.list_jobs(archive.engine, limit=1, offset=1)] == [made[1].pk]
    with pytest.raises(jobs.JobError):
        jobs.create_send_job(archive.engine, "1.2.3", "DEST", max_attempts=0)


def test_failed_list_is_bounded() -> None:
    progress = jobs.Progress(total=500)
    for i in range(500):
        progress.record(f"1.2.{i}", jobs.FAILURE, "refused")
    assert progress.failed == 500
    assert len(progress.failures) == jobs.MAX_FAILED_LIST
    progress.record("1.3", STATUS_WARNING)
    progress.record("1.4", STATUS_SUCCESS)
    assert (progress.completed, progress.warning, progress.done) == (1, 1, 502)
    assert (jobs.SUCCESS, jobs.WARNING, jobs.FAILURE) == \
        (STATUS_SUCCESS, STATUS_WARNING, STATUS_FAILURE)  # StoreSender's categories


# -- the migration --------------------------------------------------------------------------


def _diff_table(diff: object) -> str:
    """The table an Alembic autogenerate difference is about."""
    if isinstance(diff, list):  # column modifications: [(op, schema, table, column, ...)]
        return str(diff[0][2])
    assert isinstance(diff, tuple)
    obj = diff[1]
    table = getattr(obj, "table", obj)
    return str(getattr(table, "name", diff[2] if len(diff) > 2 else ""))


def test_migration_0004_upgrades_and_downgrades(tmp_path: Path, db_url: str | None) -> None:
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'index.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.attributes["engine"] = engine
    try:
        command.upgrade(cfg, "0003")
        assert "job" not in sa.inspect(engine).get_table_names()
        command.upgrade(cfg, "0004")
        assert migrate.current_revision(engine) == "0004"
        with engine.connect() as conn:  # the migration creates what schema.py declares
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     schema.metadata)
        assert [d for d in diffs if _diff_table(d) == "job"] == []
        command.downgrade(cfg, "0003")
        assert "job" not in sa.inspect(engine).get_table_names()
        assert migrate.current_revision(engine) == "0003"
    finally:
        engine.dispose()


# -- the REST API, in-process ---------------------------------------------------------------


PROBLEM = "application/problem+json"


def test_api_routes(archive: Archive, receivers: Callable[..., Storescp]) -> None:
    sent = study(3)
    ingest_all(archive, sent)
    uid = str(sent[0].StudyInstanceUID)
    scp = receivers("DEST", "+xa")
    add_peer(archive, scp)
    app = create_app(archive, archive.settings)
    runner = JobRunner(archive, **FAST)  # type: ignore[arg-type]
    app.state.jobs = runner
    with TestClient(app) as client:
        r = client.post(f"/api/studies/{uid}/send", json={"peer": "NOPE"})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
        assert "unknown peer 'NOPE'" in r.json()["detail"] and "DEST" in r.json()["detail"]
        r = client.post("/api/studies/1.2.3.999/send", json={"peer": "DEST"})
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == "no study 1.2.3.999 in the archive"
        r = client.post(f"/api/studies/{sent[0].SeriesInstanceUID}/send",
                        json={"peer": "DEST"})  # a series UID is not a study
        assert r.status_code == 404
        r = client.post(f"/api/studies/{uid}/send", json={})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
        assert "peer" in r.json()["detail"]
        r = client.post(f"/api/studies/{uid}/send", json={"peer": "DEST", "max_attempts": 0})
        assert r.status_code == 400

        # queued while the runner is not started: cancel it
        r = client.post(f"/api/studies/{uid}/send", json={"peer": "DEST"})
        assert r.status_code == 202, r.text
        queued = r.json()
        assert r.headers["location"] == f"/api/jobs/{queued['id']}" == queued["url"]
        assert (queued["state"], queued["peer"], queued["study_instance_uid"],
                queued["attempts"], queued["max_attempts"]) == ("queued", "DEST", uid, 0, 3)
        assert queued["next_attempt_at"] is not None
        r = client.delete(f"/api/jobs/{queued['id']}")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        r = client.delete(f"/api/jobs/{queued['id']}")
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == \
            f"job {queued['id']} cannot be cancelled: it is already cancelled"
        assert client.delete("/api/jobs/424242").status_code == 404
        r = client.get("/api/jobs/424242")
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM

        runner.start()
        try:
            r = client.post(f"/api/studies/{uid}/send", json={"peer": "DEST"})
            assert r.status_code == 202
            job_id = r.json()["id"]
            wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["state"]
                     in ("completed", "failed"), 30, "the job to end")
        finally:
            runner.stop(10)
        body = client.get(f"/api/jobs/{job_id}").json()
        assert body["state"] == "completed", body
        assert body["progress"] == {"total": 3, "completed": 3, "failed": 0, "warning": 0,
                                    "remaining": 0}
        assert body["failed_instances"] == [] and body["next_attempt_at"] is None
        assert scp.received() == expected_bytes(sent)

        listing = client.get("/api/jobs").json()
        assert [j["id"] for j in listing["items"]] == [job_id, queued["id"]]
        assert (listing["offset"], listing["limit"], listing["more"]) == (0, 100, False)
        page = client.get("/api/jobs", params={"limit": 1}).json()
        assert [j["id"] for j in page["items"]] == [job_id] and page["more"] is True
        only = client.get("/api/jobs", params={"state": "cancelled"}).json()
        assert [j["id"] for j in only["items"]] == [queued["id"]]
        r = client.get("/api/jobs", params={"state": "bogus"})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM

        schema_doc = client.get("/openapi.json").json()
        assert "/api/studies/{study_uid}/send" in schema_doc["paths"]
        assert {"SendRequest", "JobModel", "JobList"} <= set(schema_doc["components"]["schemas"])
