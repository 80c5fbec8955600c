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


def split_levels(ds: Dataset) -> dict[Level, JsonDict]:
    """Every top-level attribute of ``ds`` (file meta and group lengths excluded) as DICOM
    JSON, grouped by the level that keeps it."""
    out: dict[Level, JsonDict] = {level: {} for level in Level}
    charset = ds.get_item(0x00080005)
    # items() gives the elements as stored (raw ones unconverted, deferred ones unread)
    for base_tag, stored in list(ds.items()):
        tag = int(base_tag)
        group, elem_no = tag >> 16, tag & 0xFFFF
        if group == 0x0002 or elem_no == 0 or tag == 0xFFFAFFFA or tag == 0xFFFCFFFC:
            continue
        value = _raw_json(stored) if isinstance(stored, RawDataElement) else None
        if value is None:
            value = element_json(ds, tag)
        if value is not None:
            key, level = _tag_info(tag)
            out[level][key] = value
    if charset is not None:
        # Values are decoded to Unicode; keep the original character set for reference at
        # every level so each level's JSON is self-describing.
        cs = out[Level.IMAGE].get("00080005")
        if cs is not None:
            for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
                out[level]["00080005"] = cs
    return out


def dumps(value: JsonDict) -> str:
    """Compact JSON text for the index."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> JsonDict:
    """Parse JSON text from the index."""
    return json.loads(text) if text else {}
