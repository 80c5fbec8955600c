"""A SOP Instance UID received again: identical content is already present; different
content is replaced (default), kept out, or rejected, per ``duplicate_policy``."""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome, RejectReason
from tests.unit.dicomdata import (
    assert_index_matches,
    blob_files,
    data_set_bytes,
    make_dataset,
    part10,
    stored_bytes,
    temp_files,
)


def _changed(ds: Dataset, **changes: object) -> Dataset:
    """A copy of ``ds`` with these attributes changed (``ds`` itself unchanged)."""
    copy = deepcopy(ds)
    for keyword, value in changes.items():
        setattr(copy, keyword, value)
    return copy


@pytest.mark.parametrize("policy", ["replace", "keep", "reject"])
def test_identical_content_is_already_present(open_archive: Callable[..., Archive],
                                              data_dir: Path, policy: str) -> None:
    archive = open_archive(duplicate_policy=policy)
    ds = make_dataset()
    assert archive.ingest(part10(ds)).outcome is Outcome.STORED
    files = blob_files(data_dir)
    [path] = files
    inode = path.stat().st_ino
    again = archive.ingest(part10(ds), sending_aet="ANOTHER_AE")
    assert again.outcome is Outcome.ALREADY_PRESENT, again
    assert again.ok and again.sop_instance_uid == ds.SOPInstanceUID
    assert blob_files(data_dir) == files
    assert path.stat().st_ino == inode  # the stored file was not rewritten
    assert temp_files(data_dir) == []
    assert_index_matches(archive, [ds])


def test_identical_data_set_with_other_file_meta_is_already_present(archive: Archive,
                                                                    data_dir: Path) -> None:
    ds = make_dataset()
    archive.ingest(part10(ds))
    other_meta = _changed(ds)
    other_meta.file_meta.ImplementationVersionName = "SOMETHING_ELSE"
    assert archive.ingest(part10(other_meta)).outcome is Outcome.ALREADY_PRESENT
    assert len(blob_files(data_dir)) == 1


def test_already_present_restores_a_missing_file(archive: Archive, data_dir: Path) -> None:
    ds = make_dataset()
    archive.ingest(part10(ds))
    [path] = blob_files(data_dir)
    path.unlink()
    assert archive.ingest(part10(ds)).outcome is Outcome.ALREADY_PRESENT
    assert blob_files(data_dir) == {path}
    assert data_set_bytes(stored_bytes(archive, ds.SOPInstanceUID)) == data_set_bytes(part10(ds))
    assert archive.check().problems == []


def test_replace_is_the_default(archive: Archive, data_dir: Path) -> None:
    v1 = make_dataset(patient_name="OLD^NAME")
    assert archive.ingest(part10(v1)).outcome is Outcome.STORED
    [old_file] = blob_files(data_dir)
    v2 = _changed(v1, PatientName="NEW^NAME", SeriesDescription="CORRECTED",
                  PixelData=bytes(reversed(v1.PixelData)))
    result = archive.ingest(part10(v2))
    assert result.outcome is Outcome.REPLACED, result
    assert result.ok
    files = blob_files(data_dir)
    assert len(files) == 1 and old_file not in files
    assert temp_files(data_dir) == []
    assert data_set_bytes(stored_bytes(archive, v1.SOPInstanceUID)) == data_set_bytes(part10(v2))
    instance = archive.find(v1.SOPInstanceUID)
    assert instance is not None
    [patient] = archive.patients()
    assert patient.columns["patient_name"] == "NEW^NAME"
    assert patient.attributes["00100010"]["Value"] == [{"Alphabetic": "NEW^NAME"}]
    [series] = archive.series(v1.StudyInstanceUID)
    assert series.columns["series_description"] == "CORRECTED"
    assert archive.read_instance(v1.SOPInstanceUID).PixelData == v2.PixelData
    assert_index_matches(archive, [v1, v2])
    assert archive.check().problems == []


def test_replace_moving_the_study_to_another_patient(archive: Archive,
                                                     data_dir: Path) -> None:
    """Patient A has studies S1 (two instances) and S2; patient C has one study. One instance
    of S1 comes again with Patient ID B: S1 (both instances) moves to the new patient B."""
    s1, s2, s3 = generate_uid(), generate_uid(), generate_uid()
    a1 = make_dataset(patient_id="A", study_uid=s1, instance_number=1)
    a2 = make_dataset(patient_id="A", study_uid=s1, series_uid=a1.SeriesInstanceUID,
                      instance_number=2)
    a3 = make_dataset(patient_id="A", study_uid=s2, modality="MR")
    c1 = make_dataset(patient_id="C", study_uid=s3)
    inputs = [a1, a2, a3, c1]
    for ds in inputs:
        assert archive.ingest(part10(ds)).outcome is Outcome.STORED
    assert_index_matches(archive, inputs)

    b1 = _changed(a1, PatientID="B", PatientName="MOVED^PATIENT")
    assert archive.ingest(part10(b1)).outcome is Outcome.REPLACED
    # a2 still says A in its file, but a study belongs to one patient: the latest wins.
    assert_index_matches(archive, [*inputs, b1, _changed(a2, PatientID="B")])
    by_id = {p.columns["patient_id"]: p for p in archive.patients()}
    assert set(by_id) == {"A", "B", "C"}
    assert [s.columns["study_instance_uid"] for s in archive.studies(by_id["B"].columns["pk"])
            ] == [s1]
    assert by_id["A"].columns["num_studies"] == 1
    assert by_id["B"].columns["patient_name"] == "MOVED^PATIENT"
    assert len(blob_files(data_dir)) == 4

    # The second study of A moves too: A, now empty, disappears.
    b3 = _changed(a3, PatientID="B")
    assert archive.ingest(part10(b3)).outcome is Outcome.REPLACED
    assert_index_matches(archive, [*inputs, b1, _changed(a2, PatientID="B"), b3])
    assert {p.columns["patient_id"] for p in archive.patients()} == {"B", "C"}
    assert archive.find("A") is None
    [b] = [p for p in archive.patients() if p.columns["patient_id"] == "B"]
    assert (b.columns["num_studies"], b.columns["num_series"], b.columns["num_instances"]
            ) == (2, 2, 3)
    assert len(blob_files(data_dir)) == 4
    assert archive.check().problems == []


def test_replace_moving_the_instance_to_another_series_and_study(archive: Archive) -> None:
    """The only instance of patient Q's study comes again in patient P's study, in a new
    series: the old series, study and patient rows go."""
    keep = make_dataset(patient_id="P")
    moving = make_dataset(patient_id="Q", modality="MR")
    for ds in (keep, moving):
        archive.ingest(part10(ds))
    moved = _changed(moving, PatientID="P", StudyInstanceUID=keep.StudyInstanceUID,
                     SeriesInstanceUID=generate_uid())
    assert archive.ingest(part10(moved)).outcome is Outcome.REPLACED
    assert archive.find(moving.StudyInstanceUID) is None
    assert archive.find(moving.SeriesInstanceUID) is None
    assert archive.find("Q") is None
    assert_index_matches(archive, [keep, moving, moved])
    [study] = archive.studies()
    assert study.columns["modalities_in_study"] == "CT\\MR"


def test_keep_discards_the_new_content(open_archive: Callable[..., Archive],
                                       data_dir: Path) -> None:
    archive = open_archive(duplicate_policy="keep")
    v1 = make_dataset(patient_name="FIRST^VERSION")
    archive.ingest(part10(v1))
    files = blob_files(data_dir)
    v2 = _changed(v1, PatientName="SECOND^VERSION", PixelData=bytes(32))
    result = archive.ingest(part10(v2))
    assert result.outcome is Outcome.KEPT_EXISTING, result
    assert result.ok and result.reason is None
    assert blob_files(data_dir) == files
    assert temp_files(data_dir) == []
    assert data_set_bytes(stored_bytes(archive, v1.SOPInstanceUID)) == data_set_bytes(part10(v1))
    assert archive.patients()[0].columns["patient_name"] == "FIRST^VERSION"
    assert_index_matches(archive, [v1])


def test_reject_refuses_the_new_content(open_archive: Callable[..., Archive],
                                        data_dir: Path) -> None:
    archive = open_archive(duplicate_policy="reject")
    v1 = make_dataset(patient_name="FIRST^VERSION")
    archive.ingest(part10(v1))
    files = blob_files(data_dir)
    v2 = _changed(v1, PatientID="SOMEONE-ELSE")
    result = archive.ingest(part10(v2))
    assert result.outcome is Outcome.REJECTED, result
    assert result.reason is RejectReason.DUPLICATE_REJECTED
    assert not result.ok
    assert blob_files(data_dir) == files
    assert temp_files(data_dir) == []
    assert data_set_bytes(stored_bytes(archive, v1.SOPInstanceUID)) == data_set_bytes(part10(v1))
    assert_index_matches(archive, [v1])


def test_policy_applies_per_archive_opening(open_archive: Callable[..., Archive]) -> None:
    """The same archive opened with another policy behaves by the new policy."""
    v1 = make_dataset()
    v2 = _changed(v1, PatientName="TWO")
    v3 = _changed(v1, PatientName="THREE")
    assert open_archive(duplicate_policy="reject").ingest(part10(v2)).outcome is Outcome.STORED
    assert open_archive(duplicate_policy="keep").ingest(part10(v3)).outcome \
        is Outcome.KEPT_EXISTING
    replacing = open_archive()
    assert replacing.ingest(part10(v3)).outcome is Outcome.REPLACED
    assert replacing.patients()[0].columns["patient_name"] == "THREE"
