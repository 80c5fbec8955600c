"""A fast path from raw (still encoded) elements to DICOM JSON (PS3.18 F.2) for the common
cases, used while indexing because pydicom's per-element conversion costs more than all
the rest of an ingest.

Only values whose encoding cannot be ambiguous take this path: plain-ASCII text (identical
in every character set pydicom supports, as long as there is no ISO 2022 escape), PN, IS,
DS, and the fixed-size binary numbers. Everything else (sequences, AT, binary data,
non-ASCII text, malformed numbers) returns ``None`` and the caller uses pydicom.
``tests/unit/test_json_fast.py`` checks the output equals pydicom's on real files.
"""

from __future__ import annotations

import math
import struct
from typing import Any

# Text VRs whose value is split on backslash into multiple values (PS3.5 6.4).
_MULTI_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
# Text VRs that never hold more than one value; only trailing spaces are insignificant.
_SINGLE_TEXT = frozenset({"LT", "ST", "UT", "UR"})
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d",
                   "UV": "Q", "SV": "q"}


def _text_values(raw: bytes, vr: str) -> list[Any] | None:
    if b"\x1b" in raw or not raw.isascii():
        return None  # non-ASCII or ISO 2022 escapes: character set decoding needed
    text = raw.decode("ascii")
    if vr in _SINGLE_TEXT:
        value = text.rstrip(" \x00")
        return [value] if value else []
    parts = text.split("\\")
    values = [p.strip(" \x00") for p in parts]
    if len(values) == 1 and values[0] == "":
        return []
    return [v if v != "" else None for v in values]


def _pn_values(raw: bytes) -> list[Any] | None:
    if b"\x1b" in raw or not raw.isascii():
        return None
    text = raw.decode("ascii").rstrip(" \x00")
    if not text:
        return []
    out: list[Any] = []
    for name in text.split("\\"):
        groups = name.split("=")
        value = {"Alphabetic": groups[0]}
        if len(groups) > 1:
            value["Ideographic"] = groups[1]
        if len(groups) > 2:
            value["Phonetic"] = groups[2]
        out.append(value)
    return out


def _number_strings(raw: bytes, vr: str) -> list[Any] | None:
    if not raw.isascii():
        return None
    text = raw.decode("ascii").strip(" \x00")
    if not text:
        return []
    out: list[Any] = []
    for part in text.split("\\"):
        part = part.strip(" \x00")
        if not part:
            return None  # empty value inside a multi-value: leave to pydicom
        try:
            if vr == "IS":
                number: float | int = int(part)
            else:
                number = float(part)
                if not math.isfinite(number):
                    return None
        except ValueError:
            return None
        out.append(number)
    return out


def _binary_numbers(raw: bytes, vr: str, little: bool) -> list[Any] | None:
    code = _BINARY_NUMBERS[vr]
    size = struct.calcsize(code)
    if len(raw) % size:
        return None
    count = len(raw) // size
    values = list(struct.unpack(("<" if little else ">") + code * count, raw))
    if vr in ("FL", "FD") and not all(math.isfinite(v) for v in values):
        return None
    return values


def raw_element_json(vr: str, raw: bytes, little_endian: bool) -> dict[str, Any] | None:
    """DICOM JSON of one raw element value, or ``None`` to let pydicom convert it."""
    values: list[Any] | None
    if vr in _MULTI_TEXT or vr in _SINGLE_TEXT:
        values = _text_values(raw, vr)
    elif vr == "PN":
        values = _pn_values(raw)
    elif vr in ("IS", "DS"):
        values = _number_strings(raw, vr)
    elif vr in _BINARY_NUMBERS:
        values = _binary_numbers(raw, vr, little_endian)
    else:
        return None
    if values is None:
        return None
    if not values:
        return {"vr": vr}
    return {"vr": vr, "Value": values}
