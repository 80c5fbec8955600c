"""N-CREATE and N-SET SCP of the Modality Performed Procedure Step SOP Class
(1.2.840.10008.3.1.2.3.3; PS3.4 F.7, Procedure Step SOP Classes), kept in the index by
:mod:`pacsnode.core.mpps`.

* **N-CREATE** (F.7.2.1): the Attribute List is decoded in its own Specific Character Set
  and stored; the SOP Instance UID is the request's Affected SOP Instance UID or, when it
  has none, one pacsnode makes and returns in the response (PS3.7 10.1.5.1.4). No
  Attribute List is returned on success (it is optional, PS3.7 10.1.5.1.3).
* **N-SET** (F.7.2.2): the Modification List is applied to the instance named by the
  Requested SOP Instance UID.
* A refusal is answered with the status of :class:`pacsnode.core.mpps_rules.MppsError`, an
  Error Comment saying why, the Error ID 0xA710 for an instance that may no longer be
  updated (Table F.7.2-2) and, for N-SET, the Attribute Identifier List; a Modification or
  Attribute List that cannot be decoded gets 0x0110 (Processing failure). Each refusal is
  logged with its reason.

pynetdicom has one EVT_N_CREATE and one EVT_N_SET handler per association for every SOP
class; other classes get 0x0118 (No such SOP Class).
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from pacsnode.core import mpps
from pacsnode.core.archive import Archive
from pacsnode.core.mpps_rules import PROCESSING_FAILURE, MppsError
from pacsnode.core.worklist import dataset_json
from pacsnode.dimse.requestor import requestor

log = logging.getLogger(__name__)

MPPS_SOP_CLASS = mpps.MPPS_SOP_CLASS
MPPS_SOP_CLASSES = (MPPS_SOP_CLASS,)
SUCCESS = 0x0000
NO_SUCH_SOP_CLASS = 0x0118


def _refusal(error: MppsError, *, with_tags: bool) -> Dataset:
    status = Dataset()
    status.Status = error.status
    status.ErrorComment = error.reason[:64]
    if error.error_id is not None:
        status.ErrorID = error.error_id
    if with_tags and error.tags:
        status.AttributeIdentifierList = list(error.tags)
    return status


class PerformedProcedureStepService:
    """The MPPS N-CREATE/N-SET handlers bound to one archive."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    def handlers(self) -> list[tuple[Any, Any]]:
        """EVT_N_CREATE and EVT_N_SET."""
        return [(evt.EVT_N_CREATE, self.on_n_create), (evt.EVT_N_SET, self.on_n_set)]

    def on_n_create(self, event: Any) -> tuple[Any, Dataset | None]:
        """EVT_N_CREATE: (status, Attribute List) as pynetdicom expects."""
        request = event.request
        sop_class = str(request.AffectedSOPClassUID)
        if sop_class != MPPS_SOP_CLASS:
            return NO_SUCH_SOP_CLASS, None
        uid = str(request.AffectedSOPInstanceUID or "") or None
        try:
            attrs = dataset_json(event.attribute_list)
        except Exception as exc:  # pydicom raises many types on undecodable data
            log.warning("MPPS N-CREATE from %s: Attribute List cannot be decoded: %s",
                        requestor(event.assoc), exc)
            return _refusal(MppsError(PROCESSING_FAILURE, f"cannot decode: {exc}"),
                            with_tags=False), None
        try:
            step = mpps.create(self.archive.engine, attrs, uid,
                               calling_aet=str(event.assoc.requestor.ae_title))
        except MppsError as exc:
            log.warning("MPPS N-CREATE %s from %s refused (0x%04X): %s", uid or "(no UID)",
                        requestor(event.assoc), exc.status, exc.reason)
            return _refusal(exc, with_tags=False), None
        log.info("MPPS %s created by %s: %s, study %s, worklist items %s",
                 step.sop_instance_uid, requestor(event.assoc), step.status,
                 step.study_instance_uid, step.worklist_ids or "none")
        if uid is None:
            reply = Dataset()
            reply.AffectedSOPInstanceUID = step.sop_instance_uid
            return SUCCESS, reply
        return SUCCESS, None

    def on_n_set(self, event: Any) -> tuple[Any, Dataset | None]:
        """EVT_N_SET: (status, Attribute List) as pynetdicom expects."""
        request = event.request
        if str(request.RequestedSOPClassUID) != MPPS_SOP_CLASS:
            return NO_SUCH_SOP_CLASS, None
        uid = str(request.RequestedSOPInstanceUID)
        try:
            modifications = dataset_json(event.modification_list)
        except Exception as exc:  # pydicom raises many types on undecodable data
            log.warning("MPPS N-SET %s from %s: Modification List cannot be decoded: %s",
                        uid, requestor(event.assoc), exc)
            return _refusal(MppsError(PROCESSING_FAILURE, f"cannot decode: {exc}"),
                            with_tags=False), None
        try:
            step = mpps.update(self.archive.engine, uid, modifications)
        except MppsError as exc:
            log.warning("MPPS N-SET %s from %s refused (0x%04X): %s", uid, requestor(event.assoc),
                        exc.status, exc.reason)
            return _refusal(exc, with_tags=True), None
        log.info("MPPS %s set by %s: %s", uid, requestor(event.assoc), step.status)
        return SUCCESS, None
