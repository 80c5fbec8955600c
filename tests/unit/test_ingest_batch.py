"""Batched ingest (:meth:`Archive.ingest_spooled_many`, the STOW-RS path): every file of a
batch gets the result the one-by-one ingest would give it, in order — new, identical
again, changed (duplicate policy), twice in one batch, wrong study, not pacsnode's layout —
the index matches the data sets, and a batch whose index transaction fails leaves no file
behind. Both index backends."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.exc

import pacsnode.index.writer
from pacsnode.core.archive import Archive
from pacsnode.core.ingest import Spooled
from pacsnode.core.results import Outcome, RejectReason
from pacsnode.core.spool_file import Part10Spool
from pacsnode.index.schema import instance
from pacsnode.storage import filesystem
from tests.unit.dicomdata import (
    assert_index_matches,
    blob_files,
    data_set_bytes,
    make_dataset,
    part10,
    stored_bytes,
)


def spool(archive: Archive, data: bytes) -> Spooled:
    """``data`` (a Part-10 file) spooled as STOW-RS spools a part."""
    s = Part10Spool(archive.store.temp_dir, source_aet=archive.settings.aet)
    s.write(data)
    s.close()
    spooled = s.spooled()
    assert spooled is not None
    return spooled


def test_a_batch_gets_the_results_of_one_by_one_ingest(
        open_archive: Callable[..., Archive], data_dir: Path) -> None:
    archive = open_archive(duplicate_policy="replace")
    study = make_dataset().StudyInstanceUID
    kept = make_dataset(study_uid=study, pixel_seed=1)
    archive.ingest(part10(kept))
    changed = make_dataset(study_uid=study, pixel_seed=2)
    archive.ingest(part10(changed))
    new = [make_dataset(study_uid=study, series_uid=kept.SeriesInstanceUID,
                        instance_number=n, pixel_seed=10 + n) for n in range(3)]
    replacement = make_dataset(study_uid=study, sop_uid=changed.SOPInstanceUID,
                               series_uid=changed.SeriesInstanceUID, pixel_seed=99)
    twice = make_dataset(study_uid=study, pixel_seed=5)
    other_study = make_dataset(pixel_seed=6)
    batch = [spool(archive, part10(ds)) for ds in
             [*new, kept, replacement, twice, twice, other_study]]
    results = archive.ingest_spooled_many(batch, expect_study=study)
    assert [r.outcome for r in results] == [
        Outcome.STORED, Outcome.STORED, Outcome.STORED, Outcome.ALREADY_PRESENT,
        Outcome.REPLACED, Outcome.STORED, Outcome.ALREADY_PRESENT, Outcome.REJECTED]
    assert results[-1].reason is RejectReason.UID_MISMATCH
    assert [r.sop_instance_uid for r in results[:3]] == [ds.SOPInstanceUID for ds in new]
    for ds in [*new, kept, replacement, twice]:
        assert data_set_bytes(stored_bytes(archive, ds.SOPInstanceUID)) == \
            data_set_bytes(part10(ds))
    assert_index_matches(archive, [kept, replacement, *new, twice])
    assert archive.check().problems == []  # the replaced file is gone, nothing orphaned
    for s in batch:
        archive.store.discard_temp(s.path)
    assert len(blob_files(data_dir)) == 6


def test_a_foreign_spool_is_refused_not_stored(archive: Archive) -> None:
    good = make_dataset()
    spooled = spool(archive, part10(good))
    shifted = Spooled(spooled.path, spooled.digest, spooled.data_offset + 2, spooled.size)
    [result] = archive.ingest_spooled_many([shifted])
    assert result.reason is RejectReason.CANNOT_UNDERSTAND
    assert archive.find(good.SOPInstanceUID) is None


def test_a_failed_batch_leaves_no_file(archive: Archive, data_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_dataset()
    archive.ingest(part10(first))
    files = blob_files(data_dir)
    calls = {"n": 0}
    real_add = pacsnode.index.writer.add_instance

    def fails_on_the_second(*args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlalchemy.exc.OperationalError("INSERT INTO instance", {},
                                                  Exception("database is gone"))
        return real_add(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pacsnode.index.writer, "add_instance", fails_on_the_second)
    batch = [make_dataset() for _ in range(3)]
    results = archive.ingest_spooled_many([spool(archive, part10(ds)) for ds in batch])
    assert {r.reason for r in results} == {RejectReason.OUT_OF_RESOURCES}
    assert all(archive.find(ds.SOPInstanceUID) is None for ds in batch)  # rolled back
    assert blob_files(data_dir) == files
    monkeypatch.undo()
    assert_index_matches(archive, [first])


def test_a_storage_failure_removes_the_names_given(archive: Archive, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    study = make_dataset().StudyInstanceUID
    batch = [spool(archive, part10(make_dataset(study_uid=study))) for _ in range(3)]
    real_fsync_dir = filesystem._fsync_dir

    def dir_fsync_fails(path: Path) -> None:
        if path.name == study:  # the study's directory, once the files are linked in it
            raise OSError(5, "Input/output error")
        real_fsync_dir(path)

    monkeypatch.setattr(filesystem, "_fsync_dir", dir_fsync_fails)
    results = archive.ingest_spooled_many(batch)
    assert {r.reason for r in results} == {RejectReason.OUT_OF_RESOURCES}
    assert blob_files(data_dir) == set()
    assert archive.counts()["instances"] == 0


def test_a_spooled_file_without_digest_is_hashed_by_the_core(
        open_archive: Callable[..., Archive]) -> None:
    """The C-STORE spool leaves a large data set unhashed (core/spool_file.py): the index
    must still record the SHA-256 of its bytes, which ``check`` and duplicates rely on."""
    archive = open_archive()
    ds = make_dataset()
    spooled = spool(archive, part10(ds))
    unhashed = dataclasses.replace(spooled, digest="")
    result = archive.ingest_spooled(unhashed)
    assert result.outcome is Outcome.STORED
    data = spooled.path.read_bytes()[spooled.data_offset:]
    with archive.engine.connect() as conn:
        digest = conn.execute(sa.select(instance.c.digest).where(
            instance.c.sop_instance_uid == ds.SOPInstanceUID)).scalar_one()
    assert digest == hashlib.sha256(data).hexdigest()
    again = archive.ingest_spooled(dataclasses.replace(spool(archive, part10(ds)), digest=""))
    assert again.outcome is Outcome.ALREADY_PRESENT
