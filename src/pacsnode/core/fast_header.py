"""A fast path for reading the header of a data set encoded in explicit VR little endian, the
encoding of nearly everything a modality sends (PS3.5 A.2 and every encapsulated transfer
syntax, A.4), for the ingest of a received instance.

It does what pydicom's ``data_element_generator`` does for such a data set — one
:class:`~pydicom.dataelem.RawDataElement` per top-level element, values read from one
buffer, large values deferred, stopping before the pixel data — without a ``read()`` and a
``struct`` call per element. It gives up (returns ``None``, and the caller asks pydicom)
on anything it does not handle exactly as pydicom would: an undefined length before the
pixel data, a VR that is not a standard one, a file meta element inside the data set, a
value running past the end of the file. ``tests/unit/test_fast_header.py`` checks that
what it returns equals what pydicom reads, file by file.
"""

from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import empty_value_for_VR

READ_SIZE = 16 * 1024
_VRS_32 = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
_VRS_16 = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                     b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                     b"US"})
_HEAD = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<I")
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_CHARSET = 0x00080005


class Header:
    """What the scan found: the data set (raw elements), where it stopped, and the pixel
    data element it stopped at, if any (tag, VR, length)."""

    __slots__ = ("dataset", "pixel", "stop")

    def __init__(self, dataset: Dataset, stop: int,
                 pixel: tuple[int, str, int] | None) -> None:
        self.dataset = dataset
        self.stop = stop
        self.pixel = pixel


def scan(fp: BinaryIO, data_offset: int, defer_size: int) -> Header | None:
    """Read the top-level elements of the explicit VR little endian data set starting at
    ``data_offset`` in ``fp``, up to the pixel data or the end; ``None`` if pydicom should
    read it instead (see the module documentation)."""
    end = os.fstat(fp.fileno()).st_size
    fp.seek(data_offset)
    buf = fp.read(READ_SIZE)
    base = data_offset  # file position of buf[0]
    pos = 0  # position in buf
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    pixel: tuple[int, str, int] | None = None
    while base + pos < end:
        if pos + 12 > len(buf):
            buf, base, pos = _refill(fp, buf, base, pos, 12)
            if pos + 8 > len(buf):
                return None  # a partial element header at the end: let pydicom judge
        group, element, vr_bytes, length = _HEAD.unpack_from(buf, pos)
        if vr_bytes in _VRS_32:
            if pos + 12 > len(buf):
                return None
            length = _LONG_LENGTH.unpack_from(buf, pos + 8)[0]
            head = 12
        elif vr_bytes in _VRS_16:
            head = 8
        else:
            return None
        tag = group << 16 | element
        if group == 0x0002 or group == 0xFFFE or length == 0xFFFFFFFF:
            return None
        vr = vr_bytes.decode("ascii")
        if tag in _PIXEL_TAGS:
            pixel = (tag, vr, length)
            break
        value_tell = base + pos + head
        if value_tell + length > end:
            return None
        value: Any
        if length > defer_size and tag != _CHARSET:
            value = None
            pos += head + length
        elif length == 0:
            value = empty_value_for_VR(vr, raw=True)
            pos += head
        else:
            if pos + head + length > len(buf):
                buf, base, pos = _refill(fp, buf, base, pos, head + length)
            start = pos + head
            value = buf[start:start + length]
            pos = start + length
        elements[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, length, value, value_tell,
                                                False, True)
    ds = Dataset(elements)
    charset = elements.get(BaseTag(_CHARSET))
    encoding = (convert_encodings(convert_raw_data_element(charset).value)  # type: ignore[arg-type]
                if charset is not None else default_encoding)  # as pydicom's read_dataset
    ds.set_original_encoding(False, True, encoding)
    return Header(ds, base + pos, pixel)


def _refill(fp: BinaryIO, buf: bytes, base: int, pos: int,
            need: int) -> tuple[bytes, int, int]:
    """The buffer from file position ``base + pos`` on, with at least ``need`` bytes where
    the file has them."""
    fp.seek(base + pos)
    fresh = fp.read(max(READ_SIZE, need))
    return fresh, base + pos, 0
