"""Delete at every level: the rows below go, parents left empty go, derived attributes are
recounted, and the deleted instances' files are removed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from pacsnode.core.archive import Archive
from tests.unit.dicomdata import (
    assert_index_matches,
    blob_files,
    corpus_inputs,
    ingest_all,
)


def _file_of(archive: Archive, data_dir: Path, sop_uid: str) -> Path:
    node = archive.find(sop_uid)
    assert node is not None and node.level == "IMAGE"
    return data_dir / "files" / node.columns["storage_key"]


def _delete_and_check(archive: Archive, data_dir: Path, inputs: list[Dataset], uid: str,
                      level: str, gone: list[Dataset]) -> list[Dataset]:
    """Delete ``uid``; check the result, the files and the index. Returns what remains."""
    files = {str(ds.SOPInstanceUID): _file_of(archive, data_dir, ds.SOPInstanceUID)
             for ds in inputs}
    result = archive.delete(uid)
    assert result is not None
    assert (result.level, result.uid, result.instances) == (level, uid, len(gone))
    gone_uids = {str(ds.SOPInstanceUID) for ds in gone}
    remaining = [ds for ds in inputs if str(ds.SOPInstanceUID) not in gone_uids]
    assert_index_matches(archive, remaining)
    for sop_uid in gone_uids:
        assert not files[sop_uid].exists(), f"file of deleted {sop_uid} still there"
        assert archive.find(sop_uid) is None
        with pytest.raises(KeyError):
            archive.open_instance(sop_uid)
    assert blob_files(data_dir) == {files[str(ds.SOPInstanceUID)] for ds in remaining}
    assert archive.find(uid) is None
    assert archive.check().problems == []
    return remaining


@pytest.fixture
def loaded(archive: Archive, corpus_files: list[Path]) -> list[Dataset]:
    inputs = corpus_inputs(corpus_files)
    ingest_all(archive, inputs)
    return inputs


def test_delete_an_instance(archive: Archive, data_dir: Path, loaded: list[Dataset]) -> None:
    target = loaded[1]  # its series keeps one instance
    _delete_and_check(archive, data_dir, loaded, target.SOPInstanceUID, "IMAGE", [target])
    assert archive.find(target.SeriesInstanceUID) is not None


def test_delete_the_last_instance_of_a_series(archive: Archive, data_dir: Path,
                                              loaded: list[Dataset]) -> None:
    sr = next(ds for ds in loaded if ds.Modality == "SR")
    _delete_and_check(archive, data_dir, loaded, sr.SOPInstanceUID, "IMAGE", [sr])
    assert archive.find(sr.SeriesInstanceUID) is None
    study = archive.find(sr.StudyInstanceUID)
    assert study is not None
    assert study.columns["modalities_in_study"] == "CT"
    assert study.columns["sop_classes_in_study"] == str(loaded[0].SOPClassUID)


def test_delete_a_series(archive: Archive, data_dir: Path, loaded: list[Dataset]) -> None:
    uid = loaded[4].SeriesInstanceUID  # the series that also holds a secondary capture
    gone = [ds for ds in loaded if ds.SeriesInstanceUID == uid]
    assert len(gone) == 3
    _delete_and_check(archive, data_dir, loaded, uid, "SERIES", gone)
    study = archive.find(loaded[4].StudyInstanceUID)
    assert study is not None
    assert study.columns["sop_classes_in_study"] == str(loaded[4].SOPClassUID)


def test_delete_a_study(archive: Archive, data_dir: Path, loaded: list[Dataset]) -> None:
    uid = loaded[0].StudyInstanceUID
    gone = [ds for ds in loaded if ds.StudyInstanceUID == uid]
    _delete_and_check(archive, data_dir, loaded, uid, "STUDY", gone)
    patient = archive.find(loaded[0].PatientID)
    assert patient is not None and patient.columns["num_studies"] == 1


def test_delete_a_patient_by_patient_id(archive: Archive, data_dir: Path,
                                        loaded: list[Dataset]) -> None:
    patient_id = loaded[-3].PatientID
    gone = [ds for ds in loaded if ds.PatientID == patient_id]
    assert len(gone) == 8
    _delete_and_check(archive, data_dir, loaded, patient_id, "PATIENT", gone)
    assert archive.counts()["patients"] == 2


def test_delete_everything_leaves_an_empty_archive(archive: Archive, data_dir: Path,
                                                   loaded: list[Dataset]) -> None:
    remaining = loaded
    # One of each level in turn, then patients until nothing is left.
    remaining = _delete_and_check(archive, data_dir, remaining, remaining[2].SOPInstanceUID,
                                  "IMAGE", [remaining[2]])
    series_uid = remaining[0].SeriesInstanceUID
    remaining = _delete_and_check(archive, data_dir, remaining, series_uid, "SERIES",
                                  [ds for ds in remaining if ds.SeriesInstanceUID == series_uid])
    for patient_id in sorted({str(ds.PatientID) for ds in remaining}):
        remaining = _delete_and_check(archive, data_dir, remaining, patient_id, "PATIENT",
                                      [ds for ds in remaining if ds.PatientID == patient_id])
    assert remaining == []
    assert archive.counts() == {"patients": 0, "studies": 0, "series": 0, "instances": 0}
    # Deleting files removes the directories they leave empty.
    root = data_dir / "files"
    assert sorted(p.name for p in root.iterdir()) == ["tmp"]


def test_delete_unknown_uid(archive: Archive, data_dir: Path, loaded: list[Dataset]) -> None:
    files = blob_files(data_dir)
    counts = archive.counts()
    assert archive.delete("1.2.3.4.5.6.7.8.9") is None
    assert archive.delete("NO-SUCH-PATIENT") is None
    assert archive.counts() == counts
    assert blob_files(data_dir) == files
    assert_index_matches(archive, loaded)
