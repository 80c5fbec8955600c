"""DIMSE status codes pacsnode answers with (PS3.4 B.2.3, C.4.1.1.4, C.4.2.1.5, C.4.3.1.4;
PS3.7 C).

The specific codes inside the ranges the standard reserves are pacsnode's choice and are
listed in docs/conformance.md.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from pacsnode.core.results import IngestResult, RejectReason

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources (A7xx)
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Error: Data Set does not match SOP Class (A9xx)
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand (Cxxx): unreadable or truncated
CANNOT_UNDERSTAND_MISSING_UID = 0xC001  # a required UID is missing or invalid
CANNOT_UNDERSTAND_UID_MISMATCH = 0xC002  # SOP Instance UID differs from the request's
CANNOT_UNDERSTAND_DUPLICATE = 0xC003  # duplicate_policy = reject
PROCESSING_FAILURE = 0x0110  # a failure pacsnode did not foresee (PS3.7 C.4.1)

# Query/Retrieve (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)
PENDING = 0xFF00  # Matches are continuing, current match supplied
PENDING_WARNING = 0xFF01  # ... warning: one or more Optional Keys were not supported
CANCEL = 0xFE00  # Matching / sub-operations terminated due to Cancel
IDENTIFIER_DOES_NOT_MATCH = 0xA900  # Identifier does not match SOP Class
UNABLE_TO_PROCESS = 0xC000  # Unable to process (C000-CFFF)
MOVE_DESTINATION_UNKNOWN = 0xA801  # Refused: Move Destination unknown
SUBOPS_WARNING = 0xB000  # Sub-operations Complete – One or more Failures or Warnings


def with_comment(status: int, comment: str) -> Dataset:
    """A status with an Error Comment (0000,0902), cut to its 64 characters."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


def store_status(result: IngestResult) -> int:
    """The C-STORE response status for an ingest result."""
    if result.ok:
        return SUCCESS
    if result.reason is RejectReason.OUT_OF_RESOURCES:
        return OUT_OF_RESOURCES
    if result.reason is RejectReason.SOP_CLASS_MISMATCH:
        return DATASET_DOES_NOT_MATCH_SOP_CLASS
    if result.reason is RejectReason.UID_MISMATCH:
        return CANNOT_UNDERSTAND_UID_MISMATCH
    if result.reason is RejectReason.DUPLICATE_REJECTED:
        return CANNOT_UNDERSTAND_DUPLICATE
    if result.reason is RejectReason.MISSING_UID:
        return CANNOT_UNDERSTAND_MISSING_UID
    return CANNOT_UNDERSTAND
