"""Writing the index: add and remove instances, keeping the hierarchy and the derived
attributes right (PS3.4 C.3.2 Number of Patient/Study/Series Related …, Modalities in
Study, SOP Classes in Study).

Every function takes a connection inside a write transaction; the caller commits. The
common path (a new instance in a known series) costs a handful of indexed statements; a
data set that moves a study to another patient, or a series to another study, triggers a
full recount of the rows it touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pacsnode.index.direct import Direct
from pacsnode.index.records import InstanceRecord, Row
from pacsnode.index.schema import instance, patient, series, study

# Statements of the hot path are built once: SQLAlchemy memoises a reused statement's cache
# key, which makes executing it several times cheaper than building a new one per call.
_BY_PATIENT_KEY = sa.and_(patient.c.patient_id == sa.bindparam("k_patient_id"),
                          patient.c.issuer_of_patient_id == sa.bindparam("k_issuer"))
_BY_STUDY_UID = study.c.study_instance_uid == sa.bindparam("k_uid")
_BY_SERIES_UID = series.c.series_instance_uid == sa.bindparam("k_uid")
_SELECTS = {id(w): sa.select(t).where(w) for t, w in
            ((patient, _BY_PATIENT_KEY), (study, _BY_STUDY_UID), (series, _BY_SERIES_UID))}
# The statements every instance runs go straight to the DBAPI cursor (index/direct.py).
_INSERT_INSTANCE = Direct(instance.insert().returning(instance.c.pk))
_BUMP_SERIES = Direct(series.update().where(series.c.pk == sa.bindparam("k_pk"))
                      .values(num_instances=series.c.num_instances + 1))
_BUMP_STUDY = Direct(study.update().where(study.c.pk == sa.bindparam("k_pk"))
                     .values(num_instances=study.c.num_instances + 1))
_BUMP_PATIENT = Direct(patient.update().where(patient.c.pk == sa.bindparam("k_pk"))
                       .values(num_instances=patient.c.num_instances + 1))
_FIND_INSTANCE = Direct(
    sa.select(instance, series.c.study_fk, study.c.patient_fk)
    .join(series, series.c.pk == instance.c.series_fk)
    .join(study, study.c.pk == series.c.study_fk)
    .where(instance.c.sop_instance_uid == sa.bindparam("k_uid"))
)

# The common case in one statement: the series exists, under its study and patient.
_HIERARCHY = Direct(
    sa.select(series, study, patient)
    .join(study, study.c.pk == series.c.study_fk)
    .join(patient, patient.c.pk == study.c.patient_fk)
    .where(series.c.series_instance_uid == sa.bindparam("k_uid"))
    .set_label_style(sa.LABEL_STYLE_TABLENAME_PLUS_COL)
)
_PREFIXES = (("patient_", patient), ("study_", study), ("series_", series))

_ZERO_PATIENT = {"num_studies": 0, "num_series": 0, "num_instances": 0}
_ZERO_STUDY = {"num_series": 0, "num_instances": 0, "modalities_in_study": "",
               "sop_classes_in_study": ""}


def _insert_ignore(conn: Connection, table: sa.Table, values: Row) -> bool:
    """INSERT that does nothing when a concurrent writer created the same row first.
    Returns whether this statement inserted the row."""
    if conn.dialect.name == "postgresql":
        # rowcount is -1 for this statement with psycopg: ask for the inserted key instead.
        stmt: Any = (postgresql.insert(table).values(values).on_conflict_do_nothing()
                     .returning(table.c.pk))
        return conn.execute(stmt).first() is not None
    if conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = table.insert().values(values)
    return bool(conn.execute(stmt).rowcount == 1)


def _get_or_create(
    conn: Connection, table: sa.Table, where: sa.ColumnElement[bool], key: Row, values: Row
) -> tuple[Row, bool]:
    """The row matching ``where`` (with bound parameters ``key``), creating it from
    ``values`` if absent. Returns the row as a dict and whether it was created here."""
    select = _SELECTS[id(where)]
    row = conn.execute(select, key).mappings().first()
    if row is not None:
        return dict(row), False
    created = _insert_ignore(conn, table, values)
    row = conn.execute(select, key).mappings().one()
    return dict(row), created


def _refresh(conn: Connection, table: sa.Table, row: Row, new: Row, now: float) -> None:
    """Update a level's attributes to the latest instance's, if they changed."""
    changed = {k: v for k, v in new.items() if row.get(k) != v}
    if changed:
        changed["updated_at"] = now
        conn.execute(table.update().where(table.c.pk == row["pk"]).values(changed))


def _append_value(multi: str, value: str) -> str | None:
    """``multi`` ('\\'-joined) with ``value`` added, or ``None`` if already there or empty."""
    if not value:
        return None
    values = multi.split("\\") if multi else []
    if value in values:
        return None
    return "\\".join(sorted([*values, value]))


def _known_hierarchy(conn: Connection, rec: InstanceRecord) -> tuple[Row, Row, Row] | None:
    """The patient, study and series rows of ``rec`` in one statement, if its series is
    indexed under its study and its patient (the common case: the next instance of a
    series); ``None`` otherwise."""
    row = _HIERARCHY.first(conn, {"k_uid": rec.series["series_instance_uid"]})
    if row is None:
        return None
    found = []
    for prefix, table in _PREFIXES:
        found.append({c.name: row[prefix + c.name] for c in table.columns})
    pat, st, se = found
    if (st["study_instance_uid"] != rec.study["study_instance_uid"]
            or pat["patient_id"] != rec.patient["patient_id"]
            or pat["issuer_of_patient_id"] != rec.patient["issuer_of_patient_id"]):
        return None
    return pat, st, se


def add_instance(conn: Connection, rec: InstanceRecord, file_row: Row, now: float) -> int:
    """Index a new instance (its SOP Instance UID must not be indexed yet).
    Returns the new instance's primary key."""
    known = _known_hierarchy(conn, rec)
    if known is not None:
        pat, st, se = known
        for table, row, new in ((patient, pat, rec.patient), (study, st, rec.study),
                                (series, se, rec.series)):
            _refresh(conn, table, row, new, now)
        # Modalities in Study must follow a series' new Modality
        remodal = {(pat["pk"], st["pk"])} if se["modality"] != rec.series["modality"] else set()
        return _add_below(conn, rec, file_row, now, pat, (st, False), (se, False), remodal)
    pat, _ = _get_or_create(
        conn, patient, _BY_PATIENT_KEY,
        {"k_patient_id": rec.patient["patient_id"],
         "k_issuer": rec.patient["issuer_of_patient_id"]},
        {**rec.patient, **_ZERO_PATIENT, "updated_at": now},
    )
    _refresh(conn, patient, pat, rec.patient, now)

    st, st_new = _get_or_create(
        conn, study, _BY_STUDY_UID, {"k_uid": rec.study["study_instance_uid"]},
        {**rec.study, **_ZERO_STUDY, "patient_fk": pat["pk"], "created_at": now,
         "updated_at": now},
    )
    moved: set[tuple[int, int]] = set()  # (patient_pk, study_pk) pairs needing a recount
    if st["patient_fk"] != pat["pk"]:
        moved.add((st["patient_fk"], st["pk"]))
        conn.execute(study.update().where(study.c.pk == st["pk"]).values(patient_fk=pat["pk"]))
    _refresh(conn, study, st, rec.study, now)

    se, se_new = _get_or_create(
        conn, series, _BY_SERIES_UID, {"k_uid": rec.series["series_instance_uid"]},
        {**rec.series, "num_instances": 0, "study_fk": st["pk"], "updated_at": now},
    )
    if se["study_fk"] != st["pk"]:
        old_study = conn.execute(
            sa.select(study.c.pk, study.c.patient_fk).where(study.c.pk == se["study_fk"])
        ).one()
        moved.add((old_study.patient_fk, old_study.pk))
        conn.execute(series.update().where(series.c.pk == se["pk"]).values(study_fk=st["pk"]))
    if not se_new and se["modality"] != rec.series["modality"]:
        moved.add((pat["pk"], st["pk"]))  # Modalities in Study must follow the new Modality
    _refresh(conn, series, se, rec.series, now)
    return _add_below(conn, rec, file_row, now, pat, (st, st_new), (se, se_new), moved)


def _add_below(conn: Connection, rec: InstanceRecord, file_row: Row, now: float, pat: Row,
               study_row: tuple[Row, bool], series_row: tuple[Row, bool],
               moved: set[tuple[int, int]]) -> int:
    """Insert the instance row under its series and keep the derived attributes right:
    bumped counts, or a recount of the rows in ``moved``. (``study_row`` and
    ``series_row``: each row, and whether it was created by this instance.)"""
    st, st_new = study_row
    se, se_new = series_row
    inserted = _INSERT_INSTANCE.first(conn, {**rec.instance, **file_row,
                                             "series_fk": se["pk"], "received_at": now})
    assert inserted is not None
    inst_pk = int(inserted["pk"])

    if moved:
        moved.add((pat["pk"], st["pk"]))
        recount(conn, {p for p, _ in moved}, {s for _, s in moved})
        return inst_pk

    _BUMP_SERIES.run(conn, {"k_pk": se["pk"]})
    study_values: dict[str, Any] = {}
    patient_values: dict[str, Any] = {}
    if se_new:
        study_values["num_series"] = study.c.num_series + 1
        patient_values["num_series"] = patient.c.num_series + 1
        modalities = _append_value(st["modalities_in_study"], rec.series["modality"])
        if modalities is not None:
            study_values["modalities_in_study"] = modalities
    if st_new:
        patient_values["num_studies"] = patient.c.num_studies + 1
    sop_classes = _append_value(st["sop_classes_in_study"], rec.instance["sop_class_uid"])
    if sop_classes is not None:
        study_values["sop_classes_in_study"] = sop_classes
    _BUMP_STUDY.run(conn, {"k_pk": st["pk"]})
    _BUMP_PATIENT.run(conn, {"k_pk": pat["pk"]})
    if study_values:
        conn.execute(study.update().where(study.c.pk == st["pk"]).values(study_values))
    if patient_values:
        conn.execute(patient.update().where(patient.c.pk == pat["pk"]).values(patient_values))
    return inst_pk


def lock_parents(conn: Connection, records: Sequence[InstanceRecord]) -> None:
    """On PostgreSQL, lock the existing patient, study and series rows the instances of
    ``records`` go under, table by table in primary key order, before any is changed: every
    writing transaction that does this takes its row locks in the same order, so concurrent
    ones wait for each other instead of deadlocking. (SQLite has one writer at a time.)"""
    if conn.dialect.name != "postgresql" or not records:
        return
    patients = {(r.patient["patient_id"], r.patient["issuer_of_patient_id"]) for r in records}
    conn.execute(sa.select(patient.c.pk).where(
        sa.tuple_(patient.c.patient_id, patient.c.issuer_of_patient_id).in_(sorted(patients)))
        .order_by(patient.c.pk).with_for_update())
    conn.execute(sa.select(study.c.pk).where(study.c.study_instance_uid.in_(
        sorted({r.study["study_instance_uid"] for r in records})))
        .order_by(study.c.pk).with_for_update())
    conn.execute(sa.select(series.c.pk).where(series.c.series_instance_uid.in_(
        sorted({r.series["series_instance_uid"] for r in records})))
        .order_by(series.c.pk).with_for_update())


def find_instance(conn: Connection, sop_instance_uid: str) -> Row | None:
    """The instance row with its series, study and patient keys, or ``None``."""
    return _FIND_INSTANCE.first(conn, {"k_uid": sop_instance_uid})


def key_is_indexed(conn: Connection, storage_key: str) -> bool:
    """Whether an instance row refers to the file ``storage_key``."""
    query = sa.select(instance.c.pk).where(instance.c.storage_key == storage_key).limit(1)
    return conn.execute(query).first() is not None


def remove_instances(conn: Connection, rows: Iterable[Row]) -> None:
    """Remove instance rows (as returned by :func:`find_instance`) and recount their parents;
    series, studies and patients left empty are removed too."""
    rows = list(rows)
    if not rows:
        return
    conn.execute(instance.delete().where(instance.c.pk.in_([r["pk"] for r in rows])))
    recount(conn, {r["patient_fk"] for r in rows}, {r["study_fk"] for r in rows},
            {r["series_fk"] for r in rows})


def recount(
    conn: Connection,
    patient_pks: Iterable[int],
    study_pks: Iterable[int],
    series_pks: Iterable[int] = (),
) -> None:
    """Recompute derived attributes from the rows below, deleting rows left empty.
    Order matters: series, then studies, then patients."""
    study_pks = set(study_pks)
    series_pks = set(series_pks)
    if study_pks:
        series_pks |= set(conn.execute(
            sa.select(series.c.pk).where(series.c.study_fk.in_(study_pks))).scalars())
    for se_pk in series_pks:
        n = conn.execute(sa.select(sa.func.count()).select_from(instance)
                         .where(instance.c.series_fk == se_pk)).scalar_one()
        if n == 0:
            conn.execute(series.delete().where(series.c.pk == se_pk))
        else:
            conn.execute(series.update().where(series.c.pk == se_pk).values(num_instances=n))
    for st_pk in study_pks:
        _recount_study(conn, st_pk)
    for pat_pk in set(patient_pks):
        _recount_patient(conn, pat_pk)


def _recount_study(conn: Connection, st_pk: int) -> None:
    se_rows = conn.execute(
        sa.select(series.c.modality, series.c.num_instances).where(series.c.study_fk == st_pk)
    ).all()
    if not se_rows:
        conn.execute(study.delete().where(study.c.pk == st_pk))
        return
    sop_classes = conn.execute(
        sa.select(instance.c.sop_class_uid).distinct()
        .join(series, series.c.pk == instance.c.series_fk).where(series.c.study_fk == st_pk)
    ).scalars()
    conn.execute(study.update().where(study.c.pk == st_pk).values(
        num_series=len(se_rows),
        num_instances=sum(r.num_instances for r in se_rows),
        modalities_in_study="\\".join(sorted({r.modality for r in se_rows if r.modality})),
        sop_classes_in_study="\\".join(sorted(set(sop_classes))),
    ))


def _recount_patient(conn: Connection, pat_pk: int) -> None:
    st_rows = conn.execute(
        sa.select(study.c.num_series, study.c.num_instances).where(study.c.patient_fk == pat_pk)
    ).all()
    if not st_rows:
        conn.execute(patient.delete().where(patient.c.pk == pat_pk))
        return
    conn.execute(patient.update().where(patient.c.pk == pat_pk).values(
        num_studies=len(st_rows),
        num_series=sum(r.num_series for r in st_rows),
        num_instances=sum(r.num_instances for r in st_rows),
    ))
