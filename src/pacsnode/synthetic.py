"""Deterministic synthetic DICOM corpus generator.

The generator writes plausible CT and MR single-frame images (16-bit MONOCHROME2,
Explicit VR Little Endian, Part-10 files) whose every byte is a function of the
arguments: UIDs are ``2.25.`` UIDs made from name-based (version 5) UUIDs of the
seed and the corpus parameters, dates and times come from a seeded RNG rather
than the clock, and pixel data comes from a seeded numpy generator.  The same
arguments therefore give byte-identical files (with the same pydicom and numpy
versions), and corpora generated with different parameters never share a
Study/Series/SOP Instance UID.

Note: ``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)`` ignores
``entropy_srcs`` and returns a random UUID-based UID (pydicom 3.0), and with a
prefix it joins the sources without a separator, so it is not used here.

Patient demographics (ID, name, sex, birth date) depend only on the seed and the
patient index, so the same patient appears identically in corpora of different
sizes.  Patient names include non-ASCII names, written with Specific Character
Set ``ISO_IR 192`` (UTF-8), one Latin-1 name written with ``ISO_IR 100``, and
plain ASCII names written without a Specific Character Set.

Layout of :func:`generate_corpus`::

    out_dir/p0001/st01/se01/i00001.dcm

Layout of :func:`generate_ct_series`::

    out_dir/ct00001.dcm
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)

__all__ = ["generate_corpus", "generate_ct_series"]

_NAMESPACE = "pacsnode-synthetic-v1"
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, _NAMESPACE)
_SEPARATOR = "\x1f"
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(_UUID_NAMESPACE, 'implementation').int}"
IMPLEMENTATION_VERSION_NAME = "PACSNODE_SYNTH1"

_EPOCH = dt.date(2020, 1, 1)
_NOISE_MARGIN = 8


@dataclass(frozen=True)
class _Person:
    """A curated patient name with its sex and the character set used to write it."""

    name: str
    sex: str
    charset: str | None


_CURATED_PATIENTS: tuple[_Person, ...] = (
    _Person("DOE^JOHN", "M", None),
    _Person("Müller^Jürgen", "M", "ISO_IR 192"),
    _Person("山田^太郎", "M", "ISO_IR 192"),
    _Person("Ωμέγα^Άλφα", "F", "ISO_IR 192"),
    _Person("SMITH^JANE^Q^DR^PHD", "F", None),
    _Person("Ñúñez^José", "M", "ISO_IR 100"),
    _Person("O'BRIEN^PATRICK", "M", None),
    _Person("Иванова^Мария", "F", "ISO_IR 192"),
    _Person("Yamada^Hanako=山田^花子=やまだ^はなこ", "F", "ISO_IR 192"),
    _Person("김^민준", "M", "ISO_IR 192"),
    _Person("NGUYEN^VAN AN", "O", None),
    _Person("Łukasiewicz^Zofia", "F", "ISO_IR 192"),
)

_SURNAMES = (
    "BROWN",
    "GARCIA",
    "JOHNSON",
    "KOWALSKI",
    "LEE",
    "MARTIN",
    "ROSSI",
    "SCHMIDT",
    "TANAKA",
    "WILSON",
    "Dubois",
    "Öztürk",
    "Søndergaard",
    "Piña",
    "Čapek",
)
_GIVEN_NAMES = (
    ("ALICE", "F"),
    ("BOB", "M"),
    ("CARLOS", "M"),
    ("DANA", "F"),
    ("EMMA", "F"),
    ("FRANK", "M"),
    ("Zoë", "F"),
    ("Björn", "M"),
    ("Renée", "F"),
    ("Łukasz", "M"),
)
_REFERRING = ("WELBY^MARCUS^^DR", "HOUSE^GREGORY^^DR", "", "QUINN^MICHAELA^^DR", "KILDARE^JAMES")

_CT_PROTOCOLS = (
    (
        "CHEST",
        "CT CHEST W/O CONTRAST",
        ("AXIAL 5.0 SOFT TISSUE", "AXIAL 1.0 LUNG", "AXIAL 2.0 BONE"),
    ),
    (
        "ABDOMEN",
        "CT ABDOMEN PELVIS WITH CONTRAST",
        ("PORTAL VENOUS 3.0", "ARTERIAL 3.0", "DELAYED 5.0"),
    ),
    ("HEAD", "CT HEAD W/O CONTRAST", ("AXIAL 5.0 BRAIN", "AXIAL 1.0 BONE", "AXIAL 2.5 SOFT")),
)
_MR_PROTOCOLS = (
    ("HEAD", "MR BRAIN WITH AND WITHOUT CONTRAST", ("T1 AX", "T2 AX", "FLAIR AX", "DWI AX")),
    ("KNEE", "MR KNEE LEFT", ("PD FS AX", "T1 AX", "T2 FS AX")),
    ("LSPINE", "MR LUMBAR SPINE", ("T2 AX", "T1 AX", "STIR AX")),
)


@dataclass(frozen=True)
class _SeriesSpec:
    """Everything needed to write one series; the per-instance part is added later."""

    modality: str
    patient: Dataset
    study_index: int
    series_index: int
    count: int
    rows: int
    columns: int
    uid_scope: tuple[str, ...]
    rng_seed: tuple[int, ...]
    first_instance_number: int = 1


def generate_corpus(
    out_dir: Path,
    *,
    patients: int = 3,
    studies_per_patient: int = 2,
    series_per_study: int = 2,
    instances_per_series: int = 5,
    rows: int = 64,
    columns: int = 64,
    seed: int = 0,
    modality_cycle: tuple[str, ...] = ("CT", "MR"),
) -> list[Path]:
    """Write a deterministic multi-patient corpus and return the file paths in write order.

    Args:
        out_dir: Directory to write into (created if missing; existing files with the same
            names are overwritten, other files are left alone).
        patients: Number of patients.
        studies_per_patient: Studies per patient.
        series_per_study: Series per study.
        instances_per_series: Single-frame images per series.
        rows: Image rows.
        columns: Image columns.
        seed: Seed for UIDs, demographics, dates and pixel data.
        modality_cycle: Modalities assigned to studies in turn (study ``k`` over the whole corpus,
            counted patient by patient, gets ``modality_cycle[k % len(modality_cycle)]``); every
            series of a study has the study's modality. Supported: ``"CT"``, ``"MR"``.

    Returns:
        The written paths, ordered by patient, study, series and instance number.

    Raises:
        ValueError: On a non-positive count or size, or an unsupported modality.
    """
    _check_positive(
        patients=patients,
        studies_per_patient=studies_per_patient,
        series_per_study=series_per_study,
        instances_per_series=instances_per_series,
        rows=rows,
        columns=columns,
    )
    _check_modalities(modality_cycle)
    scope = (
        "corpus",
        str(seed),
        str(patients),
        str(studies_per_patient),
        str(series_per_study),
        str(instances_per_series),
        str(rows),
        str(columns),
        "\\".join(modality_cycle),
    )
    paths: list[Path] = []
    study_counter = 0
    for p in range(patients):
        patient = _patient_dataset(seed, p)
        for st in range(studies_per_patient):
            modality = modality_cycle[study_counter % len(modality_cycle)]
            study_counter += 1
            for se in range(series_per_study):
                spec = _SeriesSpec(
                    modality=modality,
                    patient=patient,
                    study_index=st,
                    series_index=se,
                    count=instances_per_series,
                    rows=rows,
                    columns=columns,
                    uid_scope=(*scope, str(p)),
                    rng_seed=(seed, p, st, se),
                )
                series_dir = out_dir / f"p{p + 1:04d}" / f"st{st + 1:02d}" / f"se{se + 1:02d}"
                paths.extend(_write_series(spec, series_dir, "i"))
    return paths


def generate_ct_series(
    out_dir: Path, count: int, *, rows: int = 512, columns: int = 512, seed: int = 0
) -> list[Path]:
    """Write one CT series (one patient, one study) of ``count`` CT Image Storage instances.

    Files are named ``ct00001.dcm`` ... directly in ``out_dir`` (created if missing).  The
    pixel data is 16-bit (12 bits stored, unsigned, rescale intercept -1024), generated
    cheaply enough that 1,000 512x512 images take a few seconds.

    Args:
        out_dir: Directory to write into.
        count: Number of instances.
        rows: Image rows.
        columns: Image columns.
        seed: Seed for UIDs, demographics, dates and pixel data.

    Returns:
        The written paths in instance-number order.

    Raises:
        ValueError: On a non-positive count or size.
    """
    _check_positive(count=count, rows=rows, columns=columns)
    spec = _SeriesSpec(
        modality="CT",
        patient=_patient_dataset(seed, 0),
        study_index=0,
        series_index=0,
        count=count,
        rows=rows,
        columns=columns,
        uid_scope=("ct-series", str(seed), str(count), str(rows), str(columns)),
        rng_seed=(seed, 1_000_003, count, rows, columns),
    )
    return _write_series(spec, out_dir, "ct")


# --------------------------------------------------------------------------- validation


def _check_positive(**values: int) -> None:
    """Raise ValueError unless every keyword value is a positive int."""
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_modalities(modality_cycle: Sequence[str]) -> None:
    """Raise ValueError if ``modality_cycle`` is empty or names an unsupported modality."""
    if not modality_cycle:
        raise ValueError("modality_cycle must not be empty")
    for modality in modality_cycle:
        if modality not in ("CT", "MR"):
            raise ValueError(f"unsupported modality {modality!r}; use 'CT' or 'MR'")


# --------------------------------------------------------------------------- determinism helpers


def _uid(*parts: str) -> str:
    """Return a ``2.25.`` UID made from a name-based UUID of ``parts`` (never random)."""
    return f"2.25.{uuid.uuid5(_UUID_NAMESPACE, _SEPARATOR.join(parts)).int}"


def _digits(n: int, *parts: object) -> str:
    """Return an ``n``-digit decimal string derived only from ``parts``."""
    name = _SEPARATOR.join([_NAMESPACE, *map(str, parts)])
    digest = hashlib.sha256(name.encode()).hexdigest()
    return str(int(digest, 16) % 10**n).zfill(n)


def _da(day: dt.date) -> str:
    """Format a date as DICOM DA."""
    return day.strftime("%Y%m%d")


def _tm(seconds: int) -> str:
    """Format seconds since midnight as DICOM TM (HHMMSS)."""
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def _seconds(tm: str) -> int:
    """Parse a DICOM TM of the form HHMMSS into seconds since midnight."""
    return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + int(tm[4:6])


# --------------------------------------------------------------------------- patient / study


def _patient_person(seed: int, index: int) -> _Person:
    """Return the name, sex and character set of patient ``index``."""
    if index < len(_CURATED_PATIENTS):
        return _CURATED_PATIENTS[index]
    rng = np.random.default_rng([seed, index, 17])
    surname = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
    given, sex = _GIVEN_NAMES[int(rng.integers(len(_GIVEN_NAMES)))]
    name = f"{surname}^{given}"
    return _Person(name, sex, None if name.isascii() else "ISO_IR 192")


def _patient_dataset(seed: int, index: int) -> Dataset:
    """Return the Patient module of patient ``index`` (depends only on seed and index)."""
    person = _patient_person(seed, index)
    rng = np.random.default_rng([seed, index, 23])
    ds = Dataset()
    if person.charset:
        ds.SpecificCharacterSet = person.charset
    ds.PatientName = person.name
    ds.PatientID = f"SYN{seed}-{index + 1:05d}"
    ds.IssuerOfPatientID = "PACSNODE-SYNTH"
    ds.PatientBirthDate = _da(dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 30_000))))
    ds.PatientSex = person.sex
    return ds


def _study_attributes(ds: Dataset, spec: _SeriesSpec) -> None:
    """Fill General Study, Patient Study and study-level equipment attributes."""
    rng = np.random.default_rng([*spec.rng_seed[:3], 31])
    day = _EPOCH + dt.timedelta(days=int(rng.integers(0, 5 * 365)))
    seconds = int(rng.integers(7 * 3600, 19 * 3600))
    body_part, description, _ = _protocol(spec)
    ds.StudyInstanceUID = _uid(*spec.uid_scope, "study", str(spec.study_index))
    ds.StudyDate = _da(day)
    ds.StudyTime = _tm(seconds)
    ds.AccessionNumber = _digits(10, *spec.uid_scope, "accession", spec.study_index)
    ds.StudyID = str(spec.study_index + 1)
    ds.StudyDescription = description
    ds.ReferringPhysicianName = _REFERRING[int(rng.integers(len(_REFERRING)))]
    birth = dt.datetime.strptime(str(ds.PatientBirthDate), "%Y%m%d").date()
    ds.PatientAge = f"{max(0, (day - birth).days // 365):03d}Y"
    ds.BodyPartExamined = body_part
    ds.InstitutionName = "PACSNODE GENERAL HOSPITAL"
    ds.StationName = f"SYN{spec.modality}01"
    ds.Manufacturer = "PACSNODE"
    ds.ManufacturerModelName = f"SYNTHETIC {spec.modality}"
    ds.DeviceSerialNumber = _digits(6, spec.modality, "device")
    ds.SoftwareVersions = "1.0"


def _protocol(spec: _SeriesSpec) -> tuple[str, str, tuple[str, ...]]:
    """Return (body part, study description, series descriptions) for the series' study."""
    table = _CT_PROTOCOLS if spec.modality == "CT" else _MR_PROTOCOLS
    return table[(spec.rng_seed[0] + spec.rng_seed[1] + spec.study_index) % len(table)]


# --------------------------------------------------------------------------- series


def _series_dataset(spec: _SeriesSpec) -> Dataset:
    """Build the dataset shared by every instance of a series (all but per-instance values)."""
    ds = Dataset()
    ds.update(spec.patient)
    _study_attributes(ds, spec)
    _, _, series_descriptions = _protocol(spec)
    ds.SOPClassUID = CTImageStorage if spec.modality == "CT" else MRImageStorage
    ds.Modality = spec.modality
    ds.SeriesInstanceUID = _uid(
        *spec.uid_scope, "series", str(spec.study_index), str(spec.series_index)
    )
    ds.SeriesNumber = spec.series_index + 1
    ds.SeriesDescription = series_descriptions[spec.series_index % len(series_descriptions)]
    ds.SeriesDate = ds.StudyDate
    study_seconds = _seconds(str(ds.StudyTime))
    ds.SeriesTime = _tm(min(study_seconds + 180 * (spec.series_index + 1), 86_399))
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = _uid(*spec.uid_scope, "for", str(spec.study_index))
    ds.PositionReferenceIndicator = ""
    ds.AcquisitionNumber = 1
    ds.ContentDate = ds.StudyDate
    ds.AcquisitionDate = ds.StudyDate
    ds.PatientOrientation = ""
    _plane_attributes(ds, spec)
    _pixel_description(ds, spec)
    if spec.modality == "CT":
        _ct_attributes(ds)
    else:
        _mr_attributes(ds, spec)
    return ds


def _plane_attributes(ds: Dataset, spec: _SeriesSpec) -> None:
    """Fill the series-constant part of the Image Plane module (axial slices)."""
    fov = 350.0 if spec.modality == "CT" else 240.0
    spacing = round(fov / max(spec.rows, spec.columns), 6)
    ds.PixelSpacing = [spacing, spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = 2.5 if spec.modality == "CT" else 4.0
    ds.SpacingBetweenSlices = ds.SliceThickness


def _pixel_description(ds: Dataset, spec: _SeriesSpec) -> None:
    """Fill the Image Pixel module attributes except Pixel Data."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.BitsAllocated = 16
    if spec.modality == "CT":
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    else:
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1


def _ct_attributes(ds: Dataset) -> None:
    """Fill the CT Image module and VOI LUT attributes."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.KVP = 120
    ds.XRayTubeCurrent = 250
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "STANDARD"
    ds.WindowCenter = 40
    ds.WindowWidth = 400


def _mr_attributes(ds: Dataset, spec: _SeriesSpec) -> None:
    """Fill the MR Image module and VOI LUT attributes."""
    weighted_t2 = "T2" in str(ds.SeriesDescription) or spec.series_index % 2 == 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 4000.0 if weighted_t2 else 500.0
    ds.EchoTime = 100.0 if weighted_t2 else 12.0
    ds.EchoTrainLength = 16 if weighted_t2 else 1
    ds.MagneticFieldStrength = 1.5
    ds.ImagedNucleus = "1H"
    ds.ImagingFrequency = 63.87
    ds.WindowCenter = 600
    ds.WindowWidth = 1200


# --------------------------------------------------------------------------- pixel data


class _Phantom:
    """Cheap, deterministic slice generator: fixed geometry fields plus a shifted noise window.

    The expensive work (distance fields and one noise field) is done once per series; each
    slice costs a few vectorised comparisons and an array slice.
    """

    def __init__(self, modality: str, rows: int, columns: int, rng: np.random.Generator) -> None:
        self.modality = modality
        self.rows, self.columns = rows, columns
        self.rng = rng
        y, x = np.ogrid[0:rows, 0:columns]
        ny = (y - rows / 2) / (rows / 2)
        nx = (x - columns / 2) / (columns / 2)
        self.body = (nx / 0.85) ** 2 + (ny / 0.7) ** 2
        self.left = ((nx + 0.35) / 0.25) ** 2 + (ny / 0.4) ** 2
        self.right = ((nx - 0.35) / 0.25) ** 2 + (ny / 0.4) ** 2
        self.core = (nx / 0.12) ** 2 + ((ny - 0.35) / 0.12) ** 2
        shape = (rows + 2 * _NOISE_MARGIN, columns + 2 * _NOISE_MARGIN)
        amplitude = 20 if modality == "CT" else 30
        self.noise = rng.integers(-amplitude, amplitude + 1, size=shape, dtype=np.int16)

    def slice(self, index: int, count: int) -> bytes:
        """Return the little-endian Pixel Data bytes of slice ``index`` of ``count``."""
        phase = np.sin(np.pi * (index + 0.5) / count)
        offset = int(self.rng.integers(-5, 6))
        if self.modality == "CT":
            air, tissue, lung, bone = 24, 1064 + offset, 224, 1924
        else:
            air, tissue, lung, bone = 0, 700 + offset, 350, 1100
        img = np.full((self.rows, self.columns), air, dtype=np.int16)
        img[self.body < 1.0] = tissue
        lobes = (self.left < 0.6 + 0.4 * phase) | (self.right < 0.6 + 0.4 * phase)
        img[lobes] = lung
        img[self.core < 0.5 + phase] = bone
        dy, dx = (int(v) for v in self.rng.integers(0, 2 * _NOISE_MARGIN + 1, size=2))
        img += self.noise[dy : dy + self.rows, dx : dx + self.columns]
        np.clip(img, 0, 4095, out=img)
        dtype = "<u2" if self.modality == "CT" else "<i2"
        return img.astype(dtype, copy=False).tobytes()


# --------------------------------------------------------------------------- writing


def _file_meta(sop_class_uid: str, sop_instance_uid: str) -> FileMetaDataset:
    """Return Part-10 file meta information for an Explicit VR Little Endian file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _write_series(spec: _SeriesSpec, directory: Path, stem: str) -> list[Path]:
    """Write every instance of ``spec`` into ``directory`` as ``{stem}{n:05d}.dcm``."""
    directory.mkdir(parents=True, exist_ok=True)
    ds = _series_dataset(spec)
    phantom = _Phantom(spec.modality, spec.rows, spec.columns, np.random.default_rng(spec.rng_seed))
    start = _seconds(str(ds.SeriesTime))
    thickness = float(ds.SliceThickness)
    origin_x = -float(ds.PixelSpacing[1]) * spec.columns / 2
    origin_y = -float(ds.PixelSpacing[0]) * spec.rows / 2
    paths: list[Path] = []
    for i in range(spec.count):
        number = spec.first_instance_number + i
        z = round(-thickness * i, 3)
        ds.SOPInstanceUID = _uid(
            *spec.uid_scope, "instance", str(spec.study_index), str(spec.series_index), str(i)
        )
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [round(origin_x, 3), round(origin_y, 3), z]
        ds.SliceLocation = z
        ds.ContentTime = _tm(min(start + i // 4, 86_399))
        ds.AcquisitionTime = ds.ContentTime
        ds.PixelData = phantom.slice(i, spec.count)
        ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
        path = directory / f"{stem}{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
