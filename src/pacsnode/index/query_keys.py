"""Which query keys are index columns, and the keys derived from the index.

The C-FIND keys of PS3.4 C.6.1.1.2–C.6.1.1.5 and C.6.2.1.2–C.6.2.1.4 (required, unique and
the usual optional ones) are columns of the level's table; a key found here is matched in
SQL. Any other key is matched against the level's DICOM JSON after the SQL filter, with the
same rules (:mod:`pacsnode.index.matching`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pacsnode.index.levels import Level
from pacsnode.index.schema import instance, patient, series, study


@dataclass(frozen=True)
class KeyColumn:
    """A query key kept in a column: its level, column and VR. ``multi``: the column holds
    several values joined by backslashes. ``derived``: the value is not in the data sets but
    kept by the index (counts, Modalities in Study...)."""

    level: Level
    column: Any
    vr: str
    multi: bool = False
    derived: bool = False


UNIQUE_KEYS: dict[Level, int] = {
    Level.PATIENT: 0x00100020,  # Patient ID
    Level.STUDY: 0x0020000D,  # Study Instance UID
    Level.SERIES: 0x0020000E,  # Series Instance UID
    Level.IMAGE: 0x00080018,  # SOP Instance UID
}

TABLES = {Level.PATIENT: patient, Level.STUDY: study, Level.SERIES: series,
          Level.IMAGE: instance}

COLUMNS: dict[int, KeyColumn] = {
    # Patient (PS3.4 C.6.1.1.2)
    0x00100010: KeyColumn(Level.PATIENT, patient.c.patient_name_norm, "PN"),
    0x00100020: KeyColumn(Level.PATIENT, patient.c.patient_id, "LO"),
    0x00100021: KeyColumn(Level.PATIENT, patient.c.issuer_of_patient_id, "LO"),
    0x00100030: KeyColumn(Level.PATIENT, patient.c.patient_birth_date, "DA"),
    0x00100040: KeyColumn(Level.PATIENT, patient.c.patient_sex, "CS"),
    0x00201200: KeyColumn(Level.PATIENT, patient.c.num_studies, "IS", derived=True),
    0x00201202: KeyColumn(Level.PATIENT, patient.c.num_series, "IS", derived=True),
    0x00201204: KeyColumn(Level.PATIENT, patient.c.num_instances, "IS", derived=True),
    # Study (C.6.1.1.3, C.6.2.1.2)
    0x0020000D: KeyColumn(Level.STUDY, study.c.study_instance_uid, "UI"),
    0x00080020: KeyColumn(Level.STUDY, study.c.study_date, "DA"),
    0x00080030: KeyColumn(Level.STUDY, study.c.study_time, "TM"),
    0x00080050: KeyColumn(Level.STUDY, study.c.accession_number, "SH"),
    0x00200010: KeyColumn(Level.STUDY, study.c.study_id, "SH"),
    0x00080090: KeyColumn(Level.STUDY, study.c.referring_physician_name_norm, "PN"),
    0x00081030: KeyColumn(Level.STUDY, study.c.study_description, "LO"),
    0x00080061: KeyColumn(Level.STUDY, study.c.modalities_in_study, "CS", multi=True,
                          derived=True),
    0x00080062: KeyColumn(Level.STUDY, study.c.sop_classes_in_study, "UI", multi=True,
                          derived=True),
    0x00201206: KeyColumn(Level.STUDY, study.c.num_series, "IS", derived=True),
    0x00201208: KeyColumn(Level.STUDY, study.c.num_instances, "IS", derived=True),
    # Series (C.6.1.1.4)
    0x0020000E: KeyColumn(Level.SERIES, series.c.series_instance_uid, "UI"),
    0x00080060: KeyColumn(Level.SERIES, series.c.modality, "CS"),
    0x00200011: KeyColumn(Level.SERIES, series.c.series_number, "IS"),
    0x0008103E: KeyColumn(Level.SERIES, series.c.series_description, "LO"),
    0x00080021: KeyColumn(Level.SERIES, series.c.series_date, "DA"),
    0x00080031: KeyColumn(Level.SERIES, series.c.series_time, "TM"),
    0x00180015: KeyColumn(Level.SERIES, series.c.body_part_examined, "CS"),
    0x00081010: KeyColumn(Level.SERIES, series.c.station_name, "SH"),
    0x00400244: KeyColumn(Level.SERIES, series.c.pps_start_date, "DA"),
    0x00400245: KeyColumn(Level.SERIES, series.c.pps_start_time, "TM"),
    0x00201209: KeyColumn(Level.SERIES, series.c.num_instances, "IS", derived=True),
    # Composite object instance (C.6.1.1.5)
    0x00080018: KeyColumn(Level.IMAGE, instance.c.sop_instance_uid, "UI"),
    0x00080016: KeyColumn(Level.IMAGE, instance.c.sop_class_uid, "UI"),
    0x00200013: KeyColumn(Level.IMAGE, instance.c.instance_number, "IS"),
    0x00080023: KeyColumn(Level.IMAGE, instance.c.content_date, "DA"),
    0x00080033: KeyColumn(Level.IMAGE, instance.c.content_time, "TM"),
    0x00280008: KeyColumn(Level.IMAGE, instance.c.number_of_frames, "IS"),
    0x00280010: KeyColumn(Level.IMAGE, instance.c.rows, "US"),
    0x00280011: KeyColumn(Level.IMAGE, instance.c.columns, "US"),
}

DERIVED_KEYS = {tag: key for tag, key in COLUMNS.items() if key.derived}
