"""Download a study as a ZIP archive: ``GET /api/studies/{study_uid}/archive``.

The ZIP is streamed as it is made: memory stays bounded whatever the study's size (about
one 1 MiB chunk of one file in flight, plus a few hundred bytes per instance for the ZIP's
central directory and, with a DICOMDIR, its directory records). Nothing is assembled in
memory or on disk first.

* Each entry is an instance's stored Part-10 file (pacsnode's file meta, then the data set
  exactly as received), byte for byte, **stored** (no compression: pixel data rarely
  compresses well, and storing keeps throughput at disk speed), with a data descriptor after
  its bytes since the stream cannot go back to fill in the header (APPNOTE 4.3.9). An entry
  is ZIP64 when its size needs it and the archive gets ZIP64 end records when its offsets
  do, so a study may exceed 4 GiB.
* Without a DICOMDIR, entries are named for people:
  ``{PatientID or NOID}/{StudyInstanceUID}/{SeriesNumber or SeriesInstanceUID}/
  {InstanceNumber:05d or SOPInstanceUID}.dcm``, each component reduced to ASCII letters,
  digits, ``.``, ``_`` and ``-``. A series number shared by several series of the study
  becomes ``{SeriesNumber}_{SeriesInstanceUID}`` for each of them, an instance number
  shared within a series ``{InstanceNumber:05d}_{SOPInstanceUID}``, so that names are
  unique (compared case-insensitively, as on Windows and macOS).
* With ``?dicomdir=true`` the ZIP is a DICOM File-set (PS3.10 section 8, PS3.3 Annex F):
  the instances under ``DICOM/P0000001/S0000001/SEnnnnnn/Innnnnnn`` (File IDs of at most
  8 components of at most 8 characters among ``A-Z 0-9 _``, PS3.10 8.2 and 8.5, PS3.3
  F.3.2.2), and last a ``DICOMDIR`` in the root (Basic Directory IOD, PS3.3 F.3) with one
  PATIENT, one STUDY, one SERIES record per series and one record per instance, of the type
  PS3.3 F.5 gives its SOP Class (IMAGE, SR DOCUMENT, RT DOSE, ...). The records are made
  from each instance's header (read without pixel data while the instance streams) by
  pydicom's own record functions (:data:`pydicom.fileset.DIRECTORY_RECORDERS`), then linked
  and encoded here: :meth:`pydicom.fileset.FileSet.add` checks every instance already
  added on each call, which takes minutes for a study of thousands of instances, and
  :meth:`~pydicom.fileset.FileSet.write` copies every file into its own layout.
  A Type 1 record key the instance leaves empty gets a stand-in so that every instance can
  be listed (PatientID ``NOID``; StudyDate and StudyTime the instance's Series, Acquisition
  or Content Date and Time, as DCMTK's dcmmkdir does, else ``19000101`` ``000000``; StudyID
  ``1``; Modality ``OT``; SeriesNumber and InstanceNumber the series' or instance's rank in
  the File-set); the instance file itself is never changed.

An instance deleted after the archive started is left out (logged); one replaced meanwhile
is sent as it now is. An unknown study: 404 before anything is sent. A failure once the
ZIP has started (a file that cannot be read) ends the response without the ZIP's central
directory, so the client sees an incomplete download, never a wrong one.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO

import pydicom
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import DIRECTORY_RECORDERS
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.dicom_file import (
    DEFER_SIZE,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.web.problems import Problem

try:  # the leaf record type of PS3.3 F.5 for a SOP Class, as FileSet.add chooses it
    from pydicom.fileset import _four_level_record_type as _leaf_record_type
except ImportError:  # pragma: no cover - pydicom moved its table: every leaf an IMAGE
    def _leaf_record_type(ds: Dataset) -> str:
        return "IMAGE"

log = logging.getLogger("pacsnode.web")
router = APIRouter(tags=["Archive"])

ZIP = "application/zip"
CHUNK = 1024 * 1024  # bytes read from a stored file at a time, and sent at least at a time
STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
PATIENT_ID, SERIES_NUMBER, INSTANCE_NUMBER = 0x00100020, 0x00200011, 0x00200013

DICOMDIR = "DICOMDIR"
FILESET_ROOT = "DICOM"
MAX_SERIES, MAX_INSTANCES = 999_999, 9_999_999  # what SEnnnnnn and Innnnnnn can number
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                               *(f"LPT{i}" for i in range(10))})

# Directory Information Module (PS3.3 F.3.2.2): the offsets are the only values patched once
# every record's place is known. A record's elements are encoded in tag order, explicit VR
# little endian, so (0004,1400) UL comes first (value at 8), then (0004,1410) US (10 bytes),
# then (0004,1420) UL (value at 30).
_NEXT_AT, _LOWER_AT = 8, 30
_NEXT_TAG = struct.pack("<HH", 0x0004, 0x1400) + b"UL"
_LOWER_TAG = struct.pack("<HH", 0x0004, 0x1420) + b"UL"
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_RECORD_SEQUENCE = struct.pack("<HH", 0x0004, 0x1220) + b"SQ\x00\x00" + b"\xff\xff\xff\xff"

# Type 1 keys of the PATIENT, STUDY and SERIES records (PS3.3 F.5.1-F.5.3) and what stands
# in for them when an instance leaves them empty (SeriesNumber and InstanceNumber: a rank).
_PATIENT_DEFAULTS = {"PatientID": "NOID"}
_STUDY_DEFAULTS = {"StudyDate": "19000101", "StudyTime": "000000", "StudyID": "1"}
_SERIES_DEFAULTS = {"Modality": "OT"}
_ALTERNATIVES = {"StudyDate": ("SeriesDate", "AcquisitionDate", "ContentDate"),
                 "StudyTime": ("SeriesTime", "AcquisitionTime", "ContentTime")}


# -- what the archive holds ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Member:
    """One instance of the study, as the index lists it."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    storage_key: str
    patient_id: str
    series_instance_uid: str
    series_number: int | None
    instance_number: int | None


def _first(attrs: Mapping[str, Any], tag: int) -> Any:
    values = (attrs.get(f"{tag:08X}") or {}).get("Value") or [None]
    return values[0]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _order(member: Member) -> tuple[Any, ...]:
    """Series by number (unnumbered last), then by UID; instances likewise."""
    return (member.series_number is None, member.series_number or 0,
            member.series_instance_uid, member.instance_number is None,
            member.instance_number or 0, member.sop_instance_uid)


def study_members(archive: Archive, study_uid: str) -> list[Member]:
    """The instances of study ``study_uid``, read from the index in one snapshot (the read
    ends before anything is sent), in series then instance order; 404 when there is no such
    study."""
    # a one-element list: a backslash in the UID is not a list of UIDs here
    results = archive.search(Level.IMAGE, {STUDY_UID: matching.parse("UI", [study_uid])})
    try:
        members = [
            Member(sop_instance_uid=str(m.file["sop_instance_uid"]),
                   sop_class_uid=str(m.file["sop_class_uid"]),
                   transfer_syntax_uid=str(m.file["transfer_syntax_uid"]),
                   storage_key=str(m.file["storage_key"]),
                   patient_id=str(_first(m.attrs, PATIENT_ID) or ""),
                   series_instance_uid=str(_first(m.attrs, SERIES_UID) or ""),
                   series_number=_int(_first(m.attrs, SERIES_NUMBER)),
                   instance_number=_int(_first(m.attrs, INSTANCE_NUMBER)))
            for m in results]
    finally:
        results.close()
    if not members:
        raise Problem(404, f"no study {study_uid} in this archive")
    members.sort(key=_order)
    return members


# -- entry names ----------------------------------------------------------------------------

def safe_component(text: str, limit: int = 100) -> str:
    """``text`` as one portable path component: ASCII letters, digits, ``.``, ``_`` and
    ``-`` (anything else becomes ``_``), no leading dot (so never ``.`` or ``..``), no
    Windows device name, at most ``limit`` characters (a number and a 64-character UID
    fit); empty if nothing is left."""
    name = _UNSAFE.sub("_", text.strip()).lstrip(".")[:limit]
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name = f"_{name}"[:limit]
    return name


def readable_names(study_uid: str, members: list[Member]) -> list[str]:
    """The entry name of each member without DICOMDIR (see the module's description)."""
    patient = safe_component(members[0].patient_id) or "NOID"
    study = safe_component(study_uid) or "study"
    numbers: dict[str, int | None] = {}
    for m in members:
        numbers.setdefault(m.series_instance_uid, m.series_number)
    shared_series = Counter(n for n in numbers.values() if n is not None)
    folders: dict[str, str] = {}
    for uid, number in numbers.items():
        if number is None:
            folders[uid] = uid
        else:
            folders[uid] = str(number) if shared_series[number] == 1 else f"{number}_{uid}"
    shared_instances = Counter((m.series_instance_uid, m.instance_number) for m in members
                               if m.instance_number is not None)
    used: set[str] = set()
    names = []
    for m in members:
        n = m.instance_number
        if n is None:
            stem = m.sop_instance_uid
        elif shared_instances[m.series_instance_uid, n] == 1:
            stem = f"{n:05d}"
        else:
            stem = f"{n:05d}_{m.sop_instance_uid}"
        base = (f"{patient}/{study}/{safe_component(folders[m.series_instance_uid]) or 'series'}"
                f"/{safe_component(stem) or 'instance'}")
        name, k = f"{base}.dcm", 1
        while name.lower() in used:  # two values only sanitizing made equal
            k += 1
            name = f"{base}_{k}.dcm"
        used.add(name.lower())
        names.append(name)
    return names


def fileset_ids(members: list[Member]) -> list[tuple[str, ...]]:
    """The File ID of each member in a File-set (PS3.10 8.2): ``DICOM/P0000001/S0000001/
    SEnnnnnn/Innnnnnn``, series and instances numbered from 1 in order."""
    series: dict[str, int] = {}
    counts: Counter[str] = Counter()
    ids: list[tuple[str, ...]] = []
    for m in members:
        s = series.setdefault(m.series_instance_uid, len(series) + 1)
        counts[m.series_instance_uid] += 1
        i = counts[m.series_instance_uid]
        if s > MAX_SERIES or i > MAX_INSTANCES:
            raise Problem(422, f"the study has more series or instances than a DICOM File-set "
                          f"named this way can hold ({MAX_SERIES} series of {MAX_INSTANCES})")
        ids.append((FILESET_ROOT, "P0000001", "S0000001", f"SE{s:06d}", f"I{i:07d}"))
    return ids


# -- the DICOMDIR ---------------------------------------------------------------------------

def _empty(header: Dataset, keyword: str) -> bool:
    return keyword not in header or header[keyword].VM == 0


def _fill(header: Dataset, defaults: Mapping[str, Any]) -> None:
    """Give the Type 1 record keys ``header`` lacks or leaves empty their stand-ins: the
    first alternative attribute with a value, else the default."""
    for keyword, value in defaults.items():
        if _empty(header, keyword):
            others = [k for k in _ALTERNATIVES.get(keyword, ()) if not _empty(header, k)]
            setattr(header, keyword, header[others[0]].value if others else value)


def _encode_record(record: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, record)
    data = fp.getvalue()
    if data[_NEXT_AT - 8:_NEXT_AT - 2] != _NEXT_TAG or \
            data[_LOWER_AT - 8:_LOWER_AT - 2] != _LOWER_TAG:
        raise RuntimeError("directory record offsets not where expected")
    return data


def _record(record_type: str, header: Dataset, identity: Mapping[str, Any]) -> bytes:
    """One directory record (PS3.3 F.3.2.2, keys of F.5) made by pydicom's function for
    ``record_type`` from the instance ``header``, with ``identity`` (the elements that
    identify it, which the index and the ZIP decide) set over it, encoded explicit VR little
    endian with its offsets 0 (patched once every record's place is known). A record pydicom
    cannot make from this header keeps the identity alone (logged)."""
    try:
        record = DIRECTORY_RECORDERS[record_type](header)
    except Exception as exc:  # pydicom raises ValueError, or others on odd values
        log.warning("archive DICOMDIR: %s record of %s without its keys: %s", record_type,
                    identity.get("ReferencedSOPInstanceUIDInFile", "the study"), exc)
        record = Dataset()
    charset = header.get("SpecificCharacterSet")
    try:
        return _encode_record(_complete(record, record_type, identity, charset))
    except Exception as exc:  # a value of the header pydicom cannot encode
        log.warning("archive DICOMDIR: %s record reduced to its identity: %s", record_type, exc)
    try:
        return _encode_record(_complete(Dataset(), record_type, identity, charset))
    except Exception:  # the character set itself is the problem
        return _encode_record(_complete(Dataset(), record_type, identity, None))


def _complete(record: Dataset, record_type: str, identity: Mapping[str, Any],
              charset: Any) -> Dataset:
    """``record`` with the Directory Record elements (PS3.3 F.3.2.2) and ``identity``."""
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = record_type
    if charset:
        record.SpecificCharacterSet = charset
    for keyword, value in identity.items():
        setattr(record, keyword, value)
    return record


class DicomDir:
    """The DICOMDIR of one study's File-set (Basic Directory IOD, PS3.3 F.3), built one
    instance at a time as they stream, then encoded by :meth:`encode`."""

    def __init__(self, study_uid: str) -> None:
        self.study_uid = study_uid
        self.fileset_uid = generate_uid()
        self._patient: bytes | None = None
        self._study: bytes | None = None
        self._series: dict[str, list[bytes]] = {}  # series UID -> [SERIES record, leaves...]

    def __len__(self) -> int:
        return sum(len(records) - 1 for records in self._series.values())

    def add(self, member: Member, file_id: tuple[str, ...], fh: BinaryIO) -> None:
        """Add the instance in ``fh`` (read up to its pixel data, then rewound) under
        ``file_id``."""
        header = _read_header(fh, member)
        # what the index knows stands in for what an unreadable header would have said
        _fill(header, {"SOPClassUID": member.sop_class_uid,
                       "SeriesInstanceUID": member.series_instance_uid})
        if self._patient is None:
            patient = dict(_PATIENT_DEFAULTS)
            if member.patient_id:
                patient["PatientID"] = member.patient_id
            _fill(header, patient)
            self._patient = _record("PATIENT", header, {"PatientID": header.PatientID})
            _fill(header, _STUDY_DEFAULTS)
            self._study = _record("STUDY", header, {"StudyInstanceUID": self.study_uid})
        records = self._series.get(member.series_instance_uid)
        if records is None:
            _fill(header, {**_SERIES_DEFAULTS, "SeriesNumber": len(self._series) + 1})
            records = self._series[member.series_instance_uid] = [_record(
                "SERIES", header, {"SeriesInstanceUID": member.series_instance_uid})]
        _fill(header, {"InstanceNumber": len(records)})
        meta = getattr(header, "file_meta", None) or FileMetaDataset()
        records.append(_record(_leaf_record_type(header), header, {
            "ReferencedFileID": list(file_id),
            "ReferencedSOPClassUIDInFile":
                meta.get("MediaStorageSOPClassUID") or member.sop_class_uid,
            "ReferencedSOPInstanceUIDInFile":
                meta.get("MediaStorageSOPInstanceUID") or member.sop_instance_uid,
            "ReferencedTransferSyntaxUIDInFile":
                meta.get("TransferSyntaxUID") or member.transfer_syntax_uid,
        }))

    def _head(self, first: int) -> bytes:
        """Preamble, file meta (PS3.10 7.1) and the elements before the record sequence."""
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
        ds.file_meta.MediaStorageSOPInstanceUID = self.fileset_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        ds.FileSetID = ""
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = first
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = first
        ds.FileSetConsistencyFlag = 0
        fp = DicomBytesIO()
        dcmwrite(fp, ds, enforce_file_format=True)
        return fp.getvalue()

    def encode(self) -> Iterator[bytes]:
        """The DICOMDIR file in pieces. Records are in depth-first order (PATIENT, STUDY,
        then each SERIES followed by its instances); each offset is the position of the
        referenced record's item tag from the start of the file (PS3.3 F.3.2.2)."""
        if self._patient is None or self._study is None:
            raise ValueError("a DICOMDIR needs at least one instance")
        records = [self._patient, self._study]
        links: list[tuple[int | None, int | None]] = [(None, 1), (None, 2)]  # (next, lower)
        series = list(self._series.values())
        for k, (series_record, *leaves) in enumerate(series):
            at = len(records)
            following = at + len(leaves) + 1 if k + 1 < len(series) else None
            records.append(series_record)
            links.append((following, at + 1))
            for j, leaf in enumerate(leaves):
                records.append(leaf)
                links.append((at + 2 + j if j + 1 < len(leaves) else None, None))
        head = self._head(0)
        positions, position = [], len(head) + len(_RECORD_SEQUENCE)
        for record in records:
            positions.append(position)
            position += 8 + len(record)
        head = self._head(positions[0])  # the root entity is the one PATIENT record
        if len(head) + len(_RECORD_SEQUENCE) != positions[0]:
            raise RuntimeError("DICOMDIR header changed length")
        yield head + _RECORD_SEQUENCE
        for record, (following, lower) in zip(records, links, strict=True):
            patched = bytearray(record)
            if following is not None:
                patched[_NEXT_AT:_NEXT_AT + 4] = struct.pack("<I", positions[following])
            if lower is not None:
                patched[_LOWER_AT:_LOWER_AT + 4] = struct.pack("<I", positions[lower])
            yield _ITEM + struct.pack("<I", len(patched)) + bytes(patched)
        yield _SEQUENCE_END


def _read_header(fh: BinaryIO, member: Member) -> Dataset:
    """The instance's attributes up to its pixel data (values over 64 KiB left unread);
    ``fh`` is rewound. An unreadable header gives an empty data set (logged)."""
    try:
        return pydicom.dcmread(fh, stop_before_pixels=True, defer_size=DEFER_SIZE)
    except Exception as exc:  # pydicom signals bad input with many exception types
        log.warning("archive DICOMDIR: header of %s unreadable: %s", member.sop_instance_uid,
                    exc)
        return Dataset()
    finally:
        fh.seek(0)


# -- the ZIP stream -------------------------------------------------------------------------

class _Spool:
    """Where :class:`zipfile.ZipFile` writes: it keeps the bytes until the generator takes
    them. Without ``seek`` zipfile treats it as a stream and puts each entry's CRC and sizes
    in a data descriptor after the entry's bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._held = 0
        self._offset = 0

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))  # zipfile passes bytes: no copy
        self._held += len(data)
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self, at_least: int) -> bytes:
        """What was written since the last take, once it is ``at_least`` bytes long (so
        small files go out together); ``b""`` before."""
        if self._held < at_least or not self._parts:
            return b""
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts, self._held = [], 0
        return data


def _dos_time(seconds: float) -> tuple[int, int, int, int, int, int]:
    """A ZIP entry's local date and time (the format holds 1980-2107)."""
    t = time.localtime(min(max(seconds, 315_532_800), 4_354_819_199))
    return (max(1980, min(t.tm_year, 2107)), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
            t.tm_sec)


def _entry(name: str, size: int, mtime: float) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_dos_time(mtime))
    info.compress_type = zipfile.ZIP_STORED
    # Known up front, so zipfile writes a ZIP64 local header when the size needs it: it
    # cannot rewrite the header of a stream afterwards.
    info.file_size = size
    info.external_attr = 0o644 << 16
    return info


def _open_member(archive: Archive, member: Member) -> BinaryIO | None:
    """The member's stored file; the current one if it was replaced since the listing;
    ``None`` if it was deleted since."""
    try:
        return archive.store.open(member.storage_key)
    except FileNotFoundError:
        pass
    try:
        return archive.open_instance(member.sop_instance_uid)
    except (KeyError, FileNotFoundError):
        log.warning("archive: instance %s deleted while the archive was sent, left out",
                    member.sop_instance_uid)
        return None


def zip_stream(archive: Archive, members: list[Member], names: list[str],
               dicomdir: DicomDir | None = None,
               file_ids: list[tuple[str, ...]] | None = None) -> Iterator[bytes]:
    """The ZIP of ``members`` under ``names``, in chunks of about :data:`CHUNK` bytes;
    with ``dicomdir`` (and the ``file_ids`` behind ``names``), each instance is added to it
    as it streams and the DICOMDIR is the last entry."""
    spool = _Spool()
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for n, (member, name) in enumerate(zip(members, names, strict=True)):
            fh = _open_member(archive, member)
            if fh is None:
                continue
            with fh:
                stat = os.fstat(fh.fileno())
                if dicomdir is not None and file_ids is not None:
                    dicomdir.add(member, file_ids[n], fh)
                with zf.open(_entry(name, stat.st_size, stat.st_mtime), "w") as out:
                    while chunk := fh.read(CHUNK):
                        out.write(chunk)
                        if data := spool.take(CHUNK):
                            yield data
        if dicomdir is not None and len(dicomdir):
            pieces = list(dicomdir.encode())
            with zf.open(_entry(DICOMDIR, sum(map(len, pieces)), time.time()), "w") as out:
                for piece in pieces:
                    out.write(piece)
                    if data := spool.take(CHUNK):
                        yield data
    if data := spool.take(0):
        yield data


@router.get("/api/studies/{study_uid}/archive", summary="Download a study as a ZIP archive",
            response_class=StreamingResponse,
            responses={200: {"content": {ZIP: {}}, "description": "The study's ZIP archive"},
                       404: {"description": "No such study"}})
def study_archive(request: Request, study_uid: str,
                  dicomdir: Annotated[bool, Query(
                      description="Make the ZIP a DICOM File-set with a DICOMDIR (PS3.10 "
                      "section 8, PS3.3 Annex F)")] = False) -> StreamingResponse:
    """The study's stored files, streamed as a ZIP archive (no compression, ZIP64 when
    needed): in readable folders, or as a DICOM File-set with a DICOMDIR."""
    archive: Archive = request.app.state.archive
    members = study_members(archive, study_uid)
    if dicomdir:
        ids = fileset_ids(members)
        body = zip_stream(archive, members, ["/".join(i) for i in ids], DicomDir(study_uid),
                          ids)
    else:
        body = zip_stream(archive, members, readable_names(study_uid, members))
    filename = f"study-{safe_component(study_uid) or 'archive'}.zip"
    return StreamingResponse(body, media_type=ZIP, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
