"""Encoding a C-FIND response Identifier straight from DICOM JSON (PS3.5 7.1, PS3.18 F.2).

Building a pydicom Dataset from JSON and letting pynetdicom encode it cost about a
millisecond per response — most of a query's time once it matches more than a few
instances. Response identifiers are simple (text, person names, UIDs, numbers, sequences
of those: the Scheduled Procedure Step Sequence of a worklist answer), so they are written
here directly in the presentation context's little endian transfer syntax, implicit or
explicit VR; sequences and their items with defined lengths, as pydicom writes them (PS3.5
7.5). Anything unusual (binary or unknown VR, big endian) returns None and the caller falls
back to pydicom.

Text is encoded in the response's Specific Character Set: single-byte sets and UTF-8 with
Python's codecs; ISO 2022 code extensions with pydicom's ``encode_string`` (escape
sequences). Values are padded to even length: UI with NUL, the others with a space (PS3.5
6.2).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pydicom.charset import convert_encodings, encode_string

_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                       "ST", "TM", "UC", "UI", "UR", "UT"})
_LONG_VRS = frozenset({"SQ", "UC", "UR", "UT"})  # 4-byte length in explicit VR (PS3.5 7.1.2)
_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) Item
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})
_BINARY = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d"}


def _text(value: Any) -> str:
    if isinstance(value, dict):  # PN (PS3.18 F.2.2)
        groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _encode_text(text: str, vr: str, encodings: Sequence[str]) -> bytes:
    if vr in _ASCII_VRS or text.isascii():
        return text.encode("ascii")
    if len(encodings) == 1:
        return text.encode(encodings[0])
    return encode_string(text, list(encodings))


def _value_bytes(vr: str, values: list[Any], encodings: Sequence[str]) -> bytes | None:
    if vr in _TEXT_VRS:
        if vr == "PN":
            parts = [_encode_pn(v, encodings) for v in values]
        else:
            parts = [_encode_text(_text(v), vr, encodings) for v in values]
        data = b"\\".join(parts)
        if len(data) % 2:
            data += b"\x00" if vr == "UI" else b" "
        return data
    fmt = _BINARY.get(vr)
    if fmt is None:
        return None
    return b"".join(struct.pack(fmt, v) for v in values)


def _encode_pn(value: Any, encodings: Sequence[str]) -> bytes:
    if not isinstance(value, dict):
        return _encode_text(_text(value), "PN", encodings)
    groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
    while groups and not groups[-1]:
        groups.pop()
    # each component group starts in the default repertoire (PS3.5 6.1.2.5.3)
    return b"=".join(_encode_text(g, "PN", encodings) for g in groups)


def _sequence_bytes(items: list[Any], charset: Sequence[str], implicit: bool
                    ) -> bytes | None:
    """A sequence's value: each item with its defined length (PS3.5 7.5.1), encoded in the
    data set's character set."""
    out = bytearray()
    for item in items:
        if not isinstance(item, dict):
            return None
        data = encode_identifier(item, charset, implicit)
        if data is None:
            return None
        out += _ITEM + struct.pack("<I", len(data)) + data
    return bytes(out)


def encode_identifier(elements: dict[str, Any], charset: Sequence[str],
                      implicit: bool) -> bytes | None:
    """``elements`` (DICOM JSON, keys ``GGGGEEEE``) encoded as a little endian data set,
    with ``charset`` (the Specific Character Set values) already among them if any; None
    if an element needs pydicom."""
    try:
        encodings = list(convert_encodings([c for c in charset] or [""]))
    except Exception:
        return None
    out = bytearray()
    for key in sorted(elements):
        elem = elements[key]
        vr = elem.get("vr", "")
        values = elem.get("Value", [])
        if "BulkDataURI" in elem or "InlineBinary" in elem:
            return None
        try:
            if vr == "SQ":
                data = _sequence_bytes(values, charset, implicit)
            else:
                data = _value_bytes(vr, values, encodings) if values else b""
        except (UnicodeError, struct.error, TypeError, ValueError):
            return None
        if data is None:
            return None
        tag = int(key, 16)
        head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        if implicit:
            out += head + struct.pack("<I", len(data))
        elif vr in _LONG_VRS:
            out += head + vr.encode() + b"\x00\x00" + struct.pack("<I", len(data))
        else:
            if len(data) > 0xFFFF:
                return None
            out += head + vr.encode() + struct.pack("<H", len(data))
        out += data
    return bytes(out)
