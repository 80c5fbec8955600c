"""DIMSE command sets encoded directly to bytes, for the messages pacsnode sends by the
thousand: the C-STORE requests of a retrieve and the C-MOVE/C-GET responses.

pynetdicom builds each command set as a pydicom ``Dataset`` and encodes it with pydicom,
about half a millisecond per message: as much as the rest of a C-STORE sub-operation. A
command set is small and fixed (PS3.7 E.1: group 0000, Implicit VR Little Endian, the
Command Group Length first), so it is written here element by element.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, _MESSAGE_TYPES

# PS3.7 E.1 command fields
C_STORE_RQ = 0x0001
C_GET_RSP = 0x8010
C_MOVE_RSP = 0x8021

NO_DATA_SET = 0x0101  # (0000,0800) Command Data Set Type: no data set (PS3.7 E.1)
DATA_SET_PRESENT = 0x0001  # any other value; pynetdicom and DCMTK send 0001H

_US = struct.Struct("<HHIH")
_UL = struct.Struct("<HHII")
_HEADER = struct.Struct("<HHI")


def _text(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")  # the default repertoire (PS3.7 6.3.1)
    return raw + pad if len(raw) % 2 else raw


def _uid(element: int, value: str) -> bytes:
    raw = _text(value, b"\0")  # PS3.5 6.2: UI is padded with NULL
    return _HEADER.pack(0, element, len(raw)) + raw


def _string(element: int, value: str) -> bytes:
    raw = _text(value, b" ")
    return _HEADER.pack(0, element, len(raw)) + raw


def _us(element: int, value: int) -> bytes:
    return _US.pack(0, element, 2, value)


def _finish(body: bytes) -> bytes:
    """``body`` (the elements in ascending tag order) with the Command Group Length."""
    return _UL.pack(0, 0x0000, 4, len(body)) + body


def c_store_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str, priority: int,
               originator_aet: str | None = None, originator_id: int | None = None) -> bytes:
    """A C-STORE-RQ command set (PS3.7 9.3.1.1) with a data set following."""
    parts = [_uid(0x0002, sop_class_uid), _us(0x0100, C_STORE_RQ), _us(0x0110, message_id),
             _us(0x0700, priority), _us(0x0800, DATA_SET_PRESENT),
             _uid(0x1000, sop_instance_uid)]
    if originator_aet:
        parts.append(_string(0x1030, originator_aet))
    if originator_id is not None:
        parts.append(_us(0x1031, originator_id))
    return _finish(b"".join(parts))


def retrieve_rsp(command_field: int, responding_to: int, sop_class_uid: str | None,
                 status: int, *, data_set: bool = False, remaining: int | None = None,
                 completed: int | None = None, failed: int | None = None,
                 warning: int | None = None, error_comment: str | None = None) -> bytes:
    """A C-MOVE-RSP or C-GET-RSP command set (PS3.7 9.3.4.2, 9.3.3.2)."""
    parts = []
    if sop_class_uid:
        parts.append(_uid(0x0002, sop_class_uid))
    parts += [_us(0x0100, command_field), _us(0x0120, responding_to),
              _us(0x0800, DATA_SET_PRESENT if data_set else NO_DATA_SET),
              _us(0x0900, status)]
    if error_comment:
        parts.append(_string(0x0902, error_comment[:64]))
    for element, value in ((0x1020, remaining), (0x1021, completed), (0x1022, failed),
                           (0x1023, warning)):
        if value is not None:
            parts.append(_us(element, value))
    return _finish(b"".join(parts))


# -- any C-service message, from its pynetdicom primitive ----------------------------------

_PACKERS = {"US": struct.Struct("<H"), "UL": struct.Struct("<I")}
_STRING_PAD = {"UI": b"\0", "AE": b" ", "LO": b" ", "SH": b" ", "CS": b" "}


def _template(keywords: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(keyword, element number, VR) of a message's command set in tag order, without the
    Command Group Length."""
    out = [(kw, tag_for_keyword(kw) or 0, dictionary_VR(tag_for_keyword(kw) or 0))
           for kw in keywords if kw != "CommandGroupLength"]
    return sorted(out, key=lambda item: item[1])


# message name (pynetdicom's, e.g. "C-FIND-RSP") → (command field, template)
_TEMPLATES = {name: (field, _template(_COMMAND_SET_KEYWORDS[name]))
              for field, (name, _) in _MESSAGE_TYPES.items()
              if name.startswith("C-") and name in _COMMAND_SET_KEYWORDS}


def _element(element: int, vr: str, value: Any) -> bytes | None:
    packer = _PACKERS.get(vr)
    if packer is not None:
        return _HEADER.pack(0, element, packer.size) + packer.pack(int(value))
    pad = _STRING_PAD.get(vr)
    if pad is not None and isinstance(value, str):
        raw = _text(value, pad)
        return _HEADER.pack(0, element, len(raw)) + raw
    return None  # AT, multi-valued or other: left to pynetdicom


def message_name(primitive: Any) -> str:
    """pynetdicom's message class name of a C-service primitive, e.g. ``C_FIND_RSP``
    (C-CANCEL, which carries a Message ID Being Responded To, is a request)."""
    kind = type(primitive).__name__
    is_response = kind != "C_CANCEL" and \
        getattr(primitive, "MessageIDBeingRespondedTo", None) is not None
    return f"{kind}_{'RSP' if is_response else 'RQ'}"


def of_primitive(primitive: Any, has_data_set: bool) -> bytes | None:
    """The command set pynetdicom would encode for a C-service ``primitive`` (PS3.7 9.3:
    every parameter that is set, Command Data Set Type 0001H when a data set follows),
    or None for a message this module does not encode."""
    name = message_name(primitive).replace("_", "-")
    spec = _TEMPLATES.get(name)
    if spec is None:
        return None
    field, template = spec
    parts = []
    for keyword, tag, vr in template:
        if keyword == "CommandField":
            value: Any = field
        elif keyword == "CommandDataSetType":
            value = DATA_SET_PRESENT if has_data_set else NO_DATA_SET
        else:
            value = getattr(primitive, keyword, None)
            if value is None:
                continue
        encoded = _element(tag & 0xFFFF, vr, value)
        if encoded is None:
            return None
        parts.append(encoded)
    return _finish(b"".join(parts))
