"""Storage Commitment Push Model (PS3.4 Annex J), the archive's side: read a commitment
request, decide for each referenced instance whether pacsnode commits to it, and build the
N-EVENT-REPORT Event Information. No network code here
(:mod:`pacsnode.dimse.commitment_scp` serves the DIMSE messages).

An instance is **committed** when the index has it with the SOP Class UID the request names
and its file is present in the store: pacsnode acknowledges a C-STORE only once the file is
fsynced and the index committed (PS3.4 J.3.2.1: the SCP takes over responsibility for the
safekeeping of the instance). Otherwise it fails with a Failure Reason of PS3.3 C.14.1.1,
checked in this order:

* 0131H Duplicate transaction UID — the request reuses the Transaction UID of a commitment
  request whose report has not been delivered yet (every instance of the new request);
* 0122H Referenced SOP Class not supported — not a storage SOP class pacsnode accepts;
* 0112H No such object instance — not in the archive;
* 0119H Class/Instance conflict — in the archive with another SOP Class UID;
* 0110H Processing failure — indexed but its file is missing from the store (the archive is
  inconsistent: ``pacsnode check`` reports it), or the index could not be read.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from pacsnode.core.archive import Archive
from pacsnode.index.engine import read_transaction
from pacsnode.index.schema import instance

STORAGE_COMMITMENT_PUSH_MODEL = "1.2.840.10008.1.20.1"  # SOP Class (PS3.4 J.3)
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # its well-known SOP Instance
ACTION_REQUEST_COMMITMENT = 1  # Action Type ID (PS3.4 J.3.2.1, Table J.3-1)
EVENT_ALL_SUCCESS = 1  # Event Type ID: Storage Commitment Request Successful (J.3.3.1)
EVENT_SOME_FAILED = 2  # Storage Commitment Request Complete - Failures Exist

# Failure Reason (0008,1197) values, PS3.3 C.14.1.1.
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
SOP_CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE_TRANSACTION_UID = 0x0131
REASON_TEXT = {
    PROCESSING_FAILURE: "processing failure",
    NO_SUCH_OBJECT_INSTANCE: "no such object instance",
    CLASS_INSTANCE_CONFLICT: "class/instance conflict",
    SOP_CLASS_NOT_SUPPORTED: "referenced SOP class not supported",
    DUPLICATE_TRANSACTION_UID: "duplicate transaction UID",
}

# DIMSE statuses of a refused N-ACTION (PS3.7 10.1.4.1.10, Annex C).
STATUS_INVALID_ARGUMENT = 0x0115
STATUS_MISSING_ATTRIBUTE = 0x0120

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
MAX_REFERENCES = 100_000  # one request; beyond, refused (0x0115) rather than held in memory
LOOKUP_BATCH = 500  # SOP Instance UIDs per index query


class RequestError(ValueError):
    """An N-ACTION request pacsnode refuses: the DIMSE ``status`` and why."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


@dataclass(frozen=True)
class Reference:
    """One referenced SOP instance: an item of the Referenced SOP Sequence (0008,1199)."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class Request:
    """A Storage Commitment request (Action Information of PS3.4 Table J.3-1)."""

    transaction_uid: str
    references: tuple[Reference, ...]

    def to_json(self) -> dict[str, Any]:
        return {"transaction_uid": self.transaction_uid,
                "references": [[r.sop_class_uid, r.sop_instance_uid] for r in self.references]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(str(data["transaction_uid"]),
                   tuple(Reference(str(c), str(i)) for c, i in data["references"]))


@dataclass
class Report:
    """What pacsnode commits to for one request (Event Information of PS3.4 Table J.3-2)."""

    transaction_uid: str
    committed: list[Reference] = field(default_factory=list)
    failed: list[tuple[Reference, int]] = field(default_factory=list)

    @property
    def event_type_id(self) -> int:
        """1 if every instance is committed, 2 if any failed (PS3.4 J.3.3.1)."""
        return EVENT_SOME_FAILED if self.failed else EVENT_ALL_SUCCESS


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip("\0 ") if value is not None else ""


def _uid(ds: Dataset, keyword: str, where: str) -> str:
    value = _text(ds, keyword)
    if not value:
        raise RequestError(STATUS_MISSING_ATTRIBUTE, f"{keyword} missing or empty{where}")
    if len(value) > 64 or not UID_RE.match(value):
        raise RequestError(STATUS_INVALID_ARGUMENT, f"{keyword}{where} is not a valid UID: "
                           f"{value[:70]!r}")
    return value


def parse_request(ds: Dataset) -> Request:
    """The request in an N-ACTION's Action Information (PS3.4 Table J.3-1): Transaction UID
    (0008,1195) and Referenced SOP Sequence (0008,1199), every item with Referenced SOP
    Class UID and Referenced SOP Instance UID (all Type 1). Raises :class:`RequestError`
    (0x0120 for a missing or empty attribute, 0x0115 for an invalid one)."""
    transaction_uid = _uid(ds, "TransactionUID", "")
    if "ReferencedSOPSequence" not in ds:
        raise RequestError(STATUS_MISSING_ATTRIBUTE, "ReferencedSOPSequence missing")
    items = ds.ReferencedSOPSequence
    if len(items) == 0:
        raise RequestError(STATUS_MISSING_ATTRIBUTE, "ReferencedSOPSequence is empty")
    if len(items) > MAX_REFERENCES:
        raise RequestError(STATUS_INVALID_ARGUMENT, f"more than {MAX_REFERENCES} references "
                           "in one request; split it")
    refs = tuple(Reference(_uid(item, "ReferencedSOPClassUID", f" in item {n}"),
                           _uid(item, "ReferencedSOPInstanceUID", f" in item {n}"))
                 for n, item in enumerate(items, 1))
    return Request(transaction_uid, refs)


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _indexed(archive: Archive, uids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """SOP Instance UID → (SOP Class UID, storage key) of those the index has."""
    wanted = sorted(set(uids))
    found: dict[str, tuple[str, str]] = {}
    cols = (instance.c.sop_instance_uid, instance.c.sop_class_uid, instance.c.storage_key)
    with read_transaction(archive.engine) as conn:
        for chunk in _chunks(wanted, LOOKUP_BATCH):
            query = sa.select(*cols).where(instance.c.sop_instance_uid.in_(chunk))
            for uid, sop_class, key in conn.execute(query):
                found[str(uid)] = (str(sop_class), str(key))
    return found


def decide(archive: Archive, request: Request, *,
           supported_classes: Collection[str] | None = None,
           duplicate: bool = False) -> Report:
    """For each referenced instance, committed or failed with its Failure Reason (see the
    module documentation for the order of the checks). ``supported_classes``: the storage
    SOP classes pacsnode accepts (``None``: any); ``duplicate``: the Transaction UID is
    already in use by a pending request, so every instance fails with 0131H."""
    report = Report(request.transaction_uid)
    if duplicate:
        report.failed = [(r, DUPLICATE_TRANSACTION_UID) for r in request.references]
        return report
    indexed = _indexed(archive, (r.sop_instance_uid for r in request.references))
    present: dict[str, bool] = {}
    for ref in request.references:
        reason: int | None = None
        if supported_classes is not None and ref.sop_class_uid not in supported_classes:
            reason = SOP_CLASS_NOT_SUPPORTED
        elif ref.sop_instance_uid not in indexed:
            reason = NO_SUCH_OBJECT_INSTANCE
        else:
            sop_class, key = indexed[ref.sop_instance_uid]
            if sop_class != ref.sop_class_uid:
                reason = CLASS_INSTANCE_CONFLICT
            else:
                if key not in present:
                    present[key] = archive.store.exists(key)
                if not present[key]:
                    reason = PROCESSING_FAILURE
        if reason is None:
            report.committed.append(ref)
        else:
            report.failed.append((ref, reason))
    return report


def failed_everything(request: Request, reason: int = PROCESSING_FAILURE) -> Report:
    """A report failing every instance (the archive could not be read at all)."""
    return Report(request.transaction_uid, [], [(r, reason) for r in request.references])


def report_dataset(report: Report, retrieve_aet: str) -> Dataset:
    """The N-EVENT-REPORT Event Information (PS3.4 Table J.3-2): Transaction UID; the
    Referenced SOP Sequence of committed instances (only if any, Type 1C) and the Failed
    SOP Sequence with a Failure Reason per item (only if any, Type 1C). Retrieve AE Title
    (0008,0054, Type 3) is given once at the top level, our AE title, when some instances
    are committed: they can all be retrieved from us. No Storage Media File-Set ID/UID (the
    instances are kept online)."""
    ds = Dataset()
    ds.TransactionUID = report.transaction_uid
    if report.committed:
        ds.RetrieveAETitle = retrieve_aet
        ds.ReferencedSOPSequence = DicomSequence(
            [_item(ref) for ref in report.committed])
    if report.failed:
        items = []
        for ref, reason in report.failed:
            item = _item(ref)
            item.FailureReason = reason
            items.append(item)
        ds.FailedSOPSequence = DicomSequence(items)
    return ds


def _item(ref: Reference) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    return item
