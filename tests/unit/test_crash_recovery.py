"""Crashes during ingest, and what ``check`` finds and ``check(repair=True)`` does about them.

A crash is simulated for real: a subprocess ingests with one function replaced by
``os._exit`` (the only fault injection; nothing of the archive is mocked), so no ``finally``
or ``except`` clause of the ingest runs, as after a power cut or a SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import pytest
import sqlalchemy.exc
from pydicom.dataset import Dataset

import pacsnode.index.writer
from pacsnode.core.archive import Archive
from pacsnode.core.consistency import Problem
from pacsnode.core.results import Outcome, RejectReason
from tests.unit.dicomdata import (
    assert_index_matches,
    blob_files,
    data_set_bytes,
    ingest_all,
    make_dataset,
    part10,
    split_part10,
    stored_bytes,
    temp_files,
)

SRC = Path(__file__).resolve().parents[2] / "src"
CRASH_EXIT = 77
CHILD = f"""
import os, sys
from pacsnode.core.archive import Archive
from pacsnode.index import writer
from pacsnode.storage.filesystem import FileSystemStore

data_dir, db, path, where, aet = sys.argv[1:6]

def crash(*args, **kwargs):
    os._exit({CRASH_EXIT})

if where == "index-commit":
    writer.add_instance = crash
elif where == "old-file-delete":
    FileSystemStore.delete = crash
archive = Archive.open(data_dir, db=db or None, aet=aet)
print(archive.ingest(path, sending_aet="MODALITY"))
"""

DELETE_CHILD = f"""
import os, sys
from pacsnode.core.archive import Archive
from pacsnode.storage.filesystem import FileSystemStore

data_dir, db, uid = sys.argv[1:4]

def crash(*args, **kwargs):
    os._exit({CRASH_EXIT})

FileSystemStore.delete_many = crash
Archive.open(data_dir, db=db or None).delete(uid)
"""


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


def crash_during_delete(data_dir: Path, db_url: str | None, uid: str) -> None:
    """Delete ``uid`` in a subprocess that dies once the index change is committed, before
    any file is removed."""
    proc = subprocess.run([sys.executable, "-c", DELETE_CHILD, str(data_dir), db_url or "",
                           uid], capture_output=True, text=True, timeout=120,
                          env=_child_env())
    assert proc.returncode == CRASH_EXIT, (
        f"the delete did not reach its files: exit {proc.returncode}\n"
        f"{proc.stdout}{proc.stderr}")


def crash_during_ingest(tmp_path: Path, data_dir: Path, db_url: str | None, ds: Dataset,
                        where: str, aet: str = "PACSNODE") -> None:
    """Ingest ``ds`` in a subprocess that dies at ``where``."""
    source = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    source.write_bytes(part10(ds))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data_dir), db_url or "",
                           str(source), where, aet],
                          capture_output=True, text=True, timeout=120, env=_child_env())
    assert proc.returncode == CRASH_EXIT, (
        f"the ingest did not reach {where}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")


def _key_name(ds: Dataset) -> str:
    """The file name the store gives an instance: SOP Instance UID and data set digest."""
    digest = hashlib.sha256(data_set_bytes(part10(ds))).hexdigest()
    return f"{ds.SOPInstanceUID}.{digest[:16]}.dcm"


def _changed(ds: Dataset, **changes: object) -> Dataset:
    copy = deepcopy(ds)
    for keyword, value in changes.items():
        setattr(copy, keyword, value)
    return copy


def _make_stale(path: Path) -> None:
    old = time.time() - 2 * 3600
    os.utime(path, (old, old))


# -- a clean archive ----------------------------------------------------------------------

def test_check_of_a_clean_archive(archive: Archive) -> None:
    empty = archive.check()
    assert empty.ok and empty.problems == [] and (empty.instances, empty.files) == (0, 0)
    datasets = [make_dataset(), make_dataset(patient_id="P2"), make_dataset(patient_id="P3")]
    ingest_all(archive, datasets)
    for verify in (False, True):
        report = archive.check(verify_hashes=verify)
        assert report.ok
        assert report.problems == []
        assert (report.instances, report.files) == (3, 3)
    repaired = archive.check(repair=True, verify_hashes=True)
    assert repaired.problems == []
    assert_index_matches(archive, datasets)


# -- an index failure the process survives --------------------------------------------------

def test_index_failure_leaves_no_file(archive: Archive, data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_dataset()
    ingest_all(archive, [first])
    files = blob_files(data_dir)

    def unavailable(*args: object, **kwargs: object) -> int:
        raise sqlalchemy.exc.OperationalError("INSERT INTO instance", {},
                                              Exception("database is gone"))

    monkeypatch.setattr(pacsnode.index.writer, "add_instance", unavailable)
    ds = make_dataset()
    result = archive.ingest(part10(ds))
    assert result.outcome is Outcome.REJECTED
    assert result.reason is RejectReason.OUT_OF_RESOURCES
    assert archive.find(ds.SOPInstanceUID) is None
    assert blob_files(data_dir) == files
    assert temp_files(data_dir) == []

    def bug(*args: object, **kwargs: object) -> int:
        raise RuntimeError("a bug in the index writer")

    monkeypatch.setattr(pacsnode.index.writer, "add_instance", bug)
    with pytest.raises(RuntimeError):
        archive.ingest(part10(ds))
    assert blob_files(data_dir) == files
    assert temp_files(data_dir) == []

    monkeypatch.undo()
    assert archive.ingest(part10(ds)).outcome is Outcome.STORED
    assert_index_matches(archive, [first, ds])
    assert archive.check().problems == []


# -- crashes ------------------------------------------------------------------------------

def test_crash_before_index_commit_leaves_an_orphan_that_repair_adopts(
        archive: Archive, data_dir: Path, db_url: str | None, tmp_path: Path) -> None:
    other = make_dataset(patient_id="OTHER")
    ingest_all(archive, [other])
    files_before = blob_files(data_dir)
    ds = make_dataset(patient_id="CRASHED")

    crash_during_ingest(tmp_path, data_dir, db_url, ds, "index-commit")

    # Nothing was indexed; the complete file is at its key; the temporary name is left.
    assert archive.find(ds.SOPInstanceUID) is None
    assert archive.find("CRASHED") is None
    assert_index_matches(archive, [other])
    [orphan] = blob_files(data_dir) - files_before
    assert orphan.name == _key_name(ds)
    orphan_bytes = orphan.read_bytes()
    assert data_set_bytes(orphan_bytes) == data_set_bytes(part10(ds))
    [temp] = temp_files(data_dir)
    assert temp.read_bytes() == orphan_bytes

    key = orphan.relative_to(data_dir / "files").as_posix()
    report = archive.check()
    assert not report.ok
    assert report.problems == [Problem("orphan file", key, str(ds.SOPInstanceUID),
                                       "complete instance not in the index")]
    assert (report.instances, report.files) == (1, 2)

    repaired = archive.check(repair=True)
    [problem] = repaired.problems
    assert (problem.kind, problem.key, problem.sop_instance_uid) == ("orphan file", key,
                                                                     ds.SOPInstanceUID)
    assert problem.action.startswith("adopted")
    assert repaired.ok

    # Adopted: indexed, retrievable, byte-identical, counted.
    assert_index_matches(archive, [other, ds])
    assert stored_bytes(archive, ds.SOPInstanceUID) == orphan_bytes
    assert archive.read_instance(ds.SOPInstanceUID).PatientID == "CRASHED"
    node = archive.find(ds.SOPInstanceUID)
    assert node is not None
    assert node.columns["source_aet"] == "MODALITY"
    assert node.columns["file_size"] == len(orphan_bytes)
    assert node.columns["data_offset"] == len(split_part10(orphan_bytes)[0])
    assert blob_files(data_dir) == files_before | {orphan}
    after = archive.check(verify_hashes=True)
    assert after.ok and after.problems == []

    # The crash's temporary file is reported and removed once it is stale, not before.
    assert temp.exists()
    _make_stale(temp)
    stale = archive.check()
    assert stale.problems == [Problem("stale temporary file", temp.name)]
    assert not stale.ok
    cleaned = archive.check(repair=True)
    assert cleaned.problems == [Problem("stale temporary file", temp.name, action="removed")]
    assert temp_files(data_dir) == []
    assert stored_bytes(archive, ds.SOPInstanceUID) == orphan_bytes  # same inode, still there
    assert archive.check().problems == []


def test_adopting_an_orphan_after_the_aet_changed(open_archive: Callable[..., Archive],
                                                  data_dir: Path, db_url: str | None,
                                                  tmp_path: Path) -> None:
    """The orphan's file meta was written under another AE title; adopting it must index
    the file as it is (size, data set offset)."""
    open_archive(aet="A")
    ds = make_dataset()
    crash_during_ingest(tmp_path, data_dir, db_url, ds, "index-commit", aet="A")
    archive = open_archive(aet="A_LONGER_AE_TITLE")
    [orphan] = blob_files(data_dir)
    orphan_bytes = orphan.read_bytes()
    assert archive.check(repair=True).ok
    assert stored_bytes(archive, ds.SOPInstanceUID) == orphan_bytes
    node = archive.find(ds.SOPInstanceUID)
    assert node is not None
    assert node.columns["file_size"] == len(orphan_bytes)
    assert node.columns["data_offset"] == len(split_part10(orphan_bytes)[0])
    report = archive.check(verify_hashes=True)
    assert report.problems == []


def test_crash_while_replacing_leaves_a_superseded_orphan(
        archive: Archive, data_dir: Path, db_url: str | None, tmp_path: Path) -> None:
    v1 = make_dataset(patient_name="FIRST^VERSION")
    ingest_all(archive, [v1])
    v1_bytes = stored_bytes(archive, v1.SOPInstanceUID)
    files_before = blob_files(data_dir)
    v2 = _changed(v1, PatientName="SECOND^VERSION")

    crash_during_ingest(tmp_path, data_dir, db_url, v2, "index-commit")

    assert stored_bytes(archive, v1.SOPInstanceUID) == v1_bytes
    assert_index_matches(archive, [v1])
    [orphan] = blob_files(data_dir) - files_before
    assert orphan.name == _key_name(v2)
    key = orphan.relative_to(data_dir / "files").as_posix()
    report = archive.check()
    assert report.problems == [Problem("orphan file", key, str(v1.SOPInstanceUID),
                                       "superseded: the index has another file")]
    repaired = archive.check(repair=True)
    assert [p.action for p in repaired.problems] == ["removed"]
    assert not orphan.exists()
    assert blob_files(data_dir) == files_before
    assert stored_bytes(archive, v1.SOPInstanceUID) == v1_bytes
    assert archive.patients()[0].columns["patient_name"] == "FIRST^VERSION"
    assert archive.check().problems == []


def test_crash_after_commit_before_the_replaced_file_is_deleted(
        archive: Archive, data_dir: Path, db_url: str | None, tmp_path: Path) -> None:
    v1 = make_dataset(patient_name="FIRST^VERSION")
    ingest_all(archive, [v1])
    [old_file] = blob_files(data_dir)
    v2 = _changed(v1, PatientName="SECOND^VERSION")

    crash_during_ingest(tmp_path, data_dir, db_url, v2, "old-file-delete")

    # The replacement is committed: the index shows v2; v1's file is left over.
    assert data_set_bytes(stored_bytes(archive, v1.SOPInstanceUID)) == data_set_bytes(part10(v2))
    assert archive.patients()[0].columns["patient_name"] == "SECOND^VERSION"
    assert old_file.exists()
    key = old_file.relative_to(data_dir / "files").as_posix()
    assert archive.check().problems == [Problem("orphan file", key, str(v1.SOPInstanceUID),
                                                "superseded: the index has another file")]
    assert [p.action for p in archive.check(repair=True).problems] == ["removed"]
    assert not old_file.exists()
    assert_index_matches(archive, [v2])
    assert archive.check().problems == []


# -- crashes during a delete ---------------------------------------------------------------

def _series(n: int, **kwargs: object) -> list[Dataset]:
    first = make_dataset(**kwargs)  # type: ignore[arg-type]
    return [first] + [make_dataset(study_uid=first.StudyInstanceUID,  # type: ignore[arg-type]
                                   series_uid=first.SeriesInstanceUID, instance_number=i,
                                   pixel_seed=i, **kwargs) for i in range(2, n + 1)]


def test_crash_in_a_delete_leaves_files_that_repair_removes_not_adopts(
        archive: Archive, data_dir: Path, db_url: str | None) -> None:
    kept = make_dataset(patient_id="KEPT")
    doomed = _series(3, patient_id="DOOMED")
    ingest_all(archive, [kept, *doomed])
    kept_files = {p for p in blob_files(data_dir) if p.name.startswith(kept.SOPInstanceUID)}

    crash_during_delete(data_dir, db_url, doomed[0].SeriesInstanceUID)

    # The index change is committed; the files are still there, recorded as to be removed.
    assert_index_matches(archive, [kept])
    left = sorted(p.relative_to(data_dir / "files").as_posix()
                  for p in blob_files(data_dir) - kept_files)
    assert len(left) == 3
    assert archive.pending_deletes() == left
    report = archive.check()
    assert report.problems == [Problem("interrupted delete", key,
                                       detail="the instance was deleted; its file was not")
                               for key in left]
    assert not report.ok

    repaired = archive.check(repair=True)
    assert [(p.kind, p.action) for p in repaired.problems] == \
        [("interrupted delete", "removed")] * 3
    assert blob_files(data_dir) == kept_files
    for ds in doomed:  # deleted for good, not adopted back
        assert archive.find(ds.SOPInstanceUID) is None
    assert_index_matches(archive, [kept])
    assert archive.pending_deletes() == []
    assert archive.check().problems == []


def test_finish_deletes_removes_what_a_crash_left(archive: Archive, data_dir: Path,
                                                  db_url: str | None) -> None:
    doomed = _series(2, patient_id="DOOMED")
    ingest_all(archive, doomed)
    crash_during_delete(data_dir, db_url, "DOOMED")
    assert len(blob_files(data_dir)) == 2

    assert len(archive.finish_deletes()) == 2  # what ``serve`` does as it starts
    assert blob_files(data_dir) == set()
    assert archive.pending_deletes() == []
    assert archive.patients() == []
    assert archive.check().problems == []


def test_a_file_stored_again_after_an_interrupted_delete_is_kept(
        archive: Archive, data_dir: Path, db_url: str | None) -> None:
    ds = make_dataset(patient_id="BACK")
    ingest_all(archive, [ds])
    [path] = blob_files(data_dir)
    crash_during_delete(data_dir, db_url, ds.SOPInstanceUID)
    ingest_all(archive, [ds])  # the same bytes again: the same key, the file already there

    assert archive.pending_deletes() == []  # dropped by that ingest's (flushed) commit
    assert archive.check().problems == []  # indexed again: not an interrupted delete
    archive.finish_deletes()
    assert path.exists()
    assert archive.pending_deletes() == []
    assert_index_matches(archive, [ds])
    assert data_set_bytes(stored_bytes(archive, ds.SOPInstanceUID)) == \
        data_set_bytes(part10(ds))


# -- damage done by hand ------------------------------------------------------------------

def test_missing_files_are_reported_and_repair_drops_their_rows(archive: Archive,
                                                                  data_dir: Path) -> None:
    series_a = make_dataset(patient_id="A", instance_number=1)
    series_a2 = make_dataset(patient_id="A", study_uid=series_a.StudyInstanceUID,
                             series_uid=series_a.SeriesInstanceUID, instance_number=2)
    lonely = make_dataset(patient_id="B")
    datasets = [series_a, series_a2, lonely]
    ingest_all(archive, datasets)
    lost = {}
    for ds in (series_a2, lonely):
        node = archive.find(ds.SOPInstanceUID)
        assert node is not None
        lost[str(ds.SOPInstanceUID)] = node.columns["storage_key"]
        (data_dir / "files" / node.columns["storage_key"]).unlink()

    report = archive.check()
    assert not report.ok
    assert sorted(report.problems, key=lambda p: p.key) == sorted(
        [Problem("missing file", key, uid) for uid, key in lost.items()], key=lambda p: p.key)
    assert_index_matches(archive, datasets)  # check alone changes nothing

    repaired = archive.check(repair=True)
    assert repaired.ok
    assert sorted(p.action for p in repaired.problems) == ["index row dropped"] * 2
    assert_index_matches(archive, [series_a])
    assert archive.find("B") is None  # its only instance is gone: so is the patient
    [series] = archive.series(series_a.StudyInstanceUID)
    assert series.columns["num_instances"] == 1
    after = archive.check()
    assert after.ok and after.problems == []


def test_verify_hashes_detects_a_flipped_byte(archive: Archive, data_dir: Path) -> None:
    ds = make_dataset()
    ingest_all(archive, [ds])
    [path] = blob_files(data_dir)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # a pixel byte: same size, different content
    path.write_bytes(bytes(data))
    key = path.relative_to(data_dir / "files").as_posix()

    assert archive.check().problems == []  # sizes agree: only hashing can tell
    report = archive.check(verify_hashes=True)
    assert report.problems == [Problem("hash mismatch", key, str(ds.SOPInstanceUID))]
    assert not report.ok
    # Repair leaves a damaged file for a human to look at.
    again = archive.check(repair=True, verify_hashes=True)
    assert again.problems == [Problem("hash mismatch", key, str(ds.SOPInstanceUID))]
    assert path.read_bytes() == bytes(data)
    assert archive.find(ds.SOPInstanceUID) is not None


def test_size_mismatch_is_reported_not_repaired(archive: Archive, data_dir: Path) -> None:
    ds = make_dataset()
    ingest_all(archive, [ds])
    [path] = blob_files(data_dir)
    size = path.stat().st_size
    with path.open("ab") as fh:
        fh.write(b"\x00\x00")
    [problem] = archive.check(repair=True).problems
    assert (problem.kind, problem.sop_instance_uid, problem.action) == (
        "size mismatch", ds.SOPInstanceUID, "")
    assert str(size) in problem.detail and str(size + 2) in problem.detail
    assert archive.find(ds.SOPInstanceUID) is not None


def test_unreadable_orphan_is_quarantined(archive: Archive, data_dir: Path) -> None:
    ingest_all(archive, [make_dataset()])
    junk = data_dir / "files" / "00" / "00" / "junk.dcm"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not a DICOM file at all")
    [problem] = archive.check().problems
    assert (problem.kind, problem.key, problem.action) == (
        "unreadable orphan file", "00/00/junk.dcm", "")
    [problem] = archive.check(repair=True).problems
    assert problem.action
    assert not junk.exists()
    assert (data_dir / "quarantine" / "junk.dcm").read_bytes() == b"not a DICOM file at all"
    assert archive.check().problems == []


def test_only_stale_temporary_files_are_removed(archive: Archive, data_dir: Path) -> None:
    tmp = data_dir / "files" / "tmp"
    fresh, stale = tmp / "fresh.part", tmp / "stale.part"
    fresh.write_bytes(b"an ingest in progress")
    stale.write_bytes(b"left by a crash")
    _make_stale(stale)
    report = archive.check()
    assert report.problems == [Problem("stale temporary file", "stale.part")]
    repaired = archive.check(repair=True)
    assert repaired.problems == [Problem("stale temporary file", "stale.part",
                                         action="removed")]
    assert repaired.ok
    assert temp_files(data_dir) == [fresh]
    assert archive.check().problems == []
