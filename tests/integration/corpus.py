"""Test corpora and the helpers to send and compare them.

* :func:`pydicom_test_files` / :func:`pydicom_data_files`: every DICOM file shipped in
  pydicom's test data and in the PyPI package pydicom-data: each ``*.dcm`` file (broken
  ones included) and each file without an extension that pydicom reads as DICOM.
  Never ``pydicom.data.get_testdata_files()``: it tries to download files that are not
  bundled, and hangs offline.
* :func:`describe`: what a test needs to know about a file (its UIDs, transfer syntax,
  hierarchy keys) and :func:`expected_index`: the counts an archive must show after
  receiving files in a given order (later files with the same SOP Instance UID replace
  earlier ones, as under pacsnode's default ``replace`` policy).
* :func:`write_storescu_config`: a DCMTK ``storescu -xf`` configuration whose profile
  proposes each (SOP class, transfer syntax) pair as its own presentation context, so that
  storescu sends every file in the transfer syntax it is stored in (without one, storescu
  silently converts).
* :func:`dataset_bytes`: the data set of a Part-10 file, i.e. everything after the preamble
  and the file meta group, to compare byte for byte.
"""

from __future__ import annotations

import re
import struct
import subprocess
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


def pydicom_test_root() -> Path:
    return Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_data_root() -> Path | None:
    """``data_store/data`` of the pydicom-data package, or None if it is not installed."""
    try:
        import data_store  # the import name of the pydicom-data package
    except ImportError:
        return None
    return Path(data_store.__file__).parent / "data"


def _is_dicom_file(path: Path) -> bool:
    """Whether pydicom reads ``path`` as a DICOM file (without ``force``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # pydicom raises many kinds of exception on what is not DICOM
        return False
    return True


def _candidates(root: Path) -> list[Path]:
    """Every ``*.dcm`` file below ``root`` (readable or not: broken files are part of the
    test), and every file without an extension that pydicom reads as DICOM (DICOMDIRs,
    the images of a File-set), sorted."""
    return [p for p in sorted(root.rglob("*")) if p.is_file() and (
        p.suffix == ".dcm" or (p.suffix == "" and _is_dicom_file(p)))]


def pydicom_test_files() -> list[Path]:
    """The DICOM files of pydicom's own test data."""
    return _candidates(pydicom_test_root())


def pydicom_data_files() -> list[Path]:
    """The DICOM files of the pydicom-data package (``data_store/data``)."""
    root = pydicom_data_root()
    return [] if root is None else _candidates(root)


# -- what a file is -----------------------------------------------------------------------


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    return "" if value is None else str(value).strip("\x00 ")


@dataclass(frozen=True)
class FileInfo:
    """The keys of one DICOM file, as pydicom reads them."""

    path: Path
    sop_class_uid: str  # from the file meta (what storescu proposes), else the data set
    transfer_syntax: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    issuer_of_patient_id: str
    modality: str
    has_file_meta: bool

    @property
    def pair(self) -> tuple[str, str]:
        """The presentation context this file needs."""
        return (self.sop_class_uid, self.transfer_syntax)

    @property
    def uids_valid(self) -> bool:
        """Whether the four UIDs an archive needs are present and well-formed."""
        return all(u and len(u) <= 64 and UID_RE.match(u) for u in (
            self.sop_class_uid, self.sop_instance_uid, self.study_instance_uid,
            self.series_instance_uid))


def describe(path: Path) -> FileInfo:
    """Read the header of a DICOM file (pydicom, no pixel data); what cannot be read is
    left empty."""
    with path.open("rb") as fh:
        head = fh.read(132)
    has_meta = head[128:132] == b"DICM"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        ds = pydicom.Dataset()
    meta = ds.get("file_meta") or pydicom.Dataset()
    sop_class = _text(meta, "MediaStorageSOPClassUID") or _text(ds, "SOPClassUID")
    ts = _text(meta, "TransferSyntaxUID")
    if not ts and not has_meta and len(ds):  # a bare data set: its encoding tells
        implicit, little = ds.original_encoding
        ts = (ImplicitVRLittleEndian if implicit else
              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return FileInfo(
        path=path, sop_class_uid=sop_class, transfer_syntax=ts,
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        patient_id=_text(ds, "PatientID")[:64],
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID")[:64],
        modality=_text(ds, "Modality")[:16],
        has_file_meta=has_meta)


# -- the expected index ---------------------------------------------------------------------


@dataclass
class ExpectedIndex:
    """What an archive must hold after receiving some files in order."""

    instances: dict[str, FileInfo] = field(default_factory=dict)  # SOP Instance UID -> last
    series_study: dict[str, str] = field(default_factory=dict)
    study_patient: dict[str, tuple[str, str]] = field(default_factory=dict)
    series_modality: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        series = {i.series_instance_uid for i in self.instances.values()}
        studies = {self.series_study[s] for s in series}
        patients = {self.study_patient[s] for s in studies}
        return {"patients": len(patients), "studies": len(studies), "series": len(series),
                "instances": len(self.instances)}

    def study_summary(self) -> dict[str, dict[str, Any]]:
        """Per Study Instance UID: its patient key, Number of Study Related Series and
        Instances, and Modalities in Study."""
        series: dict[str, set[str]] = defaultdict(set)
        instances: Counter[str] = Counter()
        for info in self.instances.values():
            study = self.series_study[info.series_instance_uid]
            series[study].add(info.series_instance_uid)
            instances[study] += 1
        return {study: {"patient": self.study_patient[study],
                        "num_series": len(series[study]),
                        "num_instances": instances[study],
                        "modalities_in_study": "\\".join(sorted(
                            {self.series_modality[s] for s in series[study]} - {""}))}
                for study in series}

    def patient_summary(self) -> dict[tuple[str, str], dict[str, int]]:
        """Per (Patient ID, Issuer of Patient ID): its numbers of studies, series and
        instances."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        for summary in self.study_summary().values():
            entry = out.setdefault(summary["patient"],
                                   {"num_studies": 0, "num_series": 0, "num_instances": 0})
            entry["num_studies"] += 1
            entry["num_series"] += summary["num_series"]
            entry["num_instances"] += summary["num_instances"]
        return out


def expected_index(accepted: Iterable[FileInfo]) -> ExpectedIndex:
    """The index after storing ``accepted`` in this order: a later file with the same SOP
    Instance UID replaces the earlier one; a series belongs to the study, a study to the
    patient, and a series has the modality of the latest file received for it."""
    index = ExpectedIndex()
    for info in accepted:
        index.instances.pop(info.sop_instance_uid, None)  # keep insertion order = last sent
        index.instances[info.sop_instance_uid] = info
        index.series_study[info.series_instance_uid] = info.study_instance_uid
        index.study_patient[info.study_instance_uid] = (info.patient_id,
                                                        info.issuer_of_patient_id)
        index.series_modality[info.series_instance_uid] = info.modality
    return index


# -- storescu --------------------------------------------------------------------------------


def write_storescu_config(path: Path, pairs: Iterable[tuple[str, str]],
                          profile: str = "EXACT") -> str:
    """Write a storescu ``-xf`` configuration proposing each (SOP class UID, transfer syntax
    UID) pair as a presentation context of its own, and nothing else. Returns the profile
    name to pass after the file name. At most 128 pairs fit in one association."""
    pairs = sorted(set(pairs))
    if not pairs:
        raise ValueError("no presentation contexts to propose")
    if len(pairs) > MAX_CONTEXTS:
        raise ValueError(f"{len(pairs)} presentation contexts; one association takes "
                         f"{MAX_CONTEXTS}")
    syntaxes = sorted({ts for _, ts in pairs})
    ts_name = {ts: f"TS{n}" for n, ts in enumerate(syntaxes, 1)}
    lines = ["[[TransferSyntaxes]]"]
    for ts in syntaxes:
        lines += [f"[{ts_name[ts]}]", f"TransferSyntax1 = {ts}"]
    lines += ["", "[[PresentationContexts]]", "[CONTEXTS]"]
    for n, (sop_class, ts) in enumerate(pairs, 1):
        lines.append(f"PresentationContext{n} = {sop_class}\\{ts_name[ts]}")
    lines += ["", "[[Profiles]]", f"[{profile}]", "PresentationContexts = CONTEXTS", ""]
    path.write_text("\n".join(lines))
    return profile


# -- bytes -------------------------------------------------------------------------------------


def dataset_offset(data: bytes) -> int:
    """Where the data set starts in a DICOM file: after the 128-byte preamble, 'DICM' and
    the file meta group (0002,xxxx), which PS3.10 encodes in explicit VR little endian."""
    pos = 132 if len(data) >= 132 and data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data):
        group = struct.unpack_from("<H", data, pos)[0]
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        elif vr.isalpha() and vr.isupper():
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
        else:  # implicit VR file meta: not conformant, but seen in the wild
            pos += 8 + struct.unpack_from("<I", data, pos + 4)[0]
    return pos


def dataset_bytes(source: Path | bytes) -> bytes:
    """The data set of a DICOM file (file meta information aside), as encoded."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return data[dataset_offset(data):]


@dataclass
class StorescuRun:
    """What one storescu run reported, file by file (from its ``-v`` output)."""

    returncode: int
    output: str
    responses: dict[Path, str] = field(default_factory=dict)  # file -> "Success", "Error: ..."
    errors: dict[Path, str] = field(default_factory=dict)  # file -> why it was not sent


def parse_storescu_output(output: str) -> tuple[dict[Path, str], dict[Path, str]]:
    """Per file: the C-STORE response storescu received, or the error that kept it from
    sending the file ("Bad DICOM file", "No SOP Class or Instance UID in file",
    "No presentation context for: ...")."""
    responses: dict[Path, str] = {}
    errors: dict[Path, str] = {}
    current: Path | None = None
    for line in output.splitlines():
        if line.startswith("I: Sending file: "):
            current = Path(line[len("I: Sending file: "):].strip())
        elif current is None:
            continue
        elif m := re.match(r"I: Received Store Response \((.*)\)", line):
            responses[current] = m.group(1)
            current = None
        elif line.startswith("E: ") and not re.match(r"E: Dcm\w+: ", line):  # parser detail
            errors.setdefault(current, line[3:].strip())
    return responses, errors


def run_storescu(storescu: str, env: dict[str, str], port: int, files: Sequence[Path],
                 work_dir: Path, *, called_aet: str, calling_aet: str = "STORESCU",
                 host: str = "127.0.0.1", timeout: float = 300) -> StorescuRun:
    """Send ``files`` in this order over one association, each in its own transfer syntax
    (an exact ``-xf`` profile), not halting on failures (``-nh``)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    pairs = set()
    for path in files:
        info = describe(path)
        if info.sop_class_uid and info.transfer_syntax:
            pairs.add(info.pair)
    config = work_dir / "storescu.cfg"
    profile = write_storescu_config(config, pairs)
    cmd = storescu_command(storescu, port, files, config, profile, called_aet=called_aet,
                           calling_aet=calling_aet, host=host)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    responses, errors = parse_storescu_output(output)
    return StorescuRun(proc.returncode, output, responses, errors)


def storescu_command(storescu: str, port: int, files: Sequence[Path], config: Path,
                     profile: str, *, called_aet: str, calling_aet: str = "STORESCU",
                     host: str = "127.0.0.1") -> list[str]:
    """The storescu command line ``run_storescu`` uses (for running several at once)."""
    return [storescu, "-v", "-nh", "-aet", calling_aet, "-aec", called_aet,
            "-xf", str(config), profile, host, str(port), *map(str, files)]


# -- DCMTK storescp as a reference receiver ------------------------------------------------


class Storescp:
    """DCMTK's storescp in bit-preserving mode (``+B``: every received data set written
    exactly as it came off the wire), accepting every transfer syntax (``+xa``)."""

    def __init__(self, storescp: str, echoscu: str, env: dict[str, str], out_dir: Path,
                 port: int, aet: str = "STORESCP") -> None:
        self.out_dir, self.port, self.aet = out_dir, port, aet
        out_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = out_dir.parent / f"storescp-{port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([storescp, "-v", "+xa", "+B", "-aet", aet, "-od",
                                      str(out_dir), str(port)], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"storescp exited: {self.log_path.read_text()}")
            echo = subprocess.run([echoscu, "-to", "1", "-aec", aet, "127.0.0.1", str(port)],
                                  env=env, capture_output=True, timeout=20)
            if echo.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("storescp did not answer C-ECHO")

    def received(self) -> dict[str, Path]:
        """SOP Instance UID -> the file storescp wrote last for it."""
        out: dict[str, Path] = {}
        for path in sorted(self.out_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns):
            meta = pydicom.filereader.read_file_meta_info(path)
            out[str(meta.MediaStorageSOPInstanceUID)] = path
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
