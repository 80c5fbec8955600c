"""records.extract reuses the previous data set's patient, study and series rows when their
elements are byte for byte the same: the rows must be exactly those a fresh extraction
gives, whatever changes from one data set to the next."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacsnode.core import dicom_file
from pacsnode.index import records
from tests.unit.dicomdata import CHARSET_FILES, TEST_FILES, make_dataset, part10


def _read(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """``ds`` as the receiver sees it: encoded, then read back (raw elements)."""
    ds.file_meta.TransferSyntaxUID = syntax
    return dicom_file.read_header(io.BytesIO(part10(ds))).dataset


def _check(ds: Dataset) -> records.InstanceRecord:
    reused = records.extract(ds)
    assert reused == records.extract(ds, reuse=False)
    return reused


def _series(n: int, **changes: object) -> list[Dataset]:
    out = []
    for i in range(n):
        ds = make_dataset(patient_id="P1", study_uid="1.2.3", series_uid="1.2.3.4",
                          sop_uid=f"1.2.3.4.{i + 1}")
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        out.append(ds)
    return out


def test_next_instance_of_a_series_gets_the_same_rows() -> None:
    first, second = (_read(ds) for ds in _series(2))
    a, b = _check(first), _check(second)
    assert (a.patient, a.study, a.series) == (b.patient, b.study, b.series)
    assert a.instance["sop_instance_uid"] != b.instance["sop_instance_uid"]


@pytest.mark.parametrize(("keyword", "value", "level", "column"), [
    ("PatientName", "OTHER^NAME", "patient", "patient_name"),
    ("StudyDescription", "another description", "study", "study_description"),
    ("SeriesDescription", "another series", "series", "series_description"),
    ("Modality", "MR", "series", "modality"),
])
def test_a_changed_upper_attribute_is_not_reused(keyword: str, value: str, level: str,
                                                 column: str) -> None:
    before = _read(_series(1)[0])
    after = _read(_series(1, **{keyword: value})[0])
    _check(before)
    record = _check(after)
    assert getattr(record, level)[column] == value


def test_rows_are_copies() -> None:
    """A caller changing a returned row does not change the next data set's."""
    first, second = (_read(ds) for ds in _series(2))
    _check(first).patient["patient_name"] = "CHANGED"
    assert _check(second).patient["patient_name"] != "CHANGED"


def test_same_bytes_in_another_character_set_are_decoded_again() -> None:
    """Identical encoded name bytes mean another name under another Specific Character Set."""
    def dataset(charset: str, name: str) -> Dataset:
        ds = make_dataset(patient_id="P1", study_uid="1.2.3", series_uid="1.2.3.4",
                          sop_uid="1.2.3.4.1", patient_name=name)
        ds.SpecificCharacterSet = charset
        return _read(ds)

    latin = dataset("ISO_IR 100", "M\u00fcller")  # Latin-1 0xFC
    cyrillic = dataset("ISO_IR 144", "M\u045cller")  # ISO 8859-5 0xFC
    assert cyrillic.get_item(0x00100010).value == latin.get_item(0x00100010).value
    first, second = _check(latin), _check(cyrillic)
    assert first.patient["patient_name"] == "M\u00fcller"
    assert second.patient["patient_name"] == "M\u045cller"


def test_implicit_us_or_ss_follows_the_pixel_representation() -> None:
    """Smallest Image Pixel Value in Series is 'US or SS' in implicit VR: the same bytes are
    65535 unsigned and -1 signed (PS3.5 A.1; pydicom resolves it from Pixel Representation)."""
    def dataset(signed: int) -> Dataset:
        ds = make_dataset(patient_id="P1", study_uid="1.2.3", series_uid="1.2.3.4",
                          sop_uid=f"1.2.3.4.{signed + 1}")
        ds.PixelRepresentation = signed
        ds.add_new(0x00280108, "US" if not signed else "SS", 65535 if not signed else -1)
        return _read(ds, ImplicitVRLittleEndian)

    unsigned, signed = dataset(0), dataset(1)
    assert (unsigned.get_item(0x00280108).value == signed.get_item(0x00280108).value)
    first, second = _check(unsigned), _check(signed)
    assert '"Value":[65535]' in first.series["attrs"]
    assert '"Value":[-1]' in second.series["attrs"]


def _files() -> list[Path]:
    return sorted([*TEST_FILES.glob("*.dcm"), *CHARSET_FILES.glob("*.dcm")])


def test_every_test_file_in_turn_gets_its_own_rows() -> None:
    """pydicom's test and character-set files one after the other: each file's rows equal
    its fresh extraction, whatever the file before it was."""
    checked = 0
    for path in _files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with open(path, "rb") as fp:
                    ds = dicom_file.read_header(fp).dataset
            except dicom_file.InvalidDicom:
                continue
            try:
                expected = records.extract(ds, reuse=False)
            except Exception:
                continue
            # twice: the second extraction takes the reuse path for every level it can
            assert records.extract(ds) == expected, path.name
            assert records.extract(ds) == expected, path.name
        checked += 1
    assert checked > 50


def test_the_next_instance_converts_only_its_own_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse happens: for the second instance of a series only the instance level's
    elements are converted to DICOM JSON."""
    from pacsnode.index import dicom_json

    converted: list[int] = []
    real = dicom_json.level_json

    def counting(ds: Dataset, elements: list) -> dict:
        converted.append(len(elements))
        return real(ds, elements)

    monkeypatch.setattr(dicom_json, "level_json", counting)
    first, second = (_read(ds) for ds in _series(2))
    records.extract(first)
    assert len(converted) == 4
    converted.clear()
    records.extract(second)
    assert len(converted) == 1
