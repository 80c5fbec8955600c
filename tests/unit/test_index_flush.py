"""Periodic flushing of ingest's SQLite index commits, and the recovery after an unclean stop
(pacsnode.core.index_flush, consistency.recover_placed_since).

A power cut cannot be had in a test; what it can do to the index can: undo the ingest
commits made since the last flush. Those are undone here by removing their rows (or, for a
replacement, putting the old row back) and leaving ``clean`` at 0, as a server that never
stopped leaves it. The next start must index the lost instances again from their files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydicom.dataset import Dataset

from pacsnode.core import index_flush
from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome
from pacsnode.index import writer
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import index_state, instance
from tests.unit.dicomdata import make_dataset


def _open(data_dir: Path, **options: object) -> Archive:
    return Archive.open(data_dir, **options)


def _state(archive: Archive) -> dict[str, float]:
    with read_transaction(archive.engine) as conn:
        return dict(conn.execute(sa.select(index_state.c.name, index_state.c.value)).all())


def _synchronous(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def _lose(archive: Archive, sop_uid: str) -> str:
    """Undo the commit that indexed ``sop_uid``, as a power cut before the next flush can;
    returns the key of its file (which stays: files are flushed before the answer)."""
    with write_transaction(archive.engine) as conn:
        row = writer.find_instance(conn, sop_uid)
        assert row is not None
        writer.remove_instances(conn, [row])
    return str(row["storage_key"])


def _indexed_key(archive: Archive, sop_uid: str) -> str | None:
    with read_transaction(archive.engine) as conn:
        row = writer.find_instance(conn, sop_uid)
    return None if row is None else str(row["storage_key"])


def _series(n: int) -> list[Dataset]:
    return [make_dataset(patient_id="P1", study_uid="1.2.3", series_uid="1.2.3.4",
                         sop_uid=f"1.2.3.4.{i + 1}", instance_number=i + 1)
            for i in range(n)]


def test_an_unflushed_transaction_commits_with_synchronous_normal(tmp_path: Path) -> None:
    with _open(tmp_path / "data") as archive:
        with write_transaction(archive.engine, flush=False) as conn:
            assert _synchronous(conn) == 1  # NORMAL
        with write_transaction(archive.engine) as conn:
            assert _synchronous(conn) == 2  # FULL: the pooled connection was set back
        with read_transaction(archive.engine) as conn:
            assert _synchronous(conn) == 2


def test_the_flusher_records_each_flush_and_a_clean_stop(tmp_path: Path) -> None:
    with _open(tmp_path / "data") as archive:
        assert _state(archive) == {"flushed_at": 0.0, "clean": 1.0}  # migration 0008
        flusher = index_flush.IndexFlusher(archive, owner=True, interval=0.05)
        before = time.time()
        flusher.start()
        assert _state(archive)["clean"] == 0.0
        assert archive.ingestor.flush_index is False
        started = _state(archive)["flushed_at"]
        assert started >= before
        assert archive.ingest(_series(1)[0]).outcome is Outcome.STORED
        deadline = time.monotonic() + 10
        while _state(archive)["flushed_at"] == started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(archive)["flushed_at"] > started
        flusher.stop()
        assert _state(archive)["clean"] == 1.0
        assert archive.ingestor.flush_index is True


def test_nothing_to_flush_makes_no_commit(tmp_path: Path) -> None:
    with _open(tmp_path / "data") as archive:
        flusher = index_flush.IndexFlusher(archive, owner=True, interval=3600)
        flusher.start()
        started = _state(archive)["flushed_at"]
        flusher.flush()
        assert _state(archive)["flushed_at"] == started
        archive.ingest(_series(1)[0])
        flusher.flush()
        assert _state(archive)["flushed_at"] > started
        flusher.stop()


def test_an_unclean_stop_is_recovered_from_the_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    datasets = _series(5)
    with _open(data_dir) as archive:
        index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        for ds in datasets:
            assert archive.ingest(ds).outcome is Outcome.STORED
        lost = [_lose(archive, ds.SOPInstanceUID) for ds in datasets[3:]]
        assert archive.counts()["instances"] == 3
        # no stop(): the server died with clean = 0
    with _open(data_dir) as archive:
        flusher = index_flush.IndexFlusher(archive, owner=True, interval=3600)
        problems = flusher.start()
        assert sorted(p.key for p in problems) == sorted(lost)
        assert all(p.action.startswith("indexed") for p in problems)
        assert archive.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 5}
        for ds, key in zip(datasets[3:], lost, strict=True):
            assert _indexed_key(archive, ds.SOPInstanceUID) == key
        flusher.stop()
    with _open(data_dir) as archive:  # stopped cleanly: no recovery, nothing changes
        assert index_flush.IndexFlusher(archive, owner=True).start() == []


def test_a_lost_replacement_is_applied_again(tmp_path: Path) -> None:
    """The index still names the old file (deleted after the lost commit): the new file,
    acknowledged, wins."""
    data_dir = tmp_path / "data"
    old, new = _series(1)[0], _series(1)[0]
    new.StudyDescription = "REVISED"
    with _open(data_dir) as archive:
        archive.ingest(old)
        old_row = _row(archive, old.SOPInstanceUID)
        index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        assert archive.ingest(new).outcome is Outcome.REPLACED
        new_row = _row(archive, new.SOPInstanceUID)
        assert not archive.store.exists(str(old_row["storage_key"]))
        with write_transaction(archive.engine) as conn:  # the lost commit: old row back
            conn.execute(instance.update().where(instance.c.pk == new_row["pk"]).values(
                storage_key=old_row["storage_key"], digest=old_row["digest"]))
    with _open(data_dir) as archive:
        problems = index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        assert [p.key for p in problems] == [new_row["storage_key"]]
        row = _row(archive, new.SOPInstanceUID)
        assert (row["storage_key"], row["digest"]) == (new_row["storage_key"],
                                                       new_row["digest"])
        assert archive.counts()["instances"] == 1


def test_an_earlier_unindexed_file_does_not_override_a_later_one(tmp_path: Path) -> None:
    """Of two files of one SOP Instance UID, the one placed later stays indexed; the earlier
    one, whose deletion was lost, is removed."""
    data_dir = tmp_path / "data"
    first, second = _series(1)[0], _series(1)[0]
    second.StudyDescription = "SECOND"
    with _open(data_dir) as archive:
        index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        archive.ingest(first)
        first_key = str(_row(archive, first.SOPInstanceUID)["storage_key"])
        keep = tmp_path / "first.dcm"
        keep.hardlink_to(archive.store.path_of(first_key))
        archive.ingest(second)
        second_key = str(_row(archive, second.SOPInstanceUID)["storage_key"])
        archive.store.path_of(first_key).hardlink_to(keep)  # its deletion was lost
        time.sleep(0.05)
        # the second file was placed after the first (a link changes the change time)
        relink = tmp_path / "relink"
        relink.hardlink_to(archive.store.path_of(second_key))
        relink.unlink()
    with _open(data_dir) as archive:
        problems = index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        assert [(p.key, p.action) for p in problems] == [(first_key, "removed")]
        assert _row(archive, second.SOPInstanceUID)["storage_key"] == second_key
        assert not archive.store.exists(first_key)


def _row(archive: Archive, sop_uid: str) -> dict[str, object]:
    with read_transaction(archive.engine) as conn:
        row = writer.find_instance(conn, sop_uid)
    assert row is not None
    return dict(row)


def test_files_from_before_the_last_flush_are_not_scanned(tmp_path: Path) -> None:
    """Only what was placed since the last flush (less the clock margin) is looked at: an
    older orphan is left to ``pacsnode check``."""
    data_dir = tmp_path / "data"
    ds = _series(1)[0]
    with _open(data_dir) as archive:
        index_flush.IndexFlusher(archive, owner=True, interval=3600).start()
        archive.ingest(ds)
        key = _lose(archive, ds.SOPInstanceUID)
        with write_transaction(archive.engine) as conn:  # as if flushed well after it
            conn.execute(index_state.update().where(index_state.c.name == "flushed_at")
                         .values(value=time.time() + 2 * index_flush.CLOCK_MARGIN_S))
    with _open(data_dir) as archive:
        assert index_flush.IndexFlusher(archive, owner=True, interval=3600).start() == []
        assert _indexed_key(archive, ds.SOPInstanceUID) is None
        assert archive.store.exists(key)


@pytest.mark.parametrize("setting", ["commit", "periodic"])
def test_applies_only_to_sqlite_with_periodic(tmp_path: Path, setting: str,
                                              pg_unit_database: str) -> None:
    with _open(tmp_path / "data", index_sync=setting) as archive:
        assert index_flush.applies(archive) is (setting == "periodic")
    with _open(tmp_path / "pg", db=pg_unit_database, index_sync=setting) as archive:
        assert index_flush.applies(archive) is False
