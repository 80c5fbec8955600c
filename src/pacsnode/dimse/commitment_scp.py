"""Storage Commitment Push Model SCP (PS3.4 Annex J): the N-ACTION request, and the
N-EVENT-REPORT on the requester's association when it is still open.

* pynetdicom binds one ``EVT_N_ACTION`` handler per association for every SOP class:
  :class:`NActionService` dispatches by Requested SOP Class UID, so that other N-ACTION
  services can register beside Storage Commitment.
* The N-ACTION is checked (PS3.4 J.3.2, PS3.7 10.1.4): Requested SOP Instance UID must be
  the well-known 1.2.840.10008.1.20.1.1 (another valid UID: 0112H No such SOP Instance; an
  invalid one: 0117H Invalid SOP Instance), Action Type ID must be 1 (else 0123H No such
  action), the Action Information must decode (else 0110H Processing failure) and hold a
  Transaction UID and a non-empty Referenced SOP Sequence (0120H Missing attribute, 0115H
  Invalid argument value: :func:`pacsnode.core.commitment.parse_request`). Then the
  request is recorded as a job (:mod:`pacsnode.core.commitment_jobs`) and answered
  Success.
* A thread then waits until the reactor has sent the N-ACTION response and parked, takes
  the decision (:func:`pacsnode.core.commitment.decide`) and, if the association is still
  established and the requester has not asked to release it, sends the N-EVENT-REPORT on it
  (the SCP's role on the SCU's association, PS3.4 J.3.3) and waits for the response up to
  ``dimse_timeout``. If the requester releases or aborts first, or answers with a failure
  status, the job goes back to the queue and a job runner sends the report on a new
  association (:mod:`pacsnode.dimse.commitment_report`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import N_EVENT_REPORT
from pynetdicom.dsutils import encode
from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT, A_RELEASE
from pynetdicom.status import STATUS_FAILURE, code_to_category

from pacsnode.config import Settings
from pacsnode.core import commitment, commitment_jobs, jobs
from pacsnode.core.archive import Archive
from pacsnode.core.commitment import Report, Request, RequestError
from pacsnode.dimse.reactor import pause_reactor

log = logging.getLogger(__name__)

SOP_CLASS = commitment.STORAGE_COMMITMENT_PUSH_MODEL
STATUS_SUCCESS = 0x0000
STATUS_PROCESSING_FAILURE = 0x0110
STATUS_NO_SUCH_SOP_INSTANCE = 0x0112
STATUS_INVALID_SOP_INSTANCE = 0x0117
STATUS_NO_SUCH_SOP_CLASS = 0x0118
STATUS_NO_SUCH_ACTION = 0x0123
POLL_S = 0.002
_message_ids = itertools.count(1)

NActionHandler = Callable[[Any], tuple[Dataset | int, Dataset | None]]


def status(code: int, comment: str = "") -> Dataset:
    """An N-ACTION response status with an Error Comment (0000,0902) saying why."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]  # LO
    return ds


@functools.cache
def supported_classes() -> frozenset[str]:
    """The storage SOP classes pacsnode accepts (anything else fails with 0122H)."""
    from pacsnode.dimse.server import storage_sop_classes  # server imports this module

    return frozenset(storage_sop_classes())


class NActionService:
    """The listener's one N-ACTION handler, dispatching by Requested SOP Class UID."""

    def __init__(self) -> None:
        self._by_class: dict[str, NActionHandler] = {}

    def register(self, sop_class: str, handler: NActionHandler) -> NActionService:
        self._by_class[sop_class] = handler
        return self

    def handlers(self) -> list[tuple[Any, NActionHandler]]:
        return [(evt.EVT_N_ACTION, self.on_n_action)]

    def on_n_action(self, event: Any) -> tuple[Dataset | int, Dataset | None]:
        sop_class = str(event.request.RequestedSOPClassUID)
        handler = self._by_class.get(sop_class)
        if handler is None:  # pynetdicom only passes accepted contexts; defensive
            return status(STATUS_NO_SUCH_SOP_CLASS, f"no N-ACTION for {sop_class}"), None
        return handler(event)


class StorageCommitmentService:
    """Storage Commitment Push Model SCP (PS3.4 J.3.2, J.3.3)."""

    def __init__(self, archive: Archive, settings: Settings) -> None:
        self.archive = archive
        self.settings = settings
        self.owner = f"{socket.gethostname()[:80]}:{os.getpid()}:commitment-scp"

    def on_n_action(self, event: Any) -> tuple[Dataset | int, Dataset | None]:
        """Check and record a commitment request; the report follows (:meth:`_deliver`)."""
        req = event.request
        instance_uid = str(req.RequestedSOPInstanceUID or "")
        if instance_uid != commitment.STORAGE_COMMITMENT_INSTANCE:
            valid = bool(commitment.UID_RE.match(instance_uid)) and len(instance_uid) <= 64
            return status(STATUS_NO_SUCH_SOP_INSTANCE if valid else STATUS_INVALID_SOP_INSTANCE,
                          "use SOP Instance 1.2.840.10008.1.20.1.1"), None
        if req.ActionTypeID != commitment.ACTION_REQUEST_COMMITMENT:
            return status(STATUS_NO_SUCH_ACTION, f"no action type {req.ActionTypeID}"), None
        try:
            info = event.action_information
            request = commitment.parse_request(info)
        except RequestError as exc:
            return status(exc.status, exc.comment), None
        except Exception as exc:
            log.warning("storage commitment request from %s not decodable: %s",
                        event.assoc.requestor.ae_title, exc)
            return status(STATUS_PROCESSING_FAILURE, "cannot decode Action Information"), None
        requester = str(event.assoc.requestor.ae_title).strip()
        try:
            duplicate = commitment_jobs.is_pending(self.archive.engine, request.transaction_uid)
            job = commitment_jobs.create(self.archive.engine, request, requester,
                                         duplicate=duplicate, owner=self.owner)
        except Exception:
            log.exception("storage commitment %s: cannot record the request",
                          request.transaction_uid)
            return status(STATUS_PROCESSING_FAILURE, "cannot record the request"), None
        threading.Thread(target=self._deliver,
                         args=(event.assoc, event.context, job.pk, request, duplicate),
                         name=f"pacsnode-commitment-{job.pk}", daemon=True).start()
        return status(STATUS_SUCCESS), None

    def decide(self, request: Request, duplicate: bool) -> Report:
        return commitment.decide(self.archive, request, supported_classes=supported_classes(),
                                 duplicate=duplicate)

    def _deliver(self, assoc: Association, context: Any, pk: int, request: Request,
                 duplicate: bool) -> None:
        """Send the report on the requester's association, else queue it for a new one."""
        engine = self.archive.engine
        try:
            report = self.decide(request, duplicate)
            beat = _Beat(lambda: jobs.heartbeat(engine, pk, self.owner))
            code = send_event_report(assoc, commitment.report_dataset(report, self.settings.aet),
                                     report.event_type_id, context,
                                     timeout=self.settings.dimse_timeout, beat=beat)
        except Exception:
            log.exception("job %d: storage commitment report on the same association failed",
                          pk)
            code, report = None, None
        if report is not None and code is not None and \
                code_to_category(code) != STATUS_FAILURE:
            jobs.complete(engine, pk, self.owner, commitment_jobs.progress_of(report))
            log.info("job %d: storage commitment %s reported on the same association "
                     "(%d committed, %d failed)", pk, request.transaction_uid,
                     len(report.committed), len(report.failed))
            return
        why = "association closed" if code is None else f"status 0x{code:04X}"
        log.info("job %d: storage commitment %s not reported on the same association (%s); "
                 "queued for a new association", pk, request.transaction_uid, why)
        try:
            jobs.release(engine, pk, self.owner)
        except Exception:
            log.exception("job %d: cannot queue the report; it is recovered when stale", pk)


class _Beat:
    """Calls ``fn`` at most every :data:`pacsnode.core.jobs.HEARTBEAT_S` seconds."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= jobs.HEARTBEAT_S:
            self.last = time.monotonic()
            try:
                self.fn()
            except Exception:
                log.warning("storage commitment: heartbeat failed", exc_info=True)


def _peer_ending(assoc: Association) -> bool:
    """Whether the peer asked to release or abort (not yet processed by the reactor)."""
    primitive = assoc.dul.peek_next_pdu()
    if isinstance(primitive, A_RELEASE):
        return primitive.result is None
    return isinstance(primitive, A_ABORT | A_P_ABORT)


def _take_response(assoc: Association, message_id: int) -> N_EVENT_REPORT | None:
    """Remove our N-EVENT-REPORT response from the DIMSE queue, leaving any other message
    (a new request of the peer) for the reactor."""
    queue = assoc.dimse.msg_queue
    with queue.mutex:
        for item in list(queue.queue):
            msg = item[1]
            if isinstance(msg, N_EVENT_REPORT) and msg.Status is not None and \
                    msg.MessageIDBeingRespondedTo == message_id:
                queue.queue.remove(item)
                return msg
    return None


def send_event_report(assoc: Association, info: Dataset, event_type: int, context: Any, *,
                      timeout: float, beat: Callable[[], None] = lambda: None) -> int | None:
    """Send an N-EVENT-REPORT (Storage Commitment, PS3.4 J.3.3) on an association we
    accepted, from a thread other than its reactor's; the response status, or ``None`` if
    it was not sent or not answered (peer released or aborted, or ``timeout``).

    pynetdicom's ``send_n_event_report`` waits ``dimse_timeout`` for the response and then
    aborts; here a peer that asks to release meanwhile ends the wait at once, and the
    association is left to its reactor either way."""
    pause_reactor(assoc)
    checkpoint: Any = assoc._reactor_checkpoint
    try:
        if not assoc.is_established or not getattr(checkpoint, "parked", False) or \
                _peer_ending(assoc):
            return None
        syntax = context.transfer_syntax
        data = encode(info, syntax.is_implicit_VR, syntax.is_little_endian,
                      syntax.is_deflated)
        if data is None:
            raise ValueError("cannot encode the Event Information")
        req = N_EVENT_REPORT()
        req.MessageID = message_id = next(_message_ids) % 0x10000 or 1
        req.AffectedSOPClassUID = SOP_CLASS
        req.AffectedSOPInstanceUID = commitment.STORAGE_COMMITMENT_INSTANCE
        req.EventTypeID = event_type
        req.EventInformation = BytesIO(data)
        assoc.dimse.send_msg(req, context.context_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rsp = _take_response(assoc, message_id)
            if rsp is not None:
                return int(rsp.Status)  # type: ignore[arg-type]
            if not assoc.is_established or _peer_ending(assoc):
                return None
            beat()
            time.sleep(POLL_S)
        return None
    finally:
        checkpoint.set()
