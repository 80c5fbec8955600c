"""A data set's attributes as DICOM JSON (PS3.18 F.2), split by level, bulk data left out.

Bulk data (pixel data, large binary values, values pydicom deferred while reading the header)
becomes ``{"vr": VR, "BulkDataURI": "<tag path>"}``, where the tag path (``7FE00010``, or
``00540016/0/00181072`` style inside sequences is not used: only top-level bulk is deferred)
is relative; the web front end turns it into a full URI.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from pacsnode.index.json_fast import raw_element_json
from pacsnode.index.levels import Level, level_of

log = logging.getLogger(__name__)

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
BULK_THRESHOLD = 1024  # bytes; larger binary values are bulk data

JsonDict = dict[str, Any]


def _bulk_ref(tag: int, vr: str) -> JsonDict:
    if " or " in vr:  # implicit VR: such data (pixel, overlay, LUT) is OW (PS3.5 A.1)
        vr = "OW" if "OW" in vr else vr.split(" or ")[0]
    return {"vr": vr, "BulkDataURI": f"{tag:08X}"}


def _nested_bulk_handler(elem: DataElement) -> str:
    return f"{elem.tag:08X}"


def _raw_vr(raw: RawDataElement) -> str:
    if raw.VR:
        return raw.VR
    try:
        return str(dictionary_VR(raw.tag))
    except KeyError:
        return "UN"


def _raw_json(raw: RawDataElement) -> JsonDict | None:
    """DICOM JSON of a raw (not yet converted) element where that needs no pydicom
    conversion: bulk data references and the values :mod:`json_fast` handles."""
    vr = _raw_vr(raw)
    if raw.value is None and raw.length != 0:
        return _bulk_ref(raw.tag, vr)  # not read (deferred, or pixel data): bulk data
    if vr in BULK_VRS and raw.length > BULK_THRESHOLD:
        return _bulk_ref(raw.tag, vr)
    if raw.value is not None:
        return raw_element_json(vr, raw.value, raw.is_little_endian)
    return None


def element_json(ds: Dataset, tag: int) -> JsonDict | None:
    """One top-level element as DICOM JSON, or ``None`` if it cannot be represented."""
    raw = ds.get_item(tag, keep_deferred=True)  # a deferred value is bulk data: not read
    if isinstance(raw, RawDataElement):
        fast = _raw_json(raw)
        if fast is not None:
            return fast
    try:
        elem = ds[tag]
        return elem.to_json_dict(
            bulk_data_element_handler=_nested_bulk_handler, bulk_data_threshold=BULK_THRESHOLD
        )
    except Exception as exc:  # pydicom raises many types on malformed values
        log.warning("attribute (%04X,%04X) not indexed: %s", tag >> 16, tag & 0xFFFF, exc)
        return None


_TAG_INFO: dict[int, tuple[str, Level]] = {}  # tag -> (DICOM JSON key, level), memoised
_TAG_INFO_MAX = 20_000  # bounded: private tags of odd senders must not grow it forever


def _tag_info(tag: int) -> tuple[str, Level]:
    info = _TAG_INFO.get(tag)
    if info is None:
        info = (f"{tag:08X}", level_of(tag))
        if len(_TAG_INFO) < _TAG_INFO_MAX:
            _TAG_INFO[tag] = info
    return info


Stored = Any  # an element as a Dataset stores it: RawDataElement or DataElement
Grouped = dict[Level, list[tuple[int, Stored]]]


def group_levels(ds: Dataset) -> Grouped:
    """Every top-level element of ``ds`` as stored (raw ones unconverted, deferred ones
    unread; file meta, group lengths and item delimiters left out), grouped by the level
    that keeps it."""
    out: Grouped = {level: [] for level in Level}
    for base_tag, stored in list(ds.items()):
        tag = int(base_tag)
        group, elem_no = tag >> 16, tag & 0xFFFF
        if group == 0x0002 or elem_no == 0 or tag == 0xFFFAFFFA or tag == 0xFFFCFFFC:
            continue
        out[_tag_info(tag)[1]].append((tag, stored))
    return out


def level_json(ds: Dataset, elements: list[tuple[int, Stored]]) -> JsonDict:
    """DICOM JSON of ``elements`` (one level's, from :func:`group_levels`) of ``ds``."""
    out: JsonDict = {}
    for tag, stored in elements:
        value = _raw_json(stored) if isinstance(stored, RawDataElement) else None
        if value is None:
            value = element_json(ds, tag)
        if value is not None:
            out[_tag_info(tag)[0]] = value
    return out


def raw_key(elements: list[tuple[int, Stored]]) -> tuple[Any, ...] | None:
    """What the DICOM JSON of ``elements`` depends on, besides the character set and the
    pixel representation (pacsnode.index.records adds those): each element's tag, VR,
    length, encoded value and byte order. ``None`` when an element is not raw (already
    converted by pydicom), so its JSON cannot be told apart by its bytes."""
    key = []
    for _tag, stored in elements:
        if not isinstance(stored, RawDataElement):
            return None
        key.append((stored.tag, stored.VR, stored.length, stored.value,
                    stored.is_implicit_VR, stored.is_little_endian))
    return tuple(key)


def copy_charset(level: JsonDict, image: JsonDict) -> None:
    """Values are decoded to Unicode; the original character set is kept for reference at
    every level, so each level's JSON is self-describing."""
    cs = image.get("00080005")
    if cs is not None:
        level["00080005"] = cs


def split_levels(ds: Dataset) -> dict[Level, JsonDict]:
    """Every top-level attribute of ``ds`` (file meta and group lengths excluded) as DICOM
    JSON, grouped by the level that keeps it."""
    out = {level: level_json(ds, elements) for level, elements in group_levels(ds).items()}
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        copy_charset(out[level], out[Level.IMAGE])
    return out


def dumps(value: JsonDict) -> str:
    """Compact JSON text for the index."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> JsonDict:
    """Parse JSON text from the index."""
    return json.loads(text) if text else {}
