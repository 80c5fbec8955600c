"""What the core answers: the outcome of an ingest, of a delete, and the summaries it lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happened to one ingested data set."""

    STORED = "stored"
    ALREADY_PRESENT = "already present"
    REPLACED = "replaced"
    KEPT_EXISTING = "kept existing"  # duplicate_policy = keep: the new content was discarded
    REJECTED = "rejected"


class RejectReason(StrEnum):
    """Why a data set was refused; front ends map these to protocol statuses."""

    CANNOT_UNDERSTAND = "cannot understand"  # not DICOM, truncated, cannot be indexed
    MISSING_UID = "required UID missing or invalid"
    SOP_CLASS_MISMATCH = "data set does not match SOP class"
    UID_MISMATCH = "data set does not match the request"
    DUPLICATE_REJECTED = "duplicate rejected"  # duplicate_policy = reject
    OUT_OF_RESOURCES = "out of resources"  # disk full, index unavailable


@dataclass(frozen=True)
class IngestResult:
    """The result of :meth:`pacsnode.Archive.ingest`."""

    outcome: Outcome
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    study_instance_uid: str = ""
    transfer_syntax: str = ""
    series_instance_uid: str = ""
    reason: RejectReason | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the instance is now in the archive (stored, present, replaced or kept)."""
        return self.outcome is not Outcome.REJECTED


@dataclass(frozen=True)
class DeleteResult:
    """The result of :meth:`pacsnode.Archive.delete`."""

    level: str
    uid: str
    instances: int


@dataclass(frozen=True)
class Node:
    """One object of the hierarchy (a patient, study, series or instance) as the index has it:
    its level, its indexed columns, its DICOM JSON attributes and its children's keys."""

    level: str
    columns: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
