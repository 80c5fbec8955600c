"""Column values of each level's row, taken from a data set's header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from pacsnode.index import dicom_json
from pacsnode.index.levels import Level

Row = dict[str, Any]


class Attributes:
    """Column values read from a data set's DICOM JSON (all levels merged), which is already
    decoded: no second conversion of pydicom elements."""

    def __init__(self, levels: dict[Level, dicom_json.JsonDict]) -> None:
        self._json: dicom_json.JsonDict = {}
        for level_json in levels.values():
            self._json.update(level_json)

    def text(self, tag: int, limit: int = 1024) -> str:
        """An attribute's value as text ('' when absent or empty); multiple values joined by
        '\\' as in DICOM encoding; person names as 'alphabetic=ideographic=phonetic'; cut to
        ``limit`` characters so a non-conformant value never fails the index (the full
        value stays in the DICOM JSON)."""
        elem = self._json.get(f"{tag:08X}")
        if not elem or "Value" not in elem:
            return ""
        parts = []
        for value in elem["Value"]:
            if value is None:
                parts.append("")
            elif isinstance(value, dict):  # PN (PS3.18 F.2.2)
                groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
                while groups and not groups[-1]:
                    groups.pop()
                parts.append("=".join(groups))
            else:
                parts.append(str(value))
        return "\\".join(parts).strip()[:limit]

    def integer(self, tag: int) -> int | None:
        """The first value of a numeric attribute as an int, ``None`` when absent or not a
        number."""
        elem = self._json.get(f"{tag:08X}")
        try:
            return int(elem["Value"][0]) if elem else None
        except (KeyError, IndexError, TypeError, ValueError, OverflowError):
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
    a = Attributes(levels)
    name = a.text(0x00100010)
    referring = a.text(0x00080090)
    patient: Row = {
        "patient_id": a.text(0x00100020, 64),
        "issuer_of_patient_id": a.text(0x00100021, 64),
        "patient_name": name,
        "patient_name_norm": normalise_pn(name),
        "patient_birth_date": a.text(0x00100030, 8),
        "patient_sex": a.text(0x00100040, 16),
        "attrs": dicom_json.dumps(levels[Level.PATIENT]),
    }
    study: Row = {
        "study_instance_uid": a.text(0x0020000D, 64),
        "study_date": a.text(0x00080020, 8),
        "study_time": a.text(0x00080030, 16),
        "accession_number": a.text(0x00080050, 64),
        "study_id": a.text(0x00200010, 16),
        "referring_physician_name": referring,
        "referring_physician_name_norm": normalise_pn(referring),
        "study_description": a.text(0x00081030),
        "attrs": dicom_json.dumps(levels[Level.STUDY]),
    }
    series: Row = {
        "series_instance_uid": a.text(0x0020000E, 64),
        "modality": a.text(0x00080060, 16),
        "series_number": a.integer(0x00200011),
        "series_description": a.text(0x0008103E),
        "series_date": a.text(0x00080021, 8),
        "series_time": a.text(0x00080031, 16),
        "body_part_examined": a.text(0x00180015, 16),
        "station_name": a.text(0x00081010, 16),
        "pps_start_date": a.text(0x00400244, 8),
        "pps_start_time": a.text(0x00400245, 16),
        "attrs": dicom_json.dumps(levels[Level.SERIES]),
    }
    instance: Row = {
        "sop_instance_uid": a.text(0x00080018, 64),
        "sop_class_uid": a.text(0x00080016, 64),
        "instance_number": a.integer(0x00200013),
        "content_date": a.text(0x00080023, 8),
        "content_time": a.text(0x00080033, 16),
        "number_of_frames": a.integer(0x00280008),
        "rows": a.integer(0x00280010),
        "columns": a.integer(0x00280011),
        "attrs": dicom_json.dumps(levels[Level.IMAGE]),
    }
    return InstanceRecord(patient=patient, study=study, series=series, instance=instance)
