"""Storage Commitment (PS3.4 Annex J): the core's decisions and report data set
(:mod:`pacsnode.core.commitment`), the commitment jobs (:mod:`pacsnode.core.commitment_jobs`)
and the report on a new association (:mod:`pacsnode.dimse.commitment_report`) sent to a
pynetdicom listener, on both index backends. Expected values are written out here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid
from pynetdicom import AE, evt

from pacsnode.config import Peer
from pacsnode.core import commitment, commitment_jobs, jobs, peers
from pacsnode.core.archive import Archive
from pacsnode.core.commitment import Reference, Request, RequestError
from pacsnode.core.jobs import State
from pacsnode.dimse.commitment_report import run_commitment_job
from tests.conftest import free_port
from tests.unit.dicomdata import make_dataset

PUSH = "1.2.840.10008.1.20.1"
UNSUPPORTED_CLASS = "1.2.3.4.5.6.7"


def action_info(transaction_uid: str | None, refs: list[tuple[str | None, str | None]] | None
                ) -> Dataset:
    ds = Dataset()
    if transaction_uid is not None:
        ds.TransactionUID = transaction_uid
    if refs is not None:
        items = []
        for sop_class, sop_uid in refs:
            item = Dataset()
            if sop_class is not None:
                item.ReferencedSOPClassUID = sop_class
            if sop_uid is not None:
                item.ReferencedSOPInstanceUID = sop_uid
            items.append(item)
        ds.ReferencedSOPSequence = Sequence(items)
    return ds


# -- parsing the N-ACTION Action Information (PS3.4 Table J.3-1) -----------------------------


def test_parse_request_valid() -> None:
    request = commitment.parse_request(action_info("1.2.3", [(CTImageStorage, "1.2.3.4"),
                                                             (MRImageStorage, "1.2.3.5")]))
    assert request == Request("1.2.3", (Reference(CTImageStorage, "1.2.3.4"),
                                        Reference(MRImageStorage, "1.2.3.5")))
    assert Request.from_json(request.to_json()) == request


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize(("transaction_uid", "refs", "status"), [
    (None, [(CTImageStorage, "1.2.3.4")], 0x0120),
    ("", [(CTImageStorage, "1.2.3.4")], 0x0120),
    ("1.2.3", None, 0x0120),
    ("1.2.3", [], 0x0120),
    ("1.2.3", [(CTImageStorage, None)], 0x0120),
    ("1.2.3", [(None, "1.2.3.4")], 0x0120),
    ("not-a-uid", [(CTImageStorage, "1.2.3.4")], 0x0115),
    ("1.2.3", [(CTImageStorage, "1.2.x")], 0x0115),
    ("1." + "2" * 70, [(CTImageStorage, "1.2.3.4")], 0x0115),
])
def test_parse_request_refused(transaction_uid: str | None,
                               refs: list[tuple[str | None, str | None]] | None,
                               status: int) -> None:
    with pytest.raises(RequestError) as caught:
        commitment.parse_request(action_info(transaction_uid, refs))
    assert caught.value.status == status


# -- decisions ------------------------------------------------------------------------------


@pytest.fixture
def stored(archive: Archive) -> dict[str, str]:
    """Three stored instances: two CT, one MR (name → SOP Instance UID)."""
    uids: dict[str, str] = {}
    for name, sop_class in (("ct1", CTImageStorage), ("ct2", CTImageStorage),
                            ("mr", MRImageStorage)):
        ds = make_dataset(sop_class=sop_class, modality="CT" if "ct" in name else "MR")
        assert archive.ingest(ds).outcome.value == "stored"
        uids[name] = str(ds.SOPInstanceUID)
    return uids


def test_decide_each_reason(archive: Archive, stored: dict[str, str]) -> None:
    # ct2's file disappears from the store (the index still has it): processing failure.
    key = archive.find(stored["ct2"]).columns["storage_key"]  # type: ignore[union-attr]
    archive.store.path_of(key).unlink()
    unknown = generate_uid()
    request = Request("1.2.99", (
        Reference(CTImageStorage, stored["ct1"]),
        Reference(MRImageStorage, stored["mr"]),
        Reference(CTImageStorage, unknown),
        Reference(MRImageStorage, stored["ct1"]),
        Reference(CTImageStorage, stored["ct2"]),
        Reference(UNSUPPORTED_CLASS, stored["mr"]),
    ))
    report = commitment.decide(archive, request,
                               supported_classes={CTImageStorage, MRImageStorage})
    assert report.transaction_uid == "1.2.99"
    assert report.committed == [Reference(CTImageStorage, stored["ct1"]),
                                Reference(MRImageStorage, stored["mr"])]
    assert report.failed == [(Reference(CTImageStorage, unknown), 0x0112),
                             (Reference(MRImageStorage, stored["ct1"]), 0x0119),
                             (Reference(CTImageStorage, stored["ct2"]), 0x0110),
                             (Reference(UNSUPPORTED_CLASS, stored["mr"]), 0x0122)]
    assert report.event_type_id == 2


def test_decide_all_committed_and_duplicate(archive: Archive, stored: dict[str, str]) -> None:
    refs = (Reference(CTImageStorage, stored["ct1"]), Reference(MRImageStorage, stored["mr"]))
    report = commitment.decide(archive, Request("1.2.7", refs))
    assert report.committed == list(refs) and report.failed == []
    assert report.event_type_id == 1
    dup = commitment.decide(archive, Request("1.2.7", refs), duplicate=True)
    assert dup.committed == [] and dup.failed == [(r, 0x0131) for r in refs]


# -- the N-EVENT-REPORT Event Information (PS3.4 Table J.3-2) -------------------------------


def test_report_dataset_mixed() -> None:
    report = commitment.Report("1.2.5", [Reference(CTImageStorage, "1.2.5.1")],
                               [(Reference(MRImageStorage, "1.2.5.2"), 0x0112),
                                (Reference(CTImageStorage, "1.2.5.3"), 0x0119)])
    ds = commitment.report_dataset(report, "PACSNODE")
    assert ds.TransactionUID == "1.2.5"
    assert ds.RetrieveAETitle == "PACSNODE"
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in ds.ReferencedSOPSequence] == [(CTImageStorage, "1.2.5.1")]
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID, i.FailureReason)
            for i in ds.FailedSOPSequence] == [(MRImageStorage, "1.2.5.2", 0x0112),
                                                (CTImageStorage, "1.2.5.3", 0x0119)]
    assert ds.FailedSOPSequence[0]["FailureReason"].VR == "US"


def test_report_dataset_all_success_and_all_failed() -> None:
    ok = commitment.report_dataset(
        commitment.Report("1.2.6", [Reference(CTImageStorage, "1.2.6.1")]), "PACSNODE")
    assert "FailedSOPSequence" not in ok and len(ok.ReferencedSOPSequence) == 1
    bad = commitment.report_dataset(
        commitment.Report("1.2.6", [], [(Reference(CTImageStorage, "1.2.6.1"), 0x0110)]),
        "PACSNODE")
    assert "ReferencedSOPSequence" not in bad and "RetrieveAETitle" not in bad
    assert bad.FailedSOPSequence[0].FailureReason == 0x0110


# -- commitment jobs ------------------------------------------------------------------------


def test_job_lifecycle(archive: Archive) -> None:
    engine = archive.engine
    request = Request("1.2.8", (Reference(CTImageStorage, "1.2.8.1"),))
    job = commitment_jobs.create(engine, request, "MODALITY ", owner="me")
    assert (job.kind, job.state, job.attempts, job.owner) == ("commitment", State.RUNNING, 1,
                                                              "me")
    assert job.progress.total == 1
    pending = commitment_jobs.pending_report(job)
    assert (pending.request, pending.requester_aet, pending.duplicate) == \
        (request, "MODALITY", False)
    assert commitment_jobs.is_pending(engine, "1.2.8")
    assert not commitment_jobs.is_pending(engine, "1.2.9")
    # The same association is gone: back in the queue, due now, no attempt used.
    assert jobs.release(engine, job.pk, "me")
    queued = jobs.get(engine, job.pk)
    assert queued is not None and (queued.state, queued.attempts) == (State.QUEUED, 0)
    assert commitment_jobs.is_pending(engine, "1.2.8")
    report = commitment.Report("1.2.8", [], [(Reference(CTImageStorage, "1.2.8.1"), 0x0112)])
    claimed = jobs.claim_next(engine, "runner")
    assert claimed is not None and claimed.pk == job.pk
    assert jobs.complete(engine, job.pk, "runner", commitment_jobs.progress_of(report))
    done = jobs.get(engine, job.pk)
    assert done is not None and done.state is State.COMPLETED
    assert (done.progress.completed, done.progress.failed) == (0, 1)
    assert done.progress.failures[0].reason == "0x0112 no such object instance"
    assert not commitment_jobs.is_pending(engine, "1.2.8")


# -- the report on a new association --------------------------------------------------------


class Listener:
    """A pynetdicom Storage Commitment SCU waiting for N-EVENT-REPORTs."""

    def __init__(self, aet: str, answer: int = 0x0000) -> None:
        self.port = free_port()
        self.reports: list[tuple[int, Dataset, str, tuple[bool | None, bool | None]]] = []
        self.received = threading.Event()
        self.answer = answer
        ae = AE(ae_title=aet)
        ae.add_supported_context(PUSH, scu_role=True, scp_role=True)
        server = ae.start_server(("127.0.0.1", self.port), block=False,
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on)])
        assert server is not None
        self.server = server

    def _on(self, event: Any) -> tuple[int, None]:
        cx = next(c for c in event.assoc.accepted_contexts if c.abstract_syntax == PUSH)
        self.reports.append((int(event.request.EventTypeID), event.event_information,
                             str(event.assoc.requestor.ae_title), (cx.as_scu, cx.as_scp)))
        self.received.set()
        return self.answer, None

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener("MODALITY")
    yield lst
    lst.stop()


def test_run_job_unknown_peer_then_delivered(archive: Archive, stored: dict[str, str],
                                             listener: Listener) -> None:
    engine = archive.engine
    unknown = generate_uid()
    request = Request("1.2.10", (Reference(CTImageStorage, stored["ct1"]),
                                 Reference(CTImageStorage, unknown)))
    commitment_jobs.create(engine, request, "MODALITY")
    job = jobs.claim_next(engine, "runner")
    assert job is not None
    assert run_commitment_job(archive, archive.settings, job, "runner",
                              backoff=(0.0,)) is State.QUEUED
    again = jobs.get(engine, job.pk)
    assert again is not None and "no peer is declared with AE title 'MODALITY'" in \
        (again.last_error or "")
    assert listener.reports == []

    peers.add(engine, Peer("modality", "MODALITY", "127.0.0.1", listener.port))
    job = jobs.claim_next(engine, "runner")
    assert job is not None
    assert run_commitment_job(archive, archive.settings, job, "runner") is State.COMPLETED
    assert len(listener.reports) == 1
    event_type, info, calling, listener_roles = listener.reports[0]
    assert (event_type, calling) == (2, "PACSNODE")
    # We proposed the SCP role only (PS3.7 D.3.3.4): the listener is the SCU (as_scu, as_scp).
    assert listener_roles == (True, False)
    assert info.TransactionUID == "1.2.10"
    assert [i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence] == [stored["ct1"]]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in info.FailedSOPSequence] \
        == [(unknown, 0x0112)]
    done = jobs.get(engine, job.pk)
    assert done is not None and done.state is State.COMPLETED
    assert (done.progress.total, done.progress.completed, done.progress.failed) == (2, 1, 1)


def test_run_job_peer_refuses(archive: Archive, stored: dict[str, str]) -> None:
    refusing = Listener("REFUSER", answer=0x0110)
    try:
        peers.add(archive.engine, Peer("refuser", "REFUSER", "127.0.0.1", refusing.port))
        commitment_jobs.create(archive.engine, Request(
            "1.2.11", (Reference(CTImageStorage, stored["ct1"]),)), "REFUSER")
        job = jobs.claim_next(archive.engine, "runner")
        assert job is not None
        assert run_commitment_job(archive, archive.settings, job, "runner") is State.FAILED
        assert refusing.reports and refusing.reports[0][0] == 1
        failed = jobs.get(archive.engine, job.pk)
        assert failed is not None and "status 0x0110" in (failed.last_error or "")
    finally:
        refusing.stop()


def test_run_job_unreachable_is_retried(archive: Archive, stored: dict[str, str]) -> None:
    peers.add(archive.engine, Peer("gone", "GONE", "127.0.0.1", free_port()))
    commitment_jobs.create(archive.engine, Request(
        "1.2.12", (Reference(CTImageStorage, stored["ct1"]),)), "GONE", max_attempts=2)
    for expected in (State.QUEUED, State.FAILED):
        job = jobs.claim_next(archive.engine, "runner")
        assert job is not None
        assert run_commitment_job(archive, archive.settings, job, "runner",
                                  backoff=(0.0,)) is expected
