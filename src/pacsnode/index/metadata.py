"""Instance metadata straight from the index's DICOM JSON text, for WADO-RS metadata
(PS3.18 10.4.1.1.2): the JSON of the patient, study and series levels is parsed once per
distinct series and the instance level's JSON text is passed on as stored, so a
1,000-instance series costs one query and little Python per instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.index import dicom_json
from pacsnode.index.engine import read_transaction
from pacsnode.index.schema import instance, patient, series, study
from pacsnode.index.search import FETCH_BATCH

CHARSET_KEY = "00080005"  # copied to every level (dicom_json.split_levels): kept once


@dataclass(frozen=True)
class MetadataRow:
    """One instance: its UIDs, the members of the levels above as JSON text (without the
    braces; may be empty), and its own level's JSON object text as stored."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    upper_members: str
    instance_json: str


def _upper_members(patient_text: str, study_text: str, series_text: str) -> str:
    merged: dict[str, object] = {}
    for text in (patient_text, study_text, series_text):
        merged.update(dicom_json.loads(text))
    merged.pop(CHARSET_KEY, None)  # the instance level has it when the data set has it
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":"))[1:-1]


def metadata_rows(engine: Engine, study_uid: str, series_uid: str | None = None,
                  sop_instance_uid: str | None = None) -> Iterator[MetadataRow]:
    """The instances of a study, series or one instance, in the order they were stored."""
    stmt = (sa.select(patient.c.attrs, study.c.attrs, series.c.attrs, instance.c.attrs,
                      series.c.series_instance_uid, instance.c.sop_instance_uid,
                      series.c.pk)
            .select_from(instance.join(series, instance.c.series_fk == series.c.pk)
                         .join(study, series.c.study_fk == study.c.pk)
                         .join(patient, study.c.patient_fk == patient.c.pk))
            .where(study.c.study_instance_uid == study_uid)
            .order_by(instance.c.pk))
    if series_uid is not None:
        stmt = stmt.where(series.c.series_instance_uid == series_uid)
    if sop_instance_uid is not None:
        stmt = stmt.where(instance.c.sop_instance_uid == sop_instance_uid)
    upper: dict[int, str] = {}
    with read_transaction(engine) as conn:
        rows = conn.execution_options(yield_per=FETCH_BATCH).execute(stmt)
        for p_attrs, st_attrs, se_attrs, i_attrs, se_uid, sop_uid, series_pk in rows:
            members = upper.get(series_pk)
            if members is None:
                members = upper[series_pk] = _upper_members(p_attrs, st_attrs, se_attrs)
            yield MetadataRow(study_uid, str(se_uid), str(sop_uid), members,
                              str(i_attrs or "{}"))
