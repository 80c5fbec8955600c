"""Unit tests for the deterministic synthetic corpus generator."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from pacsnode.synthetic import generate_corpus, generate_ct_series

REQUIRED_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "Manufacturer",
    "FrameOfReferenceUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "ImageType",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelData",
)


def _read_all(paths: list[Path]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in paths]


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_corpus(tmp_path / "a", seed=7)
    second = generate_corpus(tmp_path / "b", seed=7)
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_ct_series_is_deterministic(tmp_path: Path) -> None:
    first = generate_ct_series(tmp_path / "a", 3, rows=32, columns=32, seed=3)
    second = generate_ct_series(tmp_path / "b", 3, rows=32, columns=32, seed=3)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_different_seeds_differ(tmp_path: Path) -> None:
    first = _read_all(generate_corpus(tmp_path / "a", seed=1, patients=2))
    second = _read_all(generate_corpus(tmp_path / "b", seed=2, patients=2))
    assert {ds.SOPInstanceUID for ds in first}.isdisjoint(ds.SOPInstanceUID for ds in second)
    assert {ds.StudyInstanceUID for ds in first}.isdisjoint(ds.StudyInstanceUID for ds in second)
    assert [ds.PixelData for ds in first] != [ds.PixelData for ds in second]


def test_different_parameters_never_share_uids(tmp_path: Path) -> None:
    small = _read_all(generate_corpus(tmp_path / "a", patients=1, rows=16, columns=16))
    large = _read_all(generate_corpus(tmp_path / "b", patients=1, rows=32, columns=32))
    assert {ds.SOPInstanceUID for ds in small}.isdisjoint(ds.SOPInstanceUID for ds in large)
    # Demographics depend only on seed and patient index.
    assert small[0].PatientID == large[0].PatientID
    assert small[0].PatientName == large[0].PatientName


def test_files_parse_and_are_complete(tmp_path: Path) -> None:
    paths = generate_corpus(tmp_path, patients=2, rows=24, columns=20)
    for path in paths:
        ds = pydicom.dcmread(path)
        assert ds.preamble is not None
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        for keyword in REQUIRED_KEYWORDS:
            assert keyword in ds, f"{path.name} lacks {keyword}"
        assert ds.SOPClassUID == (CTImageStorage if ds.Modality == "CT" else MRImageStorage)
        assert ds.pixel_array.shape == (24, 20)
        assert ds.BitsAllocated == 16
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert int(ds.pixel_array.max()) < 2**ds.BitsStored
        if ds.Modality == "CT":
            assert ds.RescaleIntercept == -1024
            assert ds.RescaleSlope == 1
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
            assert uid.is_valid


def test_hierarchy_counts(tmp_path: Path) -> None:
    datasets = _read_all(
        generate_corpus(
            tmp_path,
            patients=4,
            studies_per_patient=3,
            series_per_study=2,
            instances_per_series=3,
            rows=8,
            columns=8,
        )
    )
    assert len(datasets) == 4 * 3 * 2 * 3
    assert len({ds.PatientID for ds in datasets}) == 4
    assert len({ds.StudyInstanceUID for ds in datasets}) == 4 * 3
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 4 * 3 * 2
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert {ds.Modality for ds in datasets} == {"CT", "MR"}
    for series_uid in {ds.SeriesInstanceUID for ds in datasets}:
        members = [ds for ds in datasets if ds.SeriesInstanceUID == series_uid]
        assert sorted(ds.InstanceNumber for ds in members) == [1, 2, 3]
        assert len({ds.Modality for ds in members}) == 1
        assert len({ds.StudyInstanceUID for ds in members}) == 1
    for study_uid in {ds.StudyInstanceUID for ds in datasets}:
        assert len({ds.PatientID for ds in datasets if ds.StudyInstanceUID == study_uid}) == 1


def test_non_ascii_names_round_trip(tmp_path: Path) -> None:
    paths = generate_corpus(
        tmp_path, patients=12, studies_per_patient=1, series_per_study=1, instances_per_series=1
    )
    by_name = {str(ds.PatientName): ds for ds in _read_all(paths)}
    assert len(by_name) == 12
    for name in (
        "Müller^Jürgen",
        "Ωμέγα^Άλφα",
        "山田^太郎",
        "Yamada^Hanako=山田^花子=やまだ^はなこ",
    ):
        assert by_name[name].SpecificCharacterSet == "ISO_IR 192"
    assert by_name["Ñúñez^José"].SpecificCharacterSet == "ISO_IR 100"
    assert "SpecificCharacterSet" not in by_name["DOE^JOHN"]
    raw = (tmp_path / "p0002" / "st01" / "se01" / "i00001.dcm").read_bytes()
    assert "Müller^Jürgen".encode() in raw


def test_ct_series_layout(tmp_path: Path) -> None:
    paths = generate_ct_series(tmp_path, 4, rows=16, columns=16)
    assert [p.name for p in paths] == [f"ct0000{i}.dcm" for i in range(1, 5)]
    datasets = _read_all(paths)
    assert {ds.SOPClassUID for ds in datasets} == {CTImageStorage}
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert [ds.InstanceNumber for ds in datasets] == [1, 2, 3, 4]
    positions = [float(ds.ImagePositionPatient[2]) for ds in datasets]
    assert positions == sorted(positions, reverse=True)
    assert len({ds.PixelData for ds in datasets}) == 4


def test_ct_series_default_size(tmp_path: Path) -> None:
    (path,) = generate_ct_series(tmp_path, 1)
    ds = pydicom.dcmread(path)
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert len(ds.PixelData) == 512 * 512 * 2


@pytest.mark.parametrize(
    "kwargs",
    [{"patients": 0}, {"rows": -1}, {"modality_cycle": ()}, {"modality_cycle": ("US",)}],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_corpus(tmp_path, **kwargs)  # type: ignore[arg-type]
