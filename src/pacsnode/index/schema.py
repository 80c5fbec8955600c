"""The index schema (SQLAlchemy 2 Core), one table per level of the DICOM hierarchy.

The keys C-FIND matches on (PS3.4 C.6.1.1.2–C.6.1.1.5 and C.6.2.1: required, unique and the
usual optional keys) are real columns with indexes; each level also keeps its full attribute
set as DICOM JSON text (``attrs``). Person names have a ``*_norm`` column, upper-cased, so
case-insensitive and wildcard matching can use an index. Derived attributes (Number of
Patient/Study/Series Related …, Modalities in Study, SOP Classes in Study) are columns kept
right by every ingest, replace and delete.

Changing this file means adding an Alembic migration under ``migrations/versions``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UID = sa.String(64)
SHORT = sa.String(64)
LONG = sa.String(1024)

patient = sa.Table(
    "patient",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", SHORT, nullable=False),
    sa.Column("issuer_of_patient_id", SHORT, nullable=False),
    sa.Column("patient_name", LONG, nullable=False),
    sa.Column("patient_name_norm", LONG, nullable=False),
    sa.Column("patient_birth_date", sa.String(8), nullable=False),
    sa.Column("patient_sex", sa.String(16), nullable=False),
    sa.Column("num_studies", sa.Integer, nullable=False),
    sa.Column("num_series", sa.Integer, nullable=False),
    sa.Column("num_instances", sa.Integer, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("patient_id", "issuer_of_patient_id"),
    sa.Index(None, "patient_name_norm"),
    sa.Index(None, "patient_birth_date"),
)

study = sa.Table(
    "study",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_fk", sa.Integer, sa.ForeignKey("patient.pk"), nullable=False),
    sa.Column("study_instance_uid", UID, nullable=False, unique=True),
    sa.Column("study_date", sa.String(8), nullable=False),
    sa.Column("study_time", sa.String(16), nullable=False),
    sa.Column("accession_number", SHORT, nullable=False),
    sa.Column("study_id", sa.String(16), nullable=False),
    sa.Column("referring_physician_name", LONG, nullable=False),
    sa.Column("referring_physician_name_norm", LONG, nullable=False),
    sa.Column("study_description", LONG, nullable=False),
    sa.Column("modalities_in_study", sa.String(256), nullable=False),
    sa.Column("sop_classes_in_study", sa.Text, nullable=False),
    sa.Column("num_series", sa.Integer, nullable=False),
    sa.Column("num_instances", sa.Integer, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "patient_fk"),
    sa.Index(None, "study_date", "study_time"),
    sa.Index(None, "accession_number"),
    sa.Index(None, "study_id"),
    sa.Index(None, "referring_physician_name_norm"),
    sa.Index(None, "created_at"),  # sort=-created: the studies stored last
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_fk", sa.Integer, sa.ForeignKey("study.pk"), nullable=False),
    sa.Column("series_instance_uid", UID, nullable=False, unique=True),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("series_number", sa.Integer, nullable=True),
    sa.Column("series_description", LONG, nullable=False),
    sa.Column("series_date", sa.String(8), nullable=False),
    sa.Column("series_time", sa.String(16), nullable=False),
    sa.Column("body_part_examined", sa.String(16), nullable=False),
    sa.Column("station_name", sa.String(16), nullable=False),
    sa.Column("pps_start_date", sa.String(8), nullable=False),
    sa.Column("pps_start_time", sa.String(16), nullable=False),
    sa.Column("num_instances", sa.Integer, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "study_fk"),
    sa.Index(None, "modality"),
)

instance = sa.Table(
    "instance",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_fk", sa.Integer, sa.ForeignKey("series.pk"), nullable=False),
    sa.Column("sop_instance_uid", UID, nullable=False, unique=True),
    sa.Column("sop_class_uid", UID, nullable=False),
    sa.Column("instance_number", sa.Integer, nullable=True),
    sa.Column("content_date", sa.String(8), nullable=False),
    sa.Column("content_time", sa.String(16), nullable=False),
    sa.Column("number_of_frames", sa.Integer, nullable=True),
    sa.Column("rows", sa.Integer, nullable=True),
    sa.Column("columns", sa.Integer, nullable=True),
    sa.Column("transfer_syntax_uid", UID, nullable=False),
    sa.Column("storage_key", sa.String(512), nullable=False),
    sa.Column("file_size", sa.BigInteger, nullable=False),
    sa.Column("data_offset", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("source_aet", sa.String(16), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Index(None, "series_fk"),
    sa.Index(None, "sop_class_uid"),
    sa.Index(None, "storage_key"),
)

# Other DICOM nodes added at run time (``pacsnode peers add``), seen by every node sharing the
# database; ``[peers.NAME]`` entries of the TOML file are not stored here (and win on a name
# clash, see :mod:`pacsnode.core.peers`). An AE title is 1–16 characters (PS3.5 6.2).
peer = sa.Table(
    "peer",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", SHORT, nullable=False, unique=True),
    sa.Column("aet", sa.String(16), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "aet"),
)

# Background jobs (``kind`` "send": a study C-STOREd to a peer), run by
# :mod:`pacsnode.core.jobs` and :mod:`pacsnode.dimse.job_runner`; timestamps are fixed-width
# UTC ISO 8601 text (``2024-01-02T03:04:05.123456Z``), which compares as text in time order.
job = sa.Table(
    "job",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued|running|completed|failed|cancelled
    sa.Column("params", sa.Text, nullable=False),  # JSON: study_instance_uid, peer
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=True),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(128), nullable=True),  # the runner running it
    sa.Column("heartbeat_at", sa.String(32), nullable=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("completed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("warning", sa.Integer, nullable=False),
    sa.Column("failed_list", sa.Text, nullable=False),  # JSON: [{sop_instance_uid, reason}]
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
)

# Modality Worklist (PS3.4 Annex K; :mod:`pacsnode.core.worklist`): one row per Scheduled
# Procedure Step. The matching keys modalities send (Table K.6-1) are columns — those of the
# one Scheduled Procedure Step Sequence (0040,0100) item too — and the whole item is kept
# as DICOM JSON (``attrs``). Person names have ``*_norm`` columns, upper-cased like
# ``patient.patient_name_norm``. ``state``: SCHEDULED, IN PROGRESS, COMPLETED,
# DISCONTINUED, CANCELLED; timestamps as in ``job`` (fixed-width UTC ISO 8601 text).
worklist = sa.Table(
    "worklist",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("station_aet", sa.String(16), nullable=False),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("start_date", sa.String(8), nullable=False),
    sa.Column("start_time", sa.String(16), nullable=False),
    sa.Column("performing_physician_name_norm", LONG, nullable=False),
    sa.Column("patient_name", LONG, nullable=False),
    sa.Column("patient_name_norm", LONG, nullable=False),
    sa.Column("patient_id", SHORT, nullable=False),
    sa.Column("accession_number", SHORT, nullable=False),
    sa.Column("requested_procedure_id", SHORT, nullable=False),
    sa.Column("sps_id", SHORT, nullable=False),
    sa.Column("study_instance_uid", UID, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index(None, "station_aet", "start_date"),
    sa.Index(None, "start_date", "start_time"),
    sa.Index(None, "modality"),
    sa.Index(None, "patient_name_norm"),
    sa.Index(None, "patient_id"),
    sa.Index(None, "accession_number"),
    sa.Index(None, "requested_procedure_id"),
    sa.Index(None, "sps_id"),
    sa.Index(None, "study_instance_uid"),
    sa.Index(None, "state"),
)

# Modality Performed Procedure Steps (PS3.4 Annex F.7; :mod:`pacsnode.core.mpps`): one row per
# MPPS SOP Instance, created by N-CREATE and changed by N-SET. ``status`` is the Performed
# Procedure Step Status (0040,0252): IN PROGRESS, COMPLETED or DISCONTINUED. The study is the
# Study Instance UID of the first Scheduled Step Attributes Sequence item; ``worklist_ids``
# the worklist items (JSON list of ``worklist.pk``) the step performs; ``notified_at`` when
# the study-complete event was raised (NULL: not yet). ``attrs``: the whole instance as DICOM
# JSON.
mpps = sa.Table(
    "mpps",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sop_instance_uid", UID, nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("study_instance_uid", UID, nullable=False),
    sa.Column("patient_id", SHORT, nullable=False),
    sa.Column("accession_number", SHORT, nullable=False),
    sa.Column("performed_station_aet", sa.String(16), nullable=False),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("start_date", sa.String(8), nullable=False),
    sa.Column("start_time", sa.String(16), nullable=False),
    sa.Column("calling_aet", sa.String(16), nullable=False),
    sa.Column("worklist_ids", sa.Text, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("notified_at", sa.String(32), nullable=True),
    sa.Index(None, "status", "notified_at"),
    sa.Index(None, "study_instance_uid"),
    sa.Index(None, "start_date"),
    sa.Index(None, "patient_id"),
)

# Named values about the index itself (pacsnode.core.index_flush): ``flushed_at``, the time
# up to which every ingest commit is known to be on disk, and ``clean``, 1 when the last
# server stopped cleanly. Rows are created by migration 0008.
index_state = sa.Table(
    "index_state",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

# Files of deleted instances not yet removed (pacsnode.index.pending_deletes): a row is
# committed with the delete and dropped once the file is gone, so that a file a crash left
# behind is finished off, not adopted back into the index. Migration 0009.
pending_delete = sa.Table(
    "pending_delete",
    metadata,
    sa.Column("storage_key", sa.String(512), primary_key=True),
    sa.Column("deleted_at", sa.Float, nullable=False),
)
