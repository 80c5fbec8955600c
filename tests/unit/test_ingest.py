"""Ingest: every kind of source, the data set kept byte for byte behind pacsnode's own file
meta, and every rejection leaving nothing behind."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.dicom_file import IMPLEMENTATION_CLASS_UID
from pacsnode.core.results import Outcome, RejectReason
from tests.unit.dicomdata import (
    TEST_FILES,
    blob_files,
    data_set_bytes,
    make_dataset,
    part10,
    split_part10,
    stored_bytes,
    stored_meta,
    temp_files,
)

CT_SMALL = TEST_FILES / "CT_small.dcm"


def _as_source(kind: str, path: Path) -> object:
    if kind == "path":
        return path
    if kind == "str":
        return str(path)
    if kind == "bytes":
        return path.read_bytes()
    if kind == "fileobj":
        return path.open("rb")
    if kind == "dataset":
        return pydicom.dcmread(path)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "fileobj", "dataset"])
def test_every_source_kind_is_stored_byte_for_byte(archive: Archive, kind: str) -> None:
    source = _as_source(kind, CT_SMALL)
    try:
        result = archive.ingest(source)  # type: ignore[arg-type]
    finally:
        if isinstance(source, io.IOBase):
            source.close()
    assert result.outcome is Outcome.STORED, result
    assert result.reason is None and result.ok
    original = pydicom.dcmread(CT_SMALL)
    assert result.sop_instance_uid == original.SOPInstanceUID
    assert result.study_instance_uid == original.StudyInstanceUID
    assert result.transfer_syntax == original.file_meta.TransferSyntaxUID
    # A Dataset is encoded by pydicom first: compare with that encoding; CT_small is
    # written by pydicom the way it is stored, so every kind gives the file's data set.
    expected = (data_set_bytes(part10(original)) if kind == "dataset"
                else data_set_bytes(CT_SMALL.read_bytes()))
    stored = stored_bytes(archive, result.sop_instance_uid)
    assert data_set_bytes(stored) == expected
    assert archive.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 1}
    node = archive.find(result.sop_instance_uid)
    assert node is not None and node.level == "IMAGE"
    assert node.columns["file_size"] == len(stored)
    assert node.columns["data_offset"] == len(split_part10(stored)[0])


@pytest.mark.parametrize("name", [
    "CT_small.dcm",              # explicit VR little endian
    "MR_small_implicit.dcm",     # implicit VR little endian
    "MR_small_bigendian.dcm",    # explicit VR big endian
    "JPEG2000.dcm",              # encapsulated pixel data
    "image_dfl.dcm",             # deflated: the compressed bytes are kept as they are
    "rtplan.dcm",                # sequences, no pixel data
    "ExplVR_BigEndNoMeta.dcm",   # a bare data set, no preamble nor file meta
])
def test_data_set_bytes_identical_to_the_input(archive: Archive, name: str) -> None:
    path = TEST_FILES / name
    result = archive.ingest(path)
    assert result.outcome is Outcome.STORED, result
    stored = stored_bytes(archive, result.sop_instance_uid)
    assert data_set_bytes(stored) == data_set_bytes(path.read_bytes())
    meta = stored_meta(archive, result.sop_instance_uid)
    assert meta.TransferSyntaxUID == result.transfer_syntax
    if split_part10(path.read_bytes())[0]:
        assert result.transfer_syntax == pydicom.dcmread(path).file_meta.TransferSyntaxUID
    # The stored file is a valid Part-10 file with the same attributes as the input.
    original, copy = pydicom.dcmread(path, force=True), pydicom.dcmread(io.BytesIO(stored))
    assert [e.tag for e in copy] == [e.tag for e in original]
    assert copy.SOPInstanceUID == original.SOPInstanceUID
    assert copy.get("PatientName") == original.get("PatientName")


def test_pacsnode_writes_its_own_file_meta(open_archive: Callable[..., Archive]) -> None:
    archive = open_archive(aet="UNIT_AET")
    ds = make_dataset()
    result = archive.ingest(part10(ds), sending_aet="MODALITY1")
    assert result.outcome is Outcome.STORED
    meta = stored_meta(archive, result.sop_instance_uid)
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.SourceApplicationEntityTitle == "UNIT_AET"
    assert meta.SendingApplicationEntityTitle == "MODALITY1"
    assert archive.find(ds.SOPInstanceUID).columns["source_aet"] == "MODALITY1"  # type: ignore[union-attr]

    other = make_dataset()
    result = archive.ingest(part10(other))
    meta = stored_meta(archive, result.sop_instance_uid)
    assert meta.SourceApplicationEntityTitle == "UNIT_AET"
    assert "SendingApplicationEntityTitle" not in meta


def test_input_file_meta_is_not_kept(archive: Archive) -> None:
    ds = make_dataset()
    ds.file_meta.ImplementationClassUID = "1.2.3.4"
    ds.file_meta.SourceApplicationEntityTitle = "SOMEONE_ELSE"
    result = archive.ingest(part10(ds))
    meta = stored_meta(archive, result.sop_instance_uid)
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.SourceApplicationEntityTitle == "PACSNODE"


def test_dataset_built_in_memory_without_file_meta(archive: Archive) -> None:
    ds = make_dataset()
    del ds.file_meta
    result = archive.ingest(ds)
    assert result.outcome is Outcome.STORED, result
    copy = archive.read_instance(ds.SOPInstanceUID)
    assert copy.PatientName == "DOE^JANE"
    assert copy.PixelData == ds.PixelData


@pytest.mark.parametrize("patient_id", ["", None], ids=["empty", "absent"])
def test_patient_id_empty_or_absent_is_accepted(archive: Archive,
                                                 patient_id: str | None) -> None:
    ds = make_dataset(patient_id="")
    if patient_id is None:
        del ds.PatientID
    result = archive.ingest(part10(ds))
    assert result.outcome is Outcome.STORED, result
    [pat] = archive.patients()
    assert pat.columns["patient_id"] == ""
    assert pat.columns["num_instances"] == 1


def test_matching_expectations_are_accepted(archive: Archive) -> None:
    ds = make_dataset()
    result = archive.ingest(part10(ds), expect_sop_class=ds.SOPClassUID,
                            expect_sop_instance=ds.SOPInstanceUID)
    assert result.outcome is Outcome.STORED


# -- rejections ---------------------------------------------------------------------------

def _without(keyword: str) -> bytes:
    ds = make_dataset()
    delattr(ds, keyword)
    return _bare(ds)


def _bare(ds: Dataset) -> bytes:
    """The data set alone (pydicom cannot write file meta without the SOP UIDs)."""
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return buf.getvalue()


def _with(keyword: str, value: str) -> bytes:
    ds = make_dataset()
    setattr(ds, keyword, value)
    return part10(ds)


REJECTIONS: dict[str, tuple[Callable[[], object], dict[str, str], RejectReason, str]] = {
    "not-dicom": (lambda: b"This is a text file, not a DICOM data set.\n" * 40, {},
                  RejectReason.CANNOT_UNDERSTAND, ""),
    "empty": (lambda: b"", {}, RejectReason.CANNOT_UNDERSTAND, ""),
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, {},
            RejectReason.CANNOT_UNDERSTAND, ""),
    "truncated-pixels": (lambda: CT_SMALL.read_bytes()[:-1000], {},
                         RejectReason.CANNOT_UNDERSTAND, "truncated"),
    "truncated-pixels-pydicom": (lambda: TEST_FILES / "MR_truncated.dcm", {},
                                 RejectReason.CANNOT_UNDERSTAND, "truncated"),
    "truncated-encapsulated": (lambda: (TEST_FILES / "JPEG2000.dcm").read_bytes()[:-200], {},
                               RejectReason.CANNOT_UNDERSTAND, "truncated"),
    "truncated-in-a-sequence": (lambda: TEST_FILES / "rtplan_truncated.dcm", {},
                                RejectReason.CANNOT_UNDERSTAND, "truncated"),
    "truncated-in-a-header": (lambda: part10(make_dataset())[:-len(bytes(32)) - 5], {},
                              RejectReason.CANNOT_UNDERSTAND, "truncated"),
    "no-sop-instance-uid": (lambda: _without("SOPInstanceUID"), {},
                            RejectReason.MISSING_UID, "SOPInstanceUID"),
    "no-sop-class-uid": (lambda: _without("SOPClassUID"), {},
                         RejectReason.MISSING_UID, "SOPClassUID"),
    "no-study-uid": (lambda: _without("StudyInstanceUID"), {},
                     RejectReason.MISSING_UID, "StudyInstanceUID"),
    "no-series-uid": (lambda: _without("SeriesInstanceUID"), {},
                      RejectReason.MISSING_UID, "SeriesInstanceUID"),
    "empty-study-uid": (lambda: _with("StudyInstanceUID", ""), {},
                        RejectReason.MISSING_UID, "StudyInstanceUID"),
    "invalid-uid-letters": (lambda: _with("SeriesInstanceUID", "1.2.3.abc"), {},
                            RejectReason.MISSING_UID, "SeriesInstanceUID"),
    "invalid-uid-too-long": (lambda: _with("StudyInstanceUID", "1." + "2" * 70), {},
                             RejectReason.MISSING_UID, "StudyInstanceUID"),
    "invalid-uid-empty-component": (lambda: _with("SOPInstanceUID", "1..2"), {},
                                    RejectReason.MISSING_UID, "SOPInstanceUID"),
    "sop-class-mismatch": (lambda: part10(make_dataset()),
                           {"expect_sop_class": MRImageStorage},
                           RejectReason.SOP_CLASS_MISMATCH, MRImageStorage),
    "sop-instance-mismatch": (lambda: part10(make_dataset()),
                              {"expect_sop_instance": "1.2.3.4.5"},
                              RejectReason.UID_MISMATCH, "1.2.3.4.5"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the malformed inputs
@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejection_stores_nothing(archive: Archive, data_dir: Path, case: str) -> None:
    first = archive.ingest(part10(make_dataset()))
    assert first.outcome is Outcome.STORED
    files_before = blob_files(data_dir)
    counts_before = archive.counts()
    make, kwargs, reason, detail = REJECTIONS[case]
    result = archive.ingest(make(), **kwargs)  # type: ignore[arg-type]
    assert result.outcome is Outcome.REJECTED, result
    assert not result.ok
    assert result.reason is reason, result
    assert detail in result.detail
    assert blob_files(data_dir) == files_before
    assert temp_files(data_dir) == []
    assert archive.counts() == counts_before
    report = archive.check()
    assert report.ok and report.problems == []


def test_rejected_instance_is_not_indexed(archive: Archive) -> None:
    ds = make_dataset()
    result = archive.ingest(part10(ds), expect_sop_instance=generate_uid())
    assert result.reason is RejectReason.UID_MISMATCH
    assert archive.find(ds.SOPInstanceUID) is None
    with pytest.raises(KeyError):
        archive.open_instance(ds.SOPInstanceUID)


def test_dataset_missing_a_uid_is_rejected_not_raised(archive: Archive) -> None:
    ds = make_dataset()
    del ds.SOPInstanceUID
    result = archive.ingest(ds)
    assert result.outcome is Outcome.REJECTED
    assert result.reason is RejectReason.MISSING_UID
    assert archive.counts()["instances"] == 0
