"""Modality Worklist: scheduled procedure step items (PS3.4 Annex K, ``pacsnode worklist``)

One row per Scheduled Procedure Step, with the matching keys of Table K.6-1 as indexed
columns (station AE title and start date together, as modalities ask for "my work of
today") and the whole item as DICOM JSON. On PostgreSQL the columns matched with wildcards
also get ``text_pattern_ops`` indexes (see 0003).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXED = (
    ("station_aet", "start_date"),
    ("start_date", "start_time"),
    ("modality",),
    ("patient_name_norm",),
    ("patient_id",),
    ("accession_number",),
    ("requested_procedure_id",),
    ("sps_id",),
    ("study_instance_uid",),
    ("state",),
)
PATTERN_COLUMNS = ("patient_name_norm", "patient_id", "accession_number",
                   "performing_physician_name_norm")


def _index(columns: tuple[str, ...]) -> str:
    return "ix_worklist_" + "_".join(columns)


def _pattern_index(column: str) -> str:
    return f"ix_worklist_{column}_pattern"


def upgrade() -> None:
    op.create_table(
        "worklist",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("station_aet", sa.String(length=16), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.String(length=8), nullable=False),
        sa.Column("start_time", sa.String(length=16), nullable=False),
        sa.Column("performing_physician_name_norm", sa.String(length=1024), nullable=False),
        sa.Column("patient_name", sa.String(length=1024), nullable=False),
        sa.Column("patient_name_norm", sa.String(length=1024), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("accession_number", sa.String(length=64), nullable=False),
        sa.Column("requested_procedure_id", sa.String(length=64), nullable=False),
        sa.Column("sps_id", sa.String(length=64), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_worklist")),
    )
    with op.batch_alter_table("worklist", schema=None) as batch_op:
        for columns in INDEXED:
            batch_op.create_index(batch_op.f(_index(columns)), list(columns), unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for column in PATTERN_COLUMNS:
            op.execute(f"CREATE INDEX {_pattern_index(column)} ON worklist "
                       f"({column} text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in PATTERN_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS {_pattern_index(column)}")
    with op.batch_alter_table("worklist", schema=None) as batch_op:
        for columns in reversed(INDEXED):
            batch_op.drop_index(batch_op.f(_index(columns)))

    op.drop_table("worklist")
