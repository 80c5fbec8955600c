"""The public face of the archive core: every front end (CLI, DIMSE, web) and every Python
script goes through :class:`Archive`.

>>> archive = Archive.open("pacsnode-data")                    # doctest: +SKIP
>>> archive.ingest("ct.dcm").outcome                           # doctest: +SKIP
<Outcome.STORED: 'stored'>
>>> [s.columns["study_instance_uid"] for s in archive.studies()]  # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
import sqlalchemy as sa
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite

from pacsnode.config import Settings, normalise_db_url
from pacsnode.core import consistency
from pacsnode.core.group_commit import GroupCommitter
from pacsnode.core.ingest import Expectation, Ingestor, Spooled
from pacsnode.core.results import DeleteResult, IngestResult, Node, Outcome, RejectReason
from pacsnode.index import dicom_json, migrate, pending_deletes, writer
from pacsnode.index import metadata as index_metadata
from pacsnode.index import search as search_index
from pacsnode.index.engine import create_engine, read_transaction, write_transaction
from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition
from pacsnode.index.schema import instance, patient, series, study
from pacsnode.index.sorting import SortKey
from pacsnode.storage.filesystem import FileSystemStore

log = logging.getLogger(__name__)

Source = str | Path | bytes | Dataset | BinaryIO

_TABLES = {Level.PATIENT: patient, Level.STUDY: study, Level.SERIES: series,
           Level.IMAGE: instance}
_UID_COLUMNS = {Level.STUDY: study.c.study_instance_uid,
                Level.SERIES: series.c.series_instance_uid,
                Level.IMAGE: instance.c.sop_instance_uid}


def _node(level: Level, row: Any) -> Node:
    columns = dict(row)
    attrs = dicom_json.loads(columns.pop("attrs", None))
    return Node(level=level.value, columns=columns, attributes=attrs)


def _encode(ds: Dataset) -> io.BytesIO:
    """A data set's bytes: a Part-10 file, or the bare data set when no file meta can be made
    (no transfer syntax, as for a data set built in memory: explicit VR little endian; or a
    required UID missing, which ingest then reports)."""
    buf = io.BytesIO()
    try:
        dcmwrite(buf, ds, enforce_file_format=True)
    except (AttributeError, ValueError):
        meta = getattr(ds, "file_meta", None)
        known = ((meta is not None and "TransferSyntaxUID" in meta)
                 or ds.original_encoding[0] is not None)
        buf = io.BytesIO()
        dcmwrite(buf, ds, enforce_file_format=False,
                 **({} if known else {"implicit_vr": False, "little_endian": True}))
    buf.seek(0)
    return buf


class Archive:
    """A pacsnode archive: an index database plus a blob store.

    Open one with :meth:`open`; it is safe to use from several threads, and several
    processes may open the same archive at once.
    """

    def __init__(self, settings: Settings, *, migrate_schema: bool = True,
                 migrate_isolated: bool = False) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(settings.db_url)
        if migrate_schema:
            migrate.upgrade(self.engine, isolated=migrate_isolated)
        self.store = FileSystemStore(settings.data_dir / "files", fsync=settings.fsync)
        #: the ingest steps (its ``flush_index`` is switched by pacsnode.core.index_flush)
        self.ingestor = Ingestor(self.engine, self.store, aet=settings.aet,
                                  duplicate_policy=settings.duplicate_policy)
        self._group = GroupCommitter(self.ingestor)

    @classmethod
    def open(cls, location: str | Path | Settings | None = None, *, db: str | None = None,
             **options: Any) -> Archive:
        """Open (creating if needed) the archive in data directory ``location``.

        ``db`` (or a ``location`` that is a database URL) selects the index; the default is
        SQLite inside the data directory. Other keyword arguments are :class:`Settings`
        fields, e.g. ``duplicate_policy="keep"``.
        """
        if isinstance(location, Settings):
            return cls(location)
        if isinstance(location, str) and "://" in location:
            db, location = location, options.pop("data_dir", None)
        data_dir = Path(str(location)) if location is not None else Path("pacsnode-data")
        settings = Settings(data_dir=data_dir, db=normalise_db_url(db) if db else None,
                            **options)
        return cls(settings)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, source: Source, *, sending_aet: str = "",
               expect_sop_class: str | None = None,
               expect_sop_instance: str | None = None,
               expect_study: str | None = None) -> IngestResult:
        """Store and index one DICOM data set: a file path, the bytes of a file, an open
        binary file, or a pydicom :class:`~pydicom.dataset.Dataset`.

        Never raises for bad input: the result says stored, already present, replaced,
        kept existing, or rejected with a reason. ``expect_*`` are the UIDs the request
        announced (a C-STORE's Affected SOP Class/Instance UID, a STOW-RS URL's study); a data
        set that differs is rejected.
        """
        expect = Expectation(expect_sop_class, expect_sop_instance, expect_study)
        if isinstance(source, str | Path):
            with open(source, "rb") as fh:
                return self.ingestor.ingest_stream(fh, sending_aet=sending_aet, expect=expect)
        if isinstance(source, bytes):
            return self.ingestor.ingest_stream(io.BytesIO(source), sending_aet=sending_aet,
                                                expect=expect)
        if isinstance(source, Dataset):
            try:
                buf = _encode(source)
            except Exception as exc:  # pydicom raises many types on values it cannot encode
                return IngestResult(Outcome.REJECTED, reason=RejectReason.CANNOT_UNDERSTAND,
                                    detail=f"cannot encode the data set: {exc}")
            return self.ingestor.ingest_stream(buf, sending_aet=sending_aet, expect=expect)
        return self.ingestor.ingest_stream(source, sending_aet=sending_aet, expect=expect)

    def ingest_spooled(self, spooled: Spooled, *, sending_aet: str = "",
                       expect_sop_class: str | None = None,
                       expect_sop_instance: str | None = None,
                       expect_study: str | None = None) -> IngestResult:
        """Store and index a data set a receiver wrote in pacsnode's file layout into the
        store's temporary directory (:attr:`store` ``.temp_dir``), without copying it
        (:mod:`pacsnode.core.spool_file`). The spooled file itself is left for the caller
        to remove. Threads calling this at the same time share commits
        (:mod:`pacsnode.core.group_commit`); each gets its own result once it is durable."""
        expect = Expectation(expect_sop_class, expect_sop_instance, expect_study)
        return self._group.ingest_spooled(spooled, sending_aet=sending_aet, expect=expect)

    def ingest_spooled_many(self, batch: Sequence[Spooled], *, sending_aet: str = "",
                            expect_study: str | None = None) -> list[IngestResult]:
        """:meth:`ingest_spooled` for several spooled files answered together (a STOW-RS
        request): the same checks and durability, with one directory fsync per directory
        and one index transaction for the batch. One result per file, in order."""
        expect = Expectation(study_instance_uid=expect_study)
        return self.ingestor.ingest_spooled_many([(s, expect) for s in batch],
                                                  sending_aet=sending_aet)

    # -- query ----------------------------------------------------------------------------

    def search(self, level: Level, keys: Mapping[int, Condition], *,
               limit: int | None = None, offset: int = 0,
               order: Sequence[SortKey] = ()) -> search_index.Results:
        """Find the entities of ``level`` matching ``keys`` (tag → parsed condition, see
        :func:`pacsnode.index.matching.parse`), streamed from the index with their DICOM
        JSON (this level's merged with the levels above) — no file is opened. ``order``:
        sort keys (:func:`pacsnode.index.sorting.parse`), else the order of storage."""
        return search_index.search(self.engine, level, keys, limit=limit, offset=offset,
                                   order=order)

    def count(self, level: Level, keys: Mapping[int, Condition]) -> int:
        """How many entities of ``level`` match ``keys`` (see :meth:`search`)."""
        return search_index.count(self.engine, level, keys)

    def metadata(self, study_uid: str, series_uid: str | None = None,
                 sop_instance_uid: str | None = None) -> Iterator[index_metadata.MetadataRow]:
        """The DICOM JSON of a study's, a series' or one instance's instances, as the index
        keeps it (:mod:`pacsnode.index.metadata`): no file is opened."""
        return index_metadata.metadata_rows(self.engine, study_uid, series_uid,
                                            sop_instance_uid)

    # -- browse ---------------------------------------------------------------------------

    def _list(self, level: Level, where: sa.ColumnElement[bool] | None,
              order: list[Any]) -> list[Node]:
        table = _TABLES[level]
        query = sa.select(table).order_by(*order)
        if where is not None:
            query = query.where(where)
        with read_transaction(self.engine) as conn:
            return [_node(level, r) for r in conn.execute(query).mappings()]

    def patients(self) -> list[Node]:
        """Every patient, by Patient ID."""
        return self._list(Level.PATIENT, None, [patient.c.patient_id, patient.c.pk])

    def studies(self, patient_pk: int | None = None) -> list[Node]:
        """Every study (of one patient, by its index key, if given), by date."""
        where = study.c.patient_fk == patient_pk if patient_pk is not None else None
        return self._list(Level.STUDY, where, [study.c.study_date, study.c.study_time,
                                                study.c.pk])

    def series(self, study_uid: str) -> list[Node]:
        """The series of a study, by Series Number."""
        sub = sa.select(study.c.pk).where(study.c.study_instance_uid == study_uid)
        return self._list(Level.SERIES, series.c.study_fk.in_(sub.scalar_subquery()),
                          [series.c.series_number, series.c.pk])

    def instances(self, series_uid: str) -> list[Node]:
        """The instances of a series, by Instance Number."""
        sub = sa.select(series.c.pk).where(series.c.series_instance_uid == series_uid)
        return self._list(Level.IMAGE, instance.c.series_fk.in_(sub.scalar_subquery()),
                          [instance.c.instance_number, instance.c.pk])

    def counts(self) -> dict[str, int]:
        """How many patients, studies, series and instances the index holds."""
        with read_transaction(self.engine) as conn:
            return {
                name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for name, t in (("patients", patient), ("studies", study),
                                ("series", series), ("instances", instance))
            }

    def stored_bytes(self) -> int:
        """The total size of the stored files, as indexed."""
        with read_transaction(self.engine) as conn:
            total = conn.execute(sa.select(sa.func.sum(instance.c.file_size))).scalar_one()
        return int(total or 0)

    def find(self, uid: str) -> Node | None:
        """The study, series or instance with this UID (or the patient with this Patient
        ID), whichever exists, with all its indexed attributes."""
        with read_transaction(self.engine) as conn:
            for level, column in _UID_COLUMNS.items():
                row = conn.execute(sa.select(_TABLES[level]).where(column == uid)
                                   ).mappings().first()
                if row is not None:
                    return _node(level, row)
            row = conn.execute(sa.select(patient).where(patient.c.patient_id == uid)
                               ).mappings().first()
            return _node(Level.PATIENT, row) if row is not None else None

    # -- retrieve -------------------------------------------------------------------------

    def open_instance(self, sop_instance_uid: str) -> BinaryIO:
        """The stored file of an instance (pacsnode's file meta, then the data set exactly
        as received). Raises KeyError if the instance is not in the archive."""
        with read_transaction(self.engine) as conn:
            row = writer.find_instance(conn, sop_instance_uid)
        if row is None:
            raise KeyError(sop_instance_uid)
        return self.store.open(row["storage_key"])

    def read_instance(self, sop_instance_uid: str, *,
                      stop_before_pixels: bool = False) -> Dataset:
        """The instance parsed by pydicom."""
        with self.open_instance(sop_instance_uid) as fh:
            return pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels)

    def instance_keys(self, uid: str) -> Iterator[str]:
        """The SOP Instance UIDs below a patient (Patient ID), study, series or instance."""
        node = self.find(uid)
        if node is None:
            return iter(())
        with read_transaction(self.engine) as conn:
            query = self._instances_below(Level(node.level), node.columns["pk"])
            return iter(list(conn.execute(query.with_only_columns(
                instance.c.sop_instance_uid)).scalars()))

    @staticmethod
    def _instances_below(level: Level, pk: int) -> sa.Select[Any]:
        query = (sa.select(instance, series.c.study_fk, study.c.patient_fk)
                 .join(series, series.c.pk == instance.c.series_fk)
                 .join(study, study.c.pk == series.c.study_fk))
        column = {Level.PATIENT: study.c.patient_fk, Level.STUDY: study.c.pk,
                  Level.SERIES: series.c.pk, Level.IMAGE: instance.c.pk}[level]
        return query.where(column == pk)

    # -- delete ---------------------------------------------------------------------------

    def delete(self, uid: str) -> DeleteResult | None:
        """Remove a patient (by Patient ID), study, series or instance: index rows first (so
        nothing refers to a missing file), then files, for good once this returns. ``None``
        if the UID is unknown. The files to remove are recorded with the index change, so
        that files a crash leaves behind are removed later (:meth:`finish_deletes`), never
        adopted back."""
        node = self.find(uid)
        if node is None:
            return None
        level = Level(node.level)
        with write_transaction(self.engine) as conn:
            rows = [dict(r) for r in conn.execute(
                self._instances_below(level, node.columns["pk"])).mappings()]
            writer.remove_instances(conn, rows)
            if level is Level.PATIENT:
                conn.execute(patient.delete().where(patient.c.pk == node.columns["pk"]))
            keys = [row["storage_key"] for row in rows]
            pending_deletes.record(conn, keys)
        self._remove_files(keys)
        log.info("deleted %s %s (%d instances)", level.value.lower(), uid, len(rows))
        return DeleteResult(level=level.value, uid=uid, instances=len(rows))

    def _remove_files(self, keys: Sequence[str]) -> None:
        """Remove the recorded files ``keys`` of deleted instances, and their records."""
        self.store.delete_many(pending_deletes.unindexed(self.engine, keys))
        with write_transaction(self.engine) as conn:
            pending_deletes.forget(conn, keys)

    def pending_deletes(self) -> list[str]:
        """Storage keys of deleted instances whose files a crash may have left behind."""
        return pending_deletes.pending(self.engine)

    def finish_deletes(self) -> list[str]:
        """Remove the files of deletes a crash interrupted (``serve`` does this as it
        starts, ``check --repair`` too); returns their keys. A file whose instance was
        stored again since is kept."""
        keys = self.pending_deletes()
        if keys:
            self._remove_files(keys)
            log.warning("finished %d interrupted file deletion(s)", len(keys))
        return keys

    # -- consistency ----------------------------------------------------------------------

    def check(self, *, repair: bool = False, verify_hashes: bool = False,
              progress: Any = None) -> consistency.CheckReport:
        """Compare index and files: missing files, orphan files, size (and with
        ``verify_hashes`` content) mismatches. ``repair`` adopts complete orphan files,
        removes superseded ones and stale temporary files, and drops index rows whose file
        is gone."""
        return consistency.check(self, repair=repair, verify_hashes=verify_hashes,
                                 progress=progress)
