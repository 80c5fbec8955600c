"""The DICOM JSON (PS3.18 F.2) each level keeps: bulk data as BulkDataURI, sequences nested,
attributes split by level, text decoded from its character set."""

from __future__ import annotations

import base64
import io
import warnings

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsnode.core import dicom_file
from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome
from pacsnode.index import dicom_json
from pacsnode.index.levels import Level, level_of
from tests.unit.dicomdata import CHARSET_FILES, TEST_FILES, make_dataset, part10

SMALL_OB = bytes(range(10))


def _rich_dataset() -> Dataset:
    """An image with 8 KiB of pixel data, a large and a small private OB value, and nested
    sequences at the study and instance levels (one holding a large OB value)."""
    ds = make_dataset()
    ds.Rows = ds.Columns = 64
    ds.PixelData = bytes(64 * 64 * 2)
    ds["PixelData"].VR = "OW"  # as read from a file (pydicom leaves 'OB or OW' until written)
    block = ds.private_block(0x0009, "PACSNODE TEST", create=True)
    block.add_new(0x10, "OB", bytes(2000))
    block.add_new(0x11, "OB", SMALL_OB)
    code = Dataset()
    code.CodeValue = "121320"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Uncompressed predecessor"
    source = Dataset()
    source.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    source.ReferencedSOPInstanceUID = "1.2.3.4"
    source.PurposeOfReferenceCodeSequence = Sequence([code])
    source.EncapsulatedDocument = bytes(3000)
    ds.SourceImageSequence = Sequence([source])
    procedure = Dataset()
    procedure.CodeValue = "CTCHEST"
    procedure.CodingSchemeDesignator = "99LOCAL"
    procedure.CodeMeaning = "CT Chest"
    ds.ProcedureCodeSequence = Sequence([procedure])
    return ds


def _levels(ds: Dataset, how: str) -> dict[Level, dicom_json.JsonDict]:
    if how == "memory":
        return dicom_json.split_levels(ds)
    header = dicom_file.read_header(io.BytesIO(part10(ds)))
    return dicom_json.split_levels(header.dataset)


@pytest.mark.parametrize("how", ["memory", "header"])
def test_bulk_data_becomes_bulk_data_uri(how: str) -> None:
    image = _levels(_rich_dataset(), how)[Level.IMAGE]
    assert image["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}
    assert image["00091010"] == {"vr": "OB", "BulkDataURI": "00091010"}
    assert image["00091011"] == {"vr": "OB",
                                 "InlineBinary": base64.b64encode(SMALL_OB).decode()}
    nested = image["00082112"]["Value"][0]["00420011"]
    assert "InlineBinary" not in nested and "BulkDataURI" in nested


@pytest.mark.parametrize("how", ["memory", "header"])
def test_nested_sequences_are_kept(how: str) -> None:
    levels = _levels(_rich_dataset(), how)
    source = levels[Level.IMAGE]["00082112"]
    assert source["vr"] == "SQ"
    [item] = source["Value"]
    assert item["00081150"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}
    assert item["00081155"] == {"vr": "UI", "Value": ["1.2.3.4"]}
    assert item["0040A170"] == {"vr": "SQ", "Value": [{
        "00080100": {"vr": "SH", "Value": ["121320"]},
        "00080102": {"vr": "SH", "Value": ["DCM"]},
        "00080104": {"vr": "LO", "Value": ["Uncompressed predecessor"]},
    }]}
    assert levels[Level.STUDY]["00081032"] == {"vr": "SQ", "Value": [{
        "00080100": {"vr": "SH", "Value": ["CTCHEST"]},
        "00080102": {"vr": "SH", "Value": ["99LOCAL"]},
        "00080104": {"vr": "LO", "Value": ["CT Chest"]},
    }]}


def test_header_values_over_the_defer_size_are_not_read() -> None:
    """Large values stay unread while indexing (memory stays bounded), yet are listed."""
    ds = make_dataset()
    block = ds.private_block(0x0009, "PACSNODE TEST", create=True)
    block.add_new(0x10, "OB", bytes(dicom_file.DEFER_SIZE + 2))
    ds.PixelData = bytes(dicom_file.DEFER_SIZE * 2)
    ds.Rows, ds.Columns = 256, 256
    header = dicom_file.read_header(io.BytesIO(part10(ds)))
    image = dicom_json.split_levels(header.dataset)[Level.IMAGE]
    assert image["00091010"] == {"vr": "OB", "BulkDataURI": "00091010"}
    assert image["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}
    for tag in (0x00091010, 0x7FE00010):
        raw = header.dataset.get_item(tag, keep_deferred=True)
        assert isinstance(raw, RawDataElement) and raw.value is None


@pytest.mark.parametrize(("name", "vr"), [
    ("CT_small.dcm", "OW"),           # explicit VR little endian
    ("MR_small_implicit.dcm", "OW"),  # implicit VR: pixel data is OW (PS3.5 A.1)
    ("MR_small_bigendian.dcm", "OW"),
    ("JPEG2000.dcm", "OB"),           # encapsulated, undefined length
    ("image_dfl.dcm", "OB"),          # deflated
])
def test_pixel_data_of_a_file_is_listed_as_bulk_data(name: str, vr: str) -> None:
    with (TEST_FILES / name).open("rb") as fh:
        header = dicom_file.read_header(fh)
    image = dicom_json.split_levels(header.dataset)[Level.IMAGE]
    assert image["7FE00010"] == {"vr": vr, "BulkDataURI": "7FE00010"}


@pytest.mark.parametrize(("keyword", "level"), [
    ("PatientName", Level.PATIENT), ("PatientID", Level.PATIENT),
    ("PatientBirthDate", Level.PATIENT), ("PatientSex", Level.PATIENT),
    ("StudyDate", Level.STUDY), ("StudyTime", Level.STUDY), ("StudyInstanceUID", Level.STUDY),
    ("AccessionNumber", Level.STUDY), ("ReferringPhysicianName", Level.STUDY),
    ("StudyDescription", Level.STUDY), ("StudyID", Level.STUDY),
    ("ProcedureCodeSequence", Level.STUDY),
    ("Modality", Level.SERIES), ("SeriesInstanceUID", Level.SERIES),
    ("SeriesNumber", Level.SERIES), ("SeriesDescription", Level.SERIES),
    ("SOPInstanceUID", Level.IMAGE), ("SOPClassUID", Level.IMAGE),
    ("InstanceNumber", Level.IMAGE), ("Rows", Level.IMAGE), ("PixelData", Level.IMAGE),
    ("SourceImageSequence", Level.IMAGE),
])
def test_each_attribute_is_kept_at_its_level(keyword: str, level: Level) -> None:
    tag = int(pydicom.datadict.tag_for_keyword(keyword))  # type: ignore[arg-type]
    assert level_of(tag) is level
    for how in ("memory", "header"):
        levels = _levels(_rich_dataset(), how)
        holders = [lv for lv, attrs in levels.items() if f"{tag:08X}" in attrs]
        assert holders == [level], (how, keyword, holders)


def test_split_keeps_every_attribute_once_and_no_file_meta() -> None:
    ds = _rich_dataset()
    levels = _levels(ds, "header")
    tags = [tag for attrs in levels.values() for tag in attrs]
    assert len(tags) == len(set(tags))
    assert set(tags) == {f"{int(t):08X}" for t in ds.keys()}  # noqa: SIM118
    assert not any(tag.startswith("0002") for tag in tags)


def test_ingested_attributes_are_split_by_level(archive: Archive) -> None:
    ds = _rich_dataset()
    assert archive.ingest(part10(ds)).outcome is Outcome.STORED
    patient = archive.find(ds.PatientID)
    study = archive.find(ds.StudyInstanceUID)
    series = archive.find(ds.SeriesInstanceUID)
    instance = archive.find(ds.SOPInstanceUID)
    assert patient is not None and study is not None
    assert series is not None and instance is not None
    assert patient.attributes["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}
    assert study.attributes["00080020"] == {"vr": "DA", "Value": ["20240102"]}
    assert series.attributes["00080060"] == {"vr": "CS", "Value": ["CT"]}
    assert instance.attributes["00080018"] == {"vr": "UI", "Value": [ds.SOPInstanceUID]}
    assert instance.attributes["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}
    assert "00080020" not in patient.attributes and "00100010" not in study.attributes
    assert "00080060" not in study.attributes and "00080018" not in series.attributes
    merged = {**patient.attributes, **study.attributes, **series.attributes,
              **instance.attributes}
    assert set(merged) == {f"{int(t):08X}" for t in ds.keys()}  # noqa: SIM118
    assert merged["00082112"] == dicom_json.split_levels(ds)[Level.IMAGE]["00082112"]


@pytest.mark.parametrize(("charset", "name"), [
    ("ISO_IR 192", "Müller^Jürgen"),
    ("ISO_IR 192", "山田^太郎"),
    ("ISO_IR 100", "Ñúñez^José"),
    ("ISO_IR 144", "Иванова^Мария"),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),
])
def test_non_ascii_names_are_decoded(archive: Archive, charset: str | list[str],
                                     name: str) -> None:
    ds = make_dataset(patient_name=name)
    ds.SpecificCharacterSet = charset
    ds.StudyDescription = "Étude 研究" if charset == "ISO_IR 192" else "STUDY"
    data = part10(ds)
    assert name.encode("utf-8") not in data or charset == "ISO_IR 192"  # really encoded
    assert archive.ingest(data).outcome is Outcome.STORED
    [patient] = archive.patients()
    assert patient.columns["patient_name"] == name
    assert patient.columns["patient_name_norm"] == name.upper()
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), name.split("="),
                      strict=False))
    assert patient.attributes["00100010"] == {"vr": "PN", "Value": [groups]}
    study = archive.find(ds.StudyInstanceUID)
    assert study is not None
    assert study.columns["study_description"] == ds.StudyDescription
    # Every level says which character set the values were decoded from.
    for node in (patient, study, archive.find(ds.SeriesInstanceUID),
                 archive.find(ds.SOPInstanceUID)):
        assert node is not None
        assert "00080005" in node.attributes


def test_names_from_pydicom_character_set_files(archive: Archive) -> None:
    """Every pydicom sample with a patient name: the index has what pydicom decodes."""
    checked = 0
    for path in sorted(CHARSET_FILES.glob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            if "PatientName" not in ds or "SOPClassUID" not in ds:
                continue
            result = archive.ingest(path)
            expected = ds["PatientName"].to_json_dict(None, 1024)
        assert result.ok, (path.name, result)
        study = archive.find(ds.StudyInstanceUID)
        assert study is not None
        [patient] = [p for p in archive.patients()
                     if p.columns["pk"] == study.columns["patient_fk"]]
        assert patient.attributes["00100010"] == expected, path.name
        assert patient.columns["patient_name"] == str(ds.PatientName), path.name
        checked += 1
    assert checked >= 12


def test_dumps_loads_round_trip_keeps_unicode() -> None:
    value = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "山田^太郎"}]}}
    text = dicom_json.dumps(value)
    assert "山田" in text and " " not in text
    assert dicom_json.loads(text) == value
    assert dicom_json.loads(None) == {} and dicom_json.loads("") == {}

