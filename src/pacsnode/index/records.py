"""Column values of each level's row, taken from a data set's header."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

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


def _patient_row(a: Attributes, attrs: str) -> Row:
    name = a.text(0x00100010)
    return {
        "patient_id": a.text(0x00100020, 64),
        "issuer_of_patient_id": a.text(0x00100021, 64),
        "patient_name": name,
        "patient_name_norm": normalise_pn(name),
        "patient_birth_date": a.text(0x00100030, 8),
        "patient_sex": a.text(0x00100040, 16),
        "attrs": attrs,
    }


def _study_row(a: Attributes, attrs: str) -> Row:
    referring = a.text(0x00080090)
    return {
        "study_instance_uid": a.text(0x0020000D, 64),
        "study_date": a.text(0x00080020, 8),
        "study_time": a.text(0x00080030, 16),
        "accession_number": a.text(0x00080050, 64),
        "study_id": a.text(0x00200010, 16),
        "referring_physician_name": referring,
        "referring_physician_name_norm": normalise_pn(referring),
        "study_description": a.text(0x00081030),
        "attrs": attrs,
    }


def _series_row(a: Attributes, attrs: str) -> Row:
    return {
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
        "attrs": attrs,
    }


def _instance_row(a: Attributes, attrs: str) -> Row:
    return {
        "sop_instance_uid": a.text(0x00080018, 64),
        "sop_class_uid": a.text(0x00080016, 64),
        "instance_number": a.integer(0x00200013),
        "content_date": a.text(0x00080023, 8),
        "content_time": a.text(0x00080033, 16),
        "number_of_frames": a.integer(0x00280008),
        "rows": a.integer(0x00280010),
        "columns": a.integer(0x00280011),
        "attrs": attrs,
    }


# Each level's columns come from that level's attributes only (levels.level_of puts every
# column's tag in the level of its table).
_UPPER_ROWS = ((Level.PATIENT, _patient_row), (Level.STUDY, _study_row),
               (Level.SERIES, _series_row))


class _LastRows(threading.local):
    """Per receiving thread (one association), the last row built for each upper level and
    what it was built from: the next instance of the same series nearly always carries the
    same patient, study and series attributes, byte for byte."""

    def __init__(self) -> None:
        self.rows: dict[Level, tuple[tuple[Any, ...], Row]] = {}


_last = _LastRows()
_CONTEXT_TAGS = (0x00080005, 0x00280103)


def _context_key(ds: Dataset) -> tuple[Any, ...] | None:
    """What the conversion of an element depends on besides its own bytes: the character
    set (text values) and the pixel representation (an implicit VR 'US or SS' value such as
    Smallest Pixel Value in Series, PS3.5 A.1). ``None`` if it cannot be told."""
    key: list[Any] = []
    for tag in _CONTEXT_TAGS:
        elem = ds.get_item(tag)
        if elem is None:
            key.append(None)
        elif isinstance(elem, RawDataElement):
            key.append((elem.VR, elem.value, elem.is_little_endian))
        else:  # pydicom converts the character set while reading, to decode text
            value = elem.value
            if isinstance(value, list | MultiValue):
                value = tuple(value)
            if not isinstance(value, str | int | tuple | type(None)):
                return None
            key.append(("converted", value))
    return tuple(key)


def extract(ds: Dataset, *, reuse: bool = True) -> InstanceRecord:
    """Build the rows of all four levels from a header-only data set (no file access).

    With ``reuse``, a patient, study or series level whose elements are byte for byte those
    of the previous data set this thread extracted (same character set and pixel
    representation) reuses that row instead of converting the same values to DICOM JSON
    again; either way the rows are the same."""
    grouped = dicom_json.group_levels(ds)
    image = dicom_json.level_json(ds, grouped[Level.IMAGE])
    context_key = _context_key(ds) if reuse else None
    rows: dict[Level, Row] = {}
    for level, build in _UPPER_ROWS:
        raw = dicom_json.raw_key(grouped[level]) if context_key is not None else None
        key = None if raw is None else (context_key, raw)
        last = _last.rows.get(level)
        if key is not None and last is not None and last[0] == key:
            rows[level] = dict(last[1])
            continue
        level_attrs = dicom_json.level_json(ds, grouped[level])
        dicom_json.copy_charset(level_attrs, image)
        row = build(Attributes({level: level_attrs}), dicom_json.dumps(level_attrs))
        if key is not None:
            _last.rows[level] = (key, row)
        rows[level] = dict(row)
    instance = _instance_row(Attributes({Level.IMAGE: image}), dicom_json.dumps(image))
    return InstanceRecord(patient=rows[Level.PATIENT], study=rows[Level.STUDY],
                          series=rows[Level.SERIES], instance=instance)
