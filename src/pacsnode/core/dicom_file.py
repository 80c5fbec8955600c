"""Reading a DICOM file's header without its bulk data, and encoding pacsnode's own file meta
information (PS3.10 7.1) to put in front of a data set kept byte for byte as received."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import pacsnode
from pacsnode.core import fast_header

# Root under which pacsnode's Implementation Class UID lives (a UUID-derived 2.25 UID, PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.178204562209843870934620957462170891841"
IMPLEMENTATION_VERSION_NAME = f"PACSNODE_{pacsnode.__version__}"[:16]

DEFER_SIZE = 64 * 1024  # values larger than this are not read while indexing
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


class InvalidDicom(ValueError):
    """The bytes are not a DICOM data set pacsnode can store (the message says why)."""


@dataclass(frozen=True)
class ParsedHeader:
    """A data set's header and where its encoded bytes start in the source."""

    dataset: Dataset
    transfer_syntax: str
    data_offset: int


class _StopAtPixels:
    """read_partial's stop condition, remembering the pixel data element it stopped at."""

    def __init__(self) -> None:
        self.found: tuple[int, str | None, int] | None = None

    def __call__(self, tag: object, vr: str | None, length: int) -> bool:
        if int(tag) in PIXEL_TAGS:  # type: ignore[call-overload]
            self.found = (int(tag), vr, length)  # type: ignore[call-overload]
            return True
        return False


def _add_pixel_placeholder(ds: Dataset, found: tuple[int, str | None, int], pos: int) -> None:
    """Put the pixel data element that starts at ``pos`` in the header as a deferred value
    (not read), so the index lists it as bulk data."""
    tag, vr, length = found
    implicit, little = ds.original_encoding
    ds[tag] = RawDataElement(BaseTag(tag), vr, length,
                             b"" if length == 0 else None, pos + (8 if implicit else 12),
                             bool(implicit), little is not False)


def _transfer_syntax_of(ds: pydicom.FileDataset) -> str:
    ts = ds.file_meta.get("TransferSyntaxUID") if ds.file_meta is not None else None
    if ts:
        return str(ts).strip("\x00 ")
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _data_offset(fp: BinaryIO) -> int:
    """Where the data set begins: after the preamble and the file meta group, if present."""
    fp.seek(0)
    head = fp.read(132)
    pos = 132 if len(head) == 132 and head[128:132] == b"DICM" else 0
    fp.seek(pos)
    while True:
        elem = fp.read(8)
        if len(elem) < 8:
            break
        group = struct.unpack("<H", elem[:2])[0]
        if group != 0x0002:
            break
        vr = elem[4:6]
        if vr in _LONG_VRS:
            length = struct.unpack("<I", fp.read(4))[0]
            pos += 12 + length
        elif vr.isalpha() and vr.isupper():
            pos += 8 + struct.unpack("<H", elem[6:8])[0]
        else:  # implicit VR file meta (non-conformant but seen in the wild)
            pos += 8 + struct.unpack("<I", elem[4:8])[0]
        fp.seek(pos)
    return pos


_META_UIDS = (0x00020002, 0x00020003, 0x00020010)


def meta_uids(meta: bytes) -> tuple[str, str, str] | None:
    """(Media Storage SOP Class UID, Media Storage SOP Instance UID, Transfer Syntax UID) of
    a Part-10 file's beginning ``meta`` (preamble, "DICM", the whole file meta group in
    explicit VR little endian, PS3.10 7.1), read directly; None when ``meta`` is not laid
    out that way or lacks one of them (the caller then asks pydicom)."""
    found: dict[int, str] = {}
    pos, end = 132, len(meta)
    if meta[128:132] != b"DICM":
        return None
    while pos + 8 <= end:
        group, element = struct.unpack_from("<HH", meta, pos)
        if group != 0x0002:
            break
        vr = meta[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > end:
                return None
            length = struct.unpack_from("<I", meta, pos + 8)[0]
            start = pos + 12
        elif vr.isalpha() and vr.isupper():
            length = struct.unpack_from("<H", meta, pos + 6)[0]
            start = pos + 8
        else:
            return None
        tag = group << 16 | element
        if tag in _META_UIDS:
            if vr != b"UI" or start + length > end:
                return None
            found[tag] = meta[start:start + length].decode("ascii", "replace").strip("\x00 ")
        pos = start + length
    if len(found) != len(_META_UIDS) or not all(found.values()):
        return None
    return found[0x00020002], found[0x00020003], found[0x00020010]


def read_header(fp: BinaryIO) -> ParsedHeader:
    """Parse the header of the DICOM file in ``fp`` (seekable), stopping before pixel data,
    and check that the pixel data that follows is complete (a truncated file is refused)."""
    try:
        offset = _data_offset(fp)
        fp.seek(0)
        stop_when = _StopAtPixels()
        ds = read_partial(fp, stop_when=stop_when, defer_size=DEFER_SIZE, force=True)
        stop = fp.tell()
    except Exception as exc:  # pydicom signals bad input with many exception types
        raise InvalidDicom(f"not a readable DICOM data set: {exc}") from exc
    if len(ds) == 0:
        raise InvalidDicom("not a DICOM data set: no attributes could be read")
    ts = _transfer_syntax_of(ds)
    if ts != DeflatedExplicitVRLittleEndian:
        _check_values(ds, stop, fp.seek(0, io.SEEK_END))
        implicit, little = ds.original_encoding
        _check_complete(fp, stop, implicit=bool(implicit), little=little is not False)
    if stop_when.found is not None:
        _add_pixel_placeholder(ds, stop_when.found, stop)
    return ParsedHeader(dataset=ds, transfer_syntax=ts, data_offset=offset)


def _explicit_little(transfer_syntax: str) -> bool:
    """Whether data sets in ``transfer_syntax`` are encoded in explicit VR little endian:
    every standard transfer syntax but three (PS3.5 A.1, A.3, A.5)."""
    return (transfer_syntax.startswith("1.2.840.10008.1.2.")
            and transfer_syntax not in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian))


def read_header_at(fp: BinaryIO, data_offset: int) -> ParsedHeader:
    """:func:`read_header` for a file whose data set starts at ``data_offset`` after a file
    meta group in the usual layout (pacsnode's own, as a receiver spools it): in explicit
    VR little endian the header is read by :mod:`pacsnode.core.fast_header`; anything that
    fast path does not handle goes to :func:`read_header`."""
    fp.seek(0)
    uids = meta_uids(fp.read(data_offset))
    if uids is not None and _explicit_little(uids[2]):
        found = fast_header.scan(fp, data_offset, DEFER_SIZE)
        if found is not None and len(found.dataset):
            _check_complete(fp, found.stop, implicit=False, little=True)
            if found.pixel is not None:
                _add_pixel_placeholder(found.dataset, found.pixel, found.stop)
            return ParsedHeader(dataset=found.dataset, transfer_syntax=uids[2],
                                data_offset=data_offset)
    return read_header(fp)


def _check_values(ds: Dataset, stop: int, end: int) -> None:
    """Refuse a file that ends inside an element read before the pixel data (pydicom
    silently returns a short value, skips a deferred one past the end, and stops without a
    word on a partial element header)."""
    if stop > end:  # pydicom skipped a deferred value past the end
        raise InvalidDicom("truncated: an element runs past the end of the file")
    last_end: int | None = None
    for tag in ds.keys():  # noqa: SIM118 - get_item must not convert the raw elements
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.length == 0xFFFFFFFF:
            last_end = None  # where an undefined length value ends is not known here
            continue
        last_end = raw.value_tell + raw.length
        if last_end > end:
            raise InvalidDicom(f"truncated: ({tag >> 16:04X},{tag & 0xFFFF:04X}) announces "
                               f"{raw.length} bytes, {max(0, end - raw.value_tell)} remain "
                               "in the file")
    if stop >= end and last_end is not None and last_end < end:
        raise InvalidDicom(f"truncated: the file ends with {end - last_end} bytes of a "
                           "partial element header")


def _check_complete(fp: BinaryIO, pos: int, *, implicit: bool, little: bool) -> None:
    """Walk the top-level elements from ``pos`` (pixel data onwards) without reading their
    values, refusing a file that ends before an element's announced length."""
    end = fp.seek(0, io.SEEK_END)
    order = "<" if little else ">"
    while pos < end:
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            raise InvalidDicom("truncated: file ends inside an element header")
        group, element = struct.unpack(order + "HH", head[:4])
        if implicit:
            length = struct.unpack(order + "I", head[4:8])[0]
            pos += 8
        elif head[4:6] in _LONG_VRS:
            more = fp.read(4)
            if len(more) < 4:
                raise InvalidDicom("truncated: file ends inside an element header")
            length = struct.unpack(order + "I", more)[0]
            pos += 12
        else:
            length = struct.unpack(order + "H", head[6:8])[0]
            pos += 8
        if length == 0xFFFFFFFF:
            if (group << 16 | element) not in PIXEL_TAGS:
                return  # an undefined-length sequence after pixel data: not walked
            pos = _skip_fragments(fp, pos, end, order)
            continue
        if pos + length > end:
            tag = f"({group:04X},{element:04X})"
            raise InvalidDicom(f"truncated: {tag} announces {length} bytes, "
                               f"{end - pos} remain in the file")
        pos += length


def _skip_fragments(fp: BinaryIO, pos: int, end: int, order: str) -> int:
    """Skip encapsulated pixel data items up to and including the sequence delimiter."""
    while True:
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            raise InvalidDicom("truncated: encapsulated pixel data has no sequence delimiter")
        group, element, length = struct.unpack(order + "HHI", head)
        pos += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            return pos
        if (group, element) != (0xFFFE, 0xE000):
            raise InvalidDicom("encapsulated pixel data holds a non-item element")
        if pos + length > end:
            raise InvalidDicom("truncated: a pixel data fragment runs past the end of the file")
        pos += length


def _meta_element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of the file meta group (PS3.10 7.1)."""
    if len(value) % 2:
        value += b"\x00" if vr in (b"UI", b"OB") else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr == b"OB":
        return head + struct.pack("<HI", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def file_header(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    source_aet: str,
    sending_aet: str = "",
) -> bytes:
    """The 128-byte preamble, 'DICM' and pacsnode's file meta information group for a stored
    instance (PS3.10 7.1), encoded directly: it is written once per received instance."""
    elements = [
        _meta_element(0x00020001, b"OB", b"\x00\x01"),
        _meta_element(0x00020002, b"UI", sop_class_uid.encode("ascii")),
        _meta_element(0x00020003, b"UI", sop_instance_uid.encode("ascii")),
        _meta_element(0x00020010, b"UI", transfer_syntax.encode("ascii")),
        _meta_element(0x00020012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
        _meta_element(0x00020013, b"SH", IMPLEMENTATION_VERSION_NAME.encode("ascii")),
        _meta_element(0x00020016, b"AE", source_aet.encode("ascii", "replace")),
    ]
    if sending_aet:
        elements.append(_meta_element(0x00020017, b"AE", sending_aet.encode("ascii", "replace")))
        elements.append(_meta_element(0x00020018, b"AE", source_aet.encode("ascii", "replace")))
    body = b"".join(elements)
    group_length = _meta_element(0x00020000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * 128 + b"DICM" + group_length + body
