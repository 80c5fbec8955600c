"""Modality Performed Procedure Steps received by N-CREATE/N-SET (PS3.4 Annex F.7)

One row per MPPS SOP Instance: its status and the keys the REST API and CLI list by as
columns, the whole instance as DICOM JSON, the worklist items it performs and when the
study-complete event was raised.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXED = (
    ("status", "notified_at"),
    ("study_instance_uid",),
    ("start_date",),
    ("patient_id",),
)


def _index(columns: tuple[str, ...]) -> str:
    return "ix_mpps_" + "_".join(columns)


def upgrade() -> None:
    op.create_table(
        "mpps",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("accession_number", sa.String(length=64), nullable=False),
        sa.Column("performed_station_aet", sa.String(length=16), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.String(length=8), nullable=False),
        sa.Column("start_time", sa.String(length=16), nullable=False),
        sa.Column("calling_aet", sa.String(length=16), nullable=False),
        sa.Column("worklist_ids", sa.Text(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("notified_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_mpps")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_mpps_sop_instance_uid")),
    )
    with op.batch_alter_table("mpps", schema=None) as batch_op:
        for columns in INDEXED:
            batch_op.create_index(batch_op.f(_index(columns)), list(columns), unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mpps", schema=None) as batch_op:
        for columns in reversed(INDEXED):
            batch_op.drop_index(batch_op.f(_index(columns)))
    op.drop_table("mpps")
