"""Running one ``commitment`` job (:mod:`pacsnode.core.commitment_jobs`): the Storage
Commitment N-EVENT-REPORT sent on a **new association** to the requester (PS3.4 J.3.3,
IHE RAD-10), when it could not go on the requester's own association.

* The requester is the peer declared with the requester's AE title
  (:func:`pacsnode.core.peers.by_aet`: ``[peers.NAME]`` in the TOML file or
  ``pacsnode peers add``). An unknown AE title, an association that cannot be established
  and a report without an answer are retried after the runner's back-off, up to the job's
  ``max_attempts`` (:data:`pacsnode.core.commitment_jobs.MAX_ATTEMPTS`); then ``failed``.
* pacsnode calls with its own AE title and proposes the Storage Commitment Push Model SOP
  Class (Explicit, then Implicit VR Little Endian) with SCP/SCU Role Selection: SCP role
  only (PS3.7 D.3.3.4; PS3.4 J.3.3 has the SCP propose it). The report is sent once the
  context is accepted, whatever roles the peer answered (many SCUs ignore role selection).
* The decision is taken now (:func:`pacsnode.core.commitment.decide`). A Success or Warning
  response completes the job; a Failure status fails it at once (the peer has answered).
* ``TCP_NODELAY`` is set on the socket by :mod:`pacsnode.dimse.transport_tuning`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role
from pynetdicom.status import STATUS_FAILURE, code_to_category

from pacsnode.config import Peer, Settings
from pacsnode.core import commitment, commitment_jobs, jobs, peers
from pacsnode.core.archive import Archive
from pacsnode.core.commitment import Report
from pacsnode.core.jobs import Job, State
from pacsnode.dimse import transport_tuning
from pacsnode.dimse.commitment_scp import supported_classes

log = logging.getLogger(__name__)

SOP_CLASS = commitment.STORAGE_COMMITMENT_PUSH_MODEL


class ReportNotDelivered(ConnectionError):
    """The report could not be sent, or got no answer (the message says why)."""


def send_report(settings: Settings, peer: Peer, report: Report) -> int:
    """Send ``report`` to ``peer`` on a new association; the response status."""
    transport_tuning.install(settings.max_pdu_size)
    ae = AE(ae_title=settings.aet)
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    ae.add_requested_context(SOP_CLASS, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    role = build_role(SOP_CLASS, scu_role=False, scp_role=True)
    where = f"{peer.aet}@{peer.host}:{peer.port}"
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.aet, ext_neg=[role])
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else \
            "could not connect"
        raise ReportNotDelivered(f"association with {where} {why}")
    try:
        if not any(cx.abstract_syntax == SOP_CLASS for cx in assoc.accepted_contexts):
            raise ReportNotDelivered(f"{where} refused the Storage Commitment context")
        rsp, _ = assoc.send_n_event_report(
            commitment.report_dataset(report, settings.aet), report.event_type_id,
            SOP_CLASS, commitment.STORAGE_COMMITMENT_INSTANCE)
    finally:
        if assoc.is_established:
            assoc.release()
    if "Status" not in rsp:
        raise ReportNotDelivered(f"no N-EVENT-REPORT response from {where}")
    return int(rsp.Status)


def run_commitment_job(archive: Archive, settings: Settings, job: Job, owner: str, *,
                       backoff: Sequence[float] = jobs.DEFAULT_BACKOFF) -> State | None:
    """One attempt at delivering a commitment report; the job's new state, or ``None`` if
    it was no longer ``owner``'s running job."""
    engine = archive.engine
    try:
        pending = commitment_jobs.pending_report(job)
    except (KeyError, ValueError, TypeError) as exc:
        return State.FAILED if jobs.fail(engine, job.pk, owner,
                                         f"damaged job parameters: {exc}") else None
    peer = peers.by_aet(settings, pending.requester_aet, engine)
    if peer is None:
        return jobs.retry_or_fail(
            engine, job.pk, owner, f"no peer is declared with AE title "
            f"{pending.requester_aet!r} (`pacsnode peers add` or [peers.NAME])",
            backoff=backoff)
    report = commitment.decide(archive, pending.request, supported_classes=supported_classes(),
                               duplicate=pending.duplicate)
    progress = commitment_jobs.progress_of(report)
    try:
        code = send_report(settings, peer, report)
    except (ReportNotDelivered, OSError, RuntimeError, ValueError) as exc:
        return jobs.retry_or_fail(engine, job.pk, owner, str(exc), progress, backoff=backoff)
    if code_to_category(code) == STATUS_FAILURE:
        done = jobs.fail(engine, job.pk, owner, f"{peer.aet} answered the N-EVENT-REPORT "
                         f"with status 0x{code:04X}", progress)
        return State.FAILED if done else None
    if not jobs.complete(engine, job.pk, owner, progress):
        return None
    log.info("job %d: storage commitment %s reported to %s on a new association "
             "(%d committed, %d failed)", job.pk, pending.request.transaction_uid, peer.aet,
             len(report.committed), len(report.failed))
    return State.COMPLETED
