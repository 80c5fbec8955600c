"""Test data and independent checks for the core's unit tests.

Nothing here uses pacsnode's own parsing: the data set bytes of a Part-10 file and the
expected derived counts are computed from the inputs, so the tests can catch the core's
mistakes.
"""

from __future__ import annotations

import io
import struct
from collections import defaultdict
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CHARSET_FILES = Path(pydicom.__file__).parent / "data" / "charset_files"
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


def make_dataset(
    *,
    patient_id: str = "PAT-1",
    patient_name: str = "DOE^JANE",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    sop_class: str = CTImageStorage,
    modality: str = "CT",
    instance_number: int = 1,
    pixel_seed: int = 0,
) -> Dataset:
    """A small, complete single-frame image (4x4, 16 bit) with file meta (explicit VR LE)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.Modality = modality
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "UNIT TEST STUDY"
    ds.SeriesDescription = "UNIT TEST SERIES"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((pixel_seed + i) % 256 for i in range(32))
    return ds


def part10(ds: Dataset) -> bytes:
    """``ds`` as a Part-10 file (pydicom fills in the file meta it can)."""
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def split_part10(data: bytes) -> tuple[bytes, bytes]:
    """(preamble + file meta group, data set) of a file; the first part is empty for a bare
    data set (no preamble). The file meta group is explicit VR little endian (PS3.10 7.1)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return b"", data
    pos = 132
    while data[pos:pos + 2] == b"\x02\x00":
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            pos += 12 + struct.unpack("<I", data[pos + 8:pos + 12])[0]
        else:
            pos += 8 + struct.unpack("<H", data[pos + 6:pos + 8])[0]
    return data[:pos], data[pos:]


def data_set_bytes(data: bytes) -> bytes:
    return split_part10(data)[1]


def stored_bytes(archive: Archive, sop_uid: str) -> bytes:
    with archive.open_instance(sop_uid) as fh:
        return fh.read()


def stored_meta(archive: Archive, sop_uid: str) -> FileMetaDataset:
    """The file meta information of an instance's stored file."""
    with archive.open_instance(sop_uid) as fh:
        return pydicom.dcmread(fh, stop_before_pixels=True).file_meta


def blob_files(data_dir: Path) -> set[Path]:
    """Every file in the store except temporary files (and the index)."""
    root = data_dir / "files"
    return {p for p in root.rglob("*") if p.is_file() and (root / "tmp") not in p.parents}


def temp_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "files" / "tmp").iterdir())


# -- expected derived counts -------------------------------------------------------------

@dataclass
class Expected:
    """The hierarchy and derived attributes an index must show for a set of instances."""

    patients: dict[tuple[str, str], dict[str, int]]
    studies: dict[str, dict[str, object]]
    series: dict[str, int]
    instances: set[str]

    def counts(self) -> dict[str, int]:
        return {"patients": len(self.patients), "studies": len(self.studies),
                "series": len(self.series), "instances": len(self.instances)}


def expected_index(datasets: Iterable[Dataset]) -> Expected:
    """Recompute, from the data sets themselves, what the index must say (later data sets
    with the same SOP Instance UID win; a study belongs to its latest instance's patient)."""
    latest: dict[str, Dataset] = {}
    for ds in datasets:
        latest.pop(str(ds.SOPInstanceUID), None)
        latest[str(ds.SOPInstanceUID)] = ds
    study_patient: dict[str, tuple[str, str]] = {}
    series_study: dict[str, str] = {}
    series_modality: dict[str, str] = {}
    series_instances: dict[str, set[str]] = defaultdict(set)
    study_classes: dict[str, set[str]] = defaultdict(set)
    for uid, ds in latest.items():
        study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        study_patient[study_uid] = (str(ds.get("PatientID", "")),
                                    str(ds.get("IssuerOfPatientID", "")))
        series_study[series_uid] = study_uid
        series_modality[series_uid] = str(ds.get("Modality", ""))
        series_instances[series_uid].add(uid)
        study_classes[study_uid].add(str(ds.SOPClassUID))
    study_series: dict[str, list[str]] = defaultdict(list)
    for series_uid, study_uid in series_study.items():
        study_series[study_uid].append(series_uid)
    studies: dict[str, dict[str, object]] = {}
    for study_uid in study_patient:
        its_series = study_series[study_uid]
        studies[study_uid] = {
            "num_series": len(its_series),
            "num_instances": sum(len(series_instances[s]) for s in its_series),
            "modalities_in_study": "\\".join(sorted({series_modality[s] for s in its_series
                                                     if series_modality[s]})),
            "sop_classes_in_study": "\\".join(sorted(study_classes[study_uid])),
        }
    patients: dict[tuple[str, str], dict[str, int]] = {}
    for key in set(study_patient.values()):
        its_studies = [st for st, p in study_patient.items() if p == key]
        patients[key] = {
            "num_studies": len(its_studies),
            "num_series": sum(len(study_series[st]) for st in its_studies),
            "num_instances": sum(len(series_instances[se]) for st in its_studies
                                 for se in study_series[st]),
        }
    return Expected(patients=patients, studies=studies,
                    series={s: len(i) for s, i in series_instances.items()},
                    instances=set(latest))


def actual_index(archive: Archive) -> Expected:
    """What the archive's index says, in the shape of :func:`expected_index`."""
    patients: dict[tuple[str, str], dict[str, int]] = {}
    studies: dict[str, dict[str, object]] = {}
    series: dict[str, int] = {}
    instances: set[str] = set()
    for pat in archive.patients():
        c = pat.columns
        key = (c["patient_id"], c["issuer_of_patient_id"])
        assert key not in patients, f"patient {key} indexed twice"
        patients[key] = {k: c[k] for k in ("num_studies", "num_series", "num_instances")}
        for st in archive.studies(c["pk"]):
            sc = st.columns
            studies[sc["study_instance_uid"]] = {
                k: sc[k] for k in ("num_series", "num_instances", "modalities_in_study",
                                   "sop_classes_in_study")}
            for se in archive.series(sc["study_instance_uid"]):
                uid = se.columns["series_instance_uid"]
                series[uid] = se.columns["num_instances"]
                listed = archive.instances(uid)
                assert len(listed) == series[uid], f"series {uid}: count differs from rows"
                instances |= {i.columns["sop_instance_uid"] for i in listed}
    return Expected(patients=patients, studies=studies, series=series, instances=instances)


def assert_index_matches(archive: Archive, datasets: Iterable[Dataset]) -> None:
    """Every patient's, study's and series' derived attributes equal those recomputed from
    ``datasets``; no other row exists."""
    expected = expected_index(datasets)
    actual = actual_index(archive)
    assert actual.instances == expected.instances
    assert actual.series == expected.series
    assert actual.studies == expected.studies
    assert actual.patients == expected.patients
    assert archive.counts() == expected.counts()


# -- a corpus with more than one SOP class and modality per study -----------------------

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_PIXEL_MODULE = ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
                 "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData",
                 "PixelSpacing", "RescaleIntercept", "RescaleSlope", "RescaleType",
                 "WindowCenter", "WindowWidth")


def corpus_inputs(corpus_files: list[Path]) -> list[Dataset]:
    """The corpus files read back, plus two instances made from them: a structured report in
    a new series of the first study (Modality SR) and a secondary capture image in the first
    series of the second study (a second SOP class, same modality)."""
    datasets = [pydicom.dcmread(p) for p in corpus_files]
    sr = deepcopy(datasets[0])
    for keyword in _PIXEL_MODULE:
        if keyword in sr:
            delattr(sr, keyword)
    sr.SOPClassUID = sr.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    sr.SOPInstanceUID = sr.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sr.SeriesInstanceUID = generate_uid()
    sr.SeriesNumber = 99
    sr.Modality = "SR"
    sc = deepcopy(datasets[4])
    sc.SOPClassUID = sc.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    sc.SOPInstanceUID = sc.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sc.InstanceNumber = 3
    return [*datasets, sr, sc]


def ingest_all(archive: Archive, datasets: Iterable[Dataset]) -> None:
    for ds in datasets:
        result = archive.ingest(part10(ds))
        assert result.outcome is Outcome.STORED, result
