"""Statements run on the DBAPI cursor (index/direct.py) behave as through SQLAlchemy: same
rows, literal values of the statement bound, and a DBAPI error raised as SQLAlchemy's own
exception class (the ingest retries on IntegrityError), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from pacsnode.core.archive import Archive
from pacsnode.index.direct import Direct
from pacsnode.index.engine import write_transaction
from pacsnode.index.schema import patient

_ROW = {"patient_id": "P1", "issuer_of_patient_id": "", "patient_name": "DOE^J",
        "patient_name_norm": "DOE^J", "patient_birth_date": "", "patient_sex": "",
        "attrs": "{}", "num_studies": 0, "num_series": 0, "num_instances": 0,
        "updated_at": 1.5}

INSERT = Direct(patient.insert().returning(patient.c.pk))
BUMP = Direct(patient.update().where(patient.c.pk == sa.bindparam("k_pk"))
              .values(num_instances=patient.c.num_instances + 2))
FIND = Direct(sa.select(patient.c.pk, patient.c.patient_name, patient.c.num_instances)
              .where(patient.c.patient_id == sa.bindparam("k_id")))


def test_rows_and_literal_values(archive: Archive) -> None:
    with write_transaction(archive.engine) as conn:
        inserted = INSERT.first(conn, _ROW)
        assert inserted is not None
        BUMP.run(conn, {"k_pk": inserted["pk"]})
        BUMP.run(conn, {"k_pk": inserted["pk"]})
        assert FIND.first(conn, {"k_id": "P1"}) == {
            "pk": inserted["pk"], "patient_name": "DOE^J", "num_instances": 4}
        assert FIND.first(conn, {"k_id": "nobody"}) is None
    with archive.engine.connect() as conn:  # committed by the SQLAlchemy transaction
        assert conn.execute(sa.select(patient.c.num_instances)).scalar_one() == 4


def test_a_constraint_violation_is_sqlalchemys_integrity_error(archive: Archive) -> None:
    with write_transaction(archive.engine) as conn:
        INSERT.first(conn, _ROW)
    with pytest.raises(sqlalchemy.exc.IntegrityError), \
            write_transaction(archive.engine) as conn:
        INSERT.first(conn, _ROW)  # (patient_id, issuer) is unique
    with archive.engine.connect() as conn:  # rolled back, the first row intact
        assert conn.execute(sa.select(sa.func.count()).select_from(patient)).scalar_one() == 1
