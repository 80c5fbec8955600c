"""initial schema: patient, study, series, instance

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=1024), nullable=False),
        sa.Column("patient_name_norm", sa.String(length=1024), nullable=False),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=False),
        sa.Column("patient_sex", sa.String(length=16), nullable=False),
        sa.Column("num_studies", sa.Integer(), nullable=False),
        sa.Column("num_series", sa.Integer(), nullable=False),
        sa.Column("num_instances", sa.Integer(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_patient")),
        sa.UniqueConstraint(
            "patient_id",
            "issuer_of_patient_id",
            name=op.f("uq_patient_patient_id_issuer_of_patient_id"),
        ),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_patient_birth_date"), ["patient_birth_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_patient_patient_name_norm"), ["patient_name_norm"], unique=False
        )

    op.create_table(
        "study",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_fk", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.String(length=8), nullable=False),
        sa.Column("study_time", sa.String(length=16), nullable=False),
        sa.Column("accession_number", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=16), nullable=False),
        sa.Column("referring_physician_name", sa.String(length=1024), nullable=False),
        sa.Column("referring_physician_name_norm", sa.String(length=1024), nullable=False),
        sa.Column("study_description", sa.String(length=1024), nullable=False),
        sa.Column("modalities_in_study", sa.String(length=256), nullable=False),
        sa.Column("sop_classes_in_study", sa.Text(), nullable=False),
        sa.Column("num_series", sa.Integer(), nullable=False),
        sa.Column("num_instances", sa.Integer(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_fk"], ["patient.pk"], name=op.f("fk_study_patient_fk_patient")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_study")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_study_study_instance_uid")),
    )
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_accession_number"), ["accession_number"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_study_patient_fk"), ["patient_fk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_study_referring_physician_name_norm"),
            ["referring_physician_name_norm"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_study_study_date_study_time"), ["study_date", "study_time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_study_study_id"), ["study_id"], unique=False)

    op.create_table(
        "series",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_fk", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=1024), nullable=False),
        sa.Column("series_date", sa.String(length=8), nullable=False),
        sa.Column("series_time", sa.String(length=16), nullable=False),
        sa.Column("body_part_examined", sa.String(length=16), nullable=False),
        sa.Column("station_name", sa.String(length=16), nullable=False),
        sa.Column("pps_start_date", sa.String(length=8), nullable=False),
        sa.Column("pps_start_time", sa.String(length=16), nullable=False),
        sa.Column("num_instances", sa.Integer(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["study_fk"], ["study.pk"], name=op.f("fk_series_study_fk_study")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_series")),
        sa.UniqueConstraint("series_instance_uid", name=op.f("uq_series_series_instance_uid")),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_modality"), ["modality"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_study_fk"), ["study_fk"], unique=False)

    op.create_table(
        "instance",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series_fk", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("content_date", sa.String(length=8), nullable=False),
        sa.Column("content_time", sa.String(length=16), nullable=False),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("data_offset", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source_aet", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_fk"], ["series.pk"], name=op.f("fk_instance_series_fk_series")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_instance")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_instance_sop_instance_uid")),
    )
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_series_fk"), ["series_fk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_instance_sop_class_uid"), ["sop_class_uid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_instance_storage_key"), ["storage_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_storage_key"))
        batch_op.drop_index(batch_op.f("ix_instance_sop_class_uid"))
        batch_op.drop_index(batch_op.f("ix_instance_series_fk"))

    op.drop_table("instance")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_study_fk"))
        batch_op.drop_index(batch_op.f("ix_series_modality"))

    op.drop_table("series")
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_study_id"))
        batch_op.drop_index(batch_op.f("ix_study_study_date_study_time"))
        batch_op.drop_index(batch_op.f("ix_study_referring_physician_name_norm"))
        batch_op.drop_index(batch_op.f("ix_study_patient_fk"))
        batch_op.drop_index(batch_op.f("ix_study_accession_number"))

    op.drop_table("study")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_patient_name_norm"))
        batch_op.drop_index(batch_op.f("ix_patient_patient_birth_date"))

    op.drop_table("patient")
