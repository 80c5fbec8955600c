"""Column values of each level's row, taken from a data set's header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacsnode.index import dicom_json
from pacsnode.index.levels import Level

Row = dict[str, Any]


def text(ds: Dataset, keyword: str, limit: int = 1024) -> str:
    """An attribute's value as text ('' when absent or empty); multiple values joined by '\\'
    as in DICOM encoding; cut to ``limit`` characters so a non-conformant value never fails
    the index (the full value is still in the level's DICOM JSON)."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value: index it as empty rather than refuse the instance
        return ""
    if value is None:
        return ""
    out = "\\".join(str(v) for v in value) if isinstance(value, MultiValue | list) else str(value)
    return out.strip()[:limit]


def integer(ds: Dataset, keyword: str) -> int | None:
    """An IS/US/UL attribute as an int, or ``None`` when absent or not a number."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, MultiValue | list):
            value = value[0]
        return int(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    except Exception:
        return None


def normalise_pn(name: str) -> str:
    """The matching form of a person name: upper case, so PN matching is case-insensitive
    (PS3.4 C.2.2.2.1 leaves case sensitivity of PN to the implementation)."""
    return name.upper()


@dataclass(frozen=True)
class InstanceRecord:
    """Everything the index stores for one instance, by level."""

    patient: Row
    study: Row
    series: Row
    instance: Row


def extract(ds: Dataset) -> InstanceRecord:
    """Build the rows of all four levels from a header-only data set (no file access)."""
    levels = dicom_json.split_levels(ds)
    name = text(ds, "PatientName")
    referring = text(ds, "ReferringPhysicianName")
    patient: Row = {
        "patient_id": text(ds, "PatientID", 64),
        "issuer_of_patient_id": text(ds, "IssuerOfPatientID", 64),
        "patient_name": name,
        "patient_name_norm": normalise_pn(name),
        "patient_birth_date": text(ds, "PatientBirthDate", 8),
        "patient_sex": text(ds, "PatientSex", 16),
        "attrs": dicom_json.dumps(levels[Level.PATIENT]),
    }
    study: Row = {
        "study_instance_uid": text(ds, "StudyInstanceUID", 64),
        "study_date": text(ds, "StudyDate", 8),
        "study_time": text(ds, "StudyTime", 16),
        "accession_number": text(ds, "AccessionNumber", 64),
        "study_id": text(ds, "StudyID", 16),
        "referring_physician_name": referring,
        "referring_physician_name_norm": normalise_pn(referring),
        "study_description": text(ds, "StudyDescription"),
        "attrs": dicom_json.dumps(levels[Level.STUDY]),
    }
    series: Row = {
        "series_instance_uid": text(ds, "SeriesInstanceUID", 64),
        "modality": text(ds, "Modality", 16),
        "series_number": integer(ds, "SeriesNumber"),
        "series_description": text(ds, "SeriesDescription"),
        "series_date": text(ds, "SeriesDate", 8),
        "series_time": text(ds, "SeriesTime", 16),
        "body_part_examined": text(ds, "BodyPartExamined", 16),
        "station_name": text(ds, "StationName", 16),
        "pps_start_date": text(ds, "PerformedProcedureStepStartDate", 8),
        "pps_start_time": text(ds, "PerformedProcedureStepStartTime", 16),
        "attrs": dicom_json.dumps(levels[Level.SERIES]),
    }
    instance: Row = {
        "sop_instance_uid": text(ds, "SOPInstanceUID", 64),
        "sop_class_uid": text(ds, "SOPClassUID", 64),
        "instance_number": integer(ds, "InstanceNumber"),
        "content_date": text(ds, "ContentDate", 8),
        "content_time": text(ds, "ContentTime", 16),
        "number_of_frames": integer(ds, "NumberOfFrames"),
        "rows": integer(ds, "Rows"),
        "columns": integer(ds, "Columns"),
        "attrs": dicom_json.dumps(levels[Level.IMAGE]),
    }
    return InstanceRecord(patient=patient, study=study, series=series, instance=instance)
