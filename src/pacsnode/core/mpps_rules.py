"""The attribute rules of the Modality Performed Procedure Step SOP Class (PS3.4 F.7.2,
Table F.7.2-1) that an SCP checks, on DICOM JSON. No database, no network: the functions
raise :class:`MppsError` naming the DIMSE status (PS3.4 F.7.2.1.2, F.7.2.2.2, PS3.7 C) and
the offending attributes; :mod:`pacsnode.core.mpps` applies them.

* **N-CREATE** (F.7.2.1): the Type 1 attributes of Table F.7.2-1 must be present
  (0x0120 Missing Attribute) with a value (0x0121 Missing Attribute Value): Scheduled Step
  Attributes Sequence with at least one item, each with a Study Instance UID; Performed
  Procedure Step ID, Performed Station AE Title, Performed Procedure Step Start Date and
  Time, Performed Procedure Step Status, Modality. The status must be ``IN PROGRESS``
  (0x0106 Invalid Attribute Value). Type 2 attributes an SCU leaves out are accepted and
  not added (an SCP choice, in the conformance statement).
* **N-SET** (F.7.2.2): only an instance whose status is ``IN PROGRESS`` may be changed
  (0x0110 Processing Failure, Error ID 0xA710, F.7.2.2.2). Attributes Table F.7.2-1 marks
  "Not allowed" for N-SET are refused (0x0105 No Such Attribute, with the Attribute
  Identifier List). A new status must be ``IN PROGRESS``, ``COMPLETED`` or
  ``DISCONTINUED`` (0x0106). Going to ``COMPLETED`` or ``DISCONTINUED`` needs the final
  state attributes: Performed Procedure Step End Date and End Time with values, and for
  ``COMPLETED`` at least one Performed Series Sequence item (0x0121 otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

JsonDict = dict[str, Any]

CHARSET = 0x00080005
SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
MODALITY = 0x00080060
PATIENT_NAME, PATIENT_ID, ISSUER_OF_PATIENT_ID = 0x00100010, 0x00100020, 0x00100021
BIRTH_DATE, SEX = 0x00100030, 0x00100040
REFERENCED_PATIENT_SEQUENCE = 0x00081120
STUDY_UID = 0x0020000D
STUDY_ID = 0x00200010
ACCESSION = 0x00080050
REQUESTED_PROCEDURE_ID = 0x00401001
SPS_ID = 0x00400009
SCHEDULED_STEP_ATTRIBUTES = 0x00400270
STATION_AET = 0x00400241
STATION_NAME = 0x00400242
LOCATION = 0x00400243
START_DATE, START_TIME = 0x00400244, 0x00400245
END_DATE, END_TIME = 0x00400250, 0x00400251
STATUS = 0x00400252
PPS_ID = 0x00400253
PERFORMED_SERIES = 0x00400340
SERIES_UID = 0x0020000E
REFERENCED_IMAGES = 0x00081140
REFERENCED_NON_IMAGES = 0x00400220
REFERENCED_SOP_INSTANCE_UID = 0x00081155

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)
FINAL = frozenset({COMPLETED, DISCONTINUED})

# Type 1 at N-CREATE (Table F.7.2-1).
CREATE_TYPE1 = (SCHEDULED_STEP_ATTRIBUTES, PPS_ID, STATION_AET, START_DATE, START_TIME,
                STATUS, MODALITY)
# "Not allowed" at N-SET (Table F.7.2-1): what identifies the patient, the scheduled steps,
# the station and the start of the step is fixed by the N-CREATE.
NOT_SETTABLE = frozenset({
    SOP_CLASS_UID, SOP_INSTANCE_UID, SCHEDULED_STEP_ATTRIBUTES, PATIENT_NAME, PATIENT_ID,
    ISSUER_OF_PATIENT_ID, BIRTH_DATE, SEX, REFERENCED_PATIENT_SEQUENCE, PPS_ID, STATION_AET,
    STATION_NAME, LOCATION, START_DATE, START_TIME, MODALITY, STUDY_ID,
})

# DIMSE statuses (PS3.7 C, PS3.4 F.7.2.1.2 and F.7.2.2.2).
NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_OBJECT_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
MAY_NO_LONGER_BE_UPDATED = 0xA710  # Error ID of F.7.2.2.2


class MppsError(ValueError):
    """An N-CREATE or N-SET that cannot be applied: the DIMSE status to answer, why, and the
    attributes concerned (for the Attribute Identifier List)."""

    def __init__(self, status: int, reason: str, tags: Sequence[int] = (),
                 error_id: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.tags = tuple(tags)
        self.error_id = error_id


def tag_text(tag: int) -> str:
    """``(gggg,eeee)``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def key(tag: int) -> str:
    """The DICOM JSON key of ``tag``."""
    return f"{tag:08X}"


def values(attrs: Mapping[str, Any], tag: int) -> list[Any]:
    """The values of ``tag`` in ``attrs`` (``[]`` when absent or empty)."""
    element = attrs.get(key(tag)) or {}
    return list(element.get("Value") or [])


def text(attrs: Mapping[str, Any], tag: int) -> str:
    """The first value of ``tag`` as text (a person name's Alphabetic group)."""
    found = values(attrs, tag)
    if not found:
        return ""
    first = found[0]
    if isinstance(first, dict):
        return str(first.get("Alphabetic", ""))
    return str(first).strip()


def items(attrs: Mapping[str, Any], tag: int) -> list[JsonDict]:
    """The items of sequence ``tag``."""
    return [v for v in values(attrs, tag) if isinstance(v, dict)]


def _has_value(attrs: Mapping[str, Any], tag: int) -> bool:
    return any(v not in (None, "") for v in values(attrs, tag))


def check_create(attrs: Mapping[str, Any]) -> None:
    """The N-CREATE rules of the module documentation."""
    missing = [t for t in CREATE_TYPE1 if key(t) not in attrs]
    if missing:
        raise MppsError(MISSING_ATTRIBUTE, "missing Type 1 attribute(s) "
                        + ", ".join(tag_text(t) for t in missing), missing)
    empty = [t for t in CREATE_TYPE1 if not _has_value(attrs, t)]
    if empty:
        raise MppsError(MISSING_ATTRIBUTE_VALUE, "Type 1 attribute(s) without a value "
                        + ", ".join(tag_text(t) for t in empty), empty)
    if any(not text(item, STUDY_UID) for item in items(attrs, SCHEDULED_STEP_ATTRIBUTES)):
        raise MppsError(MISSING_ATTRIBUTE_VALUE, "a Scheduled Step Attributes Sequence item "
                        "has no Study Instance UID (0020,000D)", [SCHEDULED_STEP_ATTRIBUTES])
    status = text(attrs, STATUS)
    if status != IN_PROGRESS:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, f"Performed Procedure Step Status "
                        f"(0040,0252) must be IN PROGRESS at N-CREATE, not {status!r}",
                        [STATUS])


def check_set(current: Mapping[str, Any], modifications: Mapping[str, Any]) -> JsonDict:
    """The N-SET rules of the module documentation; returns the instance after the change
    (each attribute of the Modification List replaces the stored one, PS3.7 10.1.3)."""
    status = text(current, STATUS)
    if status != IN_PROGRESS:
        raise MppsError(PROCESSING_FAILURE,
                        "Performed Procedure Step Object may no longer be updated "
                        f"(it is {status})", error_id=MAY_NO_LONGER_BE_UPDATED)
    refused = sorted(int(k, 16) for k in modifications if int(k, 16) in NOT_SETTABLE)
    if refused:
        raise MppsError(NO_SUCH_ATTRIBUTE, "attribute(s) that may not be set by N-SET "
                        "(PS3.4 Table F.7.2-1): " + ", ".join(tag_text(t) for t in refused),
                        refused)
    merged = {**current, **modifications}
    new_status = text(merged, STATUS)
    if new_status not in STATUSES:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, "Performed Procedure Step Status (0040,0252) "
                        f"must be one of {', '.join(STATUSES)}, not {new_status!r}", [STATUS])
    if new_status in FINAL:
        missing = [t for t in (END_DATE, END_TIME) if not _has_value(merged, t)]
        if new_status == COMPLETED and not items(merged, PERFORMED_SERIES):
            missing.append(PERFORMED_SERIES)
        if missing:
            raise MppsError(MISSING_ATTRIBUTE_VALUE, f"{new_status} needs "
                            + ", ".join(tag_text(t) for t in missing), missing)
    return merged


def referenced_instances(attrs: Mapping[str, Any]) -> list[str]:
    """The SOP Instance UIDs the Performed Series Sequence references (images and other
    composite instances), in order, without repeats."""
    seen: dict[str, None] = {}
    for series in items(attrs, PERFORMED_SERIES):
        for tag in (REFERENCED_IMAGES, REFERENCED_NON_IMAGES):
            for ref in items(series, tag):
                uid = text(ref, REFERENCED_SOP_INSTANCE_UID)
                if uid:
                    seen.setdefault(uid)
    return list(seen)
