"""HL7 v2 order segments → one Modality Worklist item (DICOM JSON), following IHE RAD TF-2
Appendix B "HL7 Order Mapping to DICOM MWL" (Tables B-1 for ORM^O01 v2.3.1 and the OMI^O23
v2.5.1 mapping with the IPC segment) and PS3.4 Table K.6-1. No database, no network.

What each field becomes (conformance statement §6e):

==================  =====================================================================
PID-3.1 / PID-3.4   Patient ID (0010,0020) / Issuer of Patient ID (0010,0021) (first
                    repetition; PID-3.1 required)
PID-5               Patient's Name (0010,0010): XPN family^given^middle^suffix^prefix →
                    PN family^given^middle^prefix^suffix (required)
PID-7 / PID-8       Patient's Birth Date (0010,0030) / Patient's Sex (0010,0040) (M, F, O;
                    U and other values: left empty)
PV1-8 / ORC-12      Referring Physician's Name (0008,0090) (PV1-8, else ORC-12);
                    ORC-12 also Requesting Physician (0032,1032)
PV1-19              Admission ID (0038,0010)
ORC-2 / ORC-3       Placer (0040,2016) / Filler Order Number (0040,2017) of the Imaging
                    Service Request (their first component; OBR-2 / OBR-3 when empty)
OBR-4               Requested Procedure Code Sequence (0032,1064) from components 1-3,
                    Requested Procedure Description (0032,1060) and Scheduled Procedure
                    Step Description (0040,0007) from component 2 (else 1); components
                    4-6, when given, the Scheduled Protocol Code Sequence (0040,0008)
TQ1-7 / ORC-7.4 /   Scheduled Procedure Step Start Date and Time (0040,0002/0003), the
OBR-27.4            first present in this order (required)
TQ1-9 / ORC-7.6     Requested Procedure Priority (0040,1003): S → STAT, A → HIGH,
                    R → ROUTINE
OBR-18 / IPC-1      Accession Number (0008,0050)
OBR-19 / IPC-2      Requested Procedure ID (0040,1001)
ZDS-1 / IPC-3       Study Instance UID (0020,000D)
OBR-20 / IPC-4      Scheduled Procedure Step ID (0040,0009)
OBR-24 / IPC-5      Modality (0008,0060) (required)
IPC-6               Scheduled Protocol Code Sequence (0040,0008)
IPC-7 / IPC-8       Scheduled Station Name (0040,0010) / SPS Location (0040,0011)
OBR-21 / IPC-9      Scheduled Station AE Title (0040,0001); when absent the
                    ``hl7_station_aet`` setting, or when that is empty the Modality
OBR-31              Reason for the Requested Procedure (0040,1002) (text, else code)
==================  =====================================================================

An IPC value, when present, wins over the OBR one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pacsnode.hl7.messages import DATA_TYPE_ERROR, REQUIRED_FIELD_MISSING, Segment

JsonDict = dict[str, Any]
PRIORITIES = {"S": "STAT", "A": "HIGH", "R": "ROUTINE"}


class MappingError(ValueError):
    """A field the item needs is missing or bad: HL7 Table 0357 ``code``, ``location``."""

    def __init__(self, message: str, code: str, location: str) -> None:
        super().__init__(message)
        self.code = code
        self.location = location


def _put(attrs: JsonDict, tag: int, vr: str, value: Any) -> None:
    if value:
        attrs[f"{tag:08X}"] = {"vr": vr, "Value": [value]}


def person_name(parts: list[str]) -> str:
    """HL7 XPN components (family, given, middle, suffix, prefix, …) → DICOM PN
    (family^given^middle^prefix^suffix, PS3.5 6.2.1)."""
    parts = [*parts, "", "", "", "", ""][:5]
    family, given, middle, suffix, prefix = parts
    return "^".join([family, given, middle, prefix, suffix]).rstrip("^")


def _xpn(seg: Segment | None, n: int) -> str:
    if seg is None:
        return ""
    return person_name(seg.components(n))


def _xcn(seg: Segment | None, n: int) -> str:
    """An XCN (ID^family^given^middle^suffix^prefix…) as a PN."""
    if seg is None:
        return ""
    return person_name(seg.components(n)[1:])


def hl7_date(value: str, location: str) -> str:
    """YYYYMMDD from an HL7 DTM/TS (YYYYMMDD[HH…]); :class:`MappingError` otherwise."""
    digits = value.split("+")[0].split("-")[0]
    try:
        if len(digits) < 8 or not digits[:8].isdigit():
            raise ValueError(value)
        dt.datetime.strptime(digits[:8], "%Y%m%d")
    except ValueError:
        raise MappingError(f"{location} must be a date YYYYMMDD[HHMM[SS]], not {value!r}",
                           DATA_TYPE_ERROR, location) from None
    return digits[:8]


def hl7_time(value: str, location: str) -> str:
    """HHMMSS from an HL7 DTM (YYYYMMDDHH[MM[SS[.S]]]), '' when it has no hour."""
    digits = value.split("+")[0].split("-")[0].split(".")[0][8:]
    if not digits:
        return ""
    if not (digits.isdigit() and len(digits) in (2, 4, 6)) or int(digits[:2]) > 23 \
            or int(digits[2:4] or 0) > 59 or int(digits[4:6] or 0) > 59:
        raise MappingError(f"{location} has a bad time {value!r}", DATA_TYPE_ERROR,
                           location)
    return digits.ljust(6, "0")


def _code(seg: Segment, n: int, first: int = 1) -> JsonDict | None:
    """A Code Sequence item from CE/CWE components first..first+2 (code, text, scheme)."""
    value, meaning, scheme = (seg.get(n, first), seg.get(n, first + 1),
                              seg.get(n, first + 2))
    if not (value and scheme):
        return None
    item: JsonDict = {}
    _put(item, 0x00080100, "SH", value)
    _put(item, 0x00080102, "SH", scheme)
    _put(item, 0x00080104, "LO", meaning)
    return item


def _start(orc: Segment, obr: Segment, tq1: Segment | None) -> tuple[str, str]:
    for seg, n, component, location in ((tq1, 7, 1, "TQ1-7"), (orc, 7, 4, "ORC-7.4"),
                                        (obr, 27, 4, "OBR-27.4")):
        value = seg.get(n, component) if seg is not None else ""
        if value:
            return hl7_date(value, location), hl7_time(value, location)
    raise MappingError("no scheduled start: TQ1-7, ORC-7.4 or OBR-27.4 is required",
                       REQUIRED_FIELD_MISSING, "ORC-7")


def patient(pid: Segment, pv1: Segment | None) -> JsonDict:
    """The patient and visit attributes of PID (and PV1)."""
    attrs: JsonDict = {}
    patient_id = pid.get(3)
    if not patient_id:
        raise MappingError("PID-3 (Patient ID) is required", REQUIRED_FIELD_MISSING,
                           "PID-3")
    name = _xpn(pid, 5)
    if not name:
        raise MappingError("PID-5 (Patient Name) is required", REQUIRED_FIELD_MISSING,
                           "PID-5")
    _put(attrs, 0x00100020, "LO", patient_id)
    _put(attrs, 0x00100021, "LO", pid.get(3, 4))
    attrs["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": name}]}
    birth = pid.get(7)
    _put(attrs, 0x00100030, "DA", hl7_date(birth, "PID-7") if birth else "")
    sex = pid.get(8).upper()
    _put(attrs, 0x00100040, "CS", sex if sex in ("M", "F", "O") else "")
    if pv1 is not None:
        _put(attrs, 0x00380010, "LO", pv1.get(19))
    return attrs


def item(base: JsonDict, orc: Segment, obr: Segment, *, tq1: Segment | None = None,
         ipc: Segment | None = None, pv1: Segment | None = None, zds: Segment | None = None,
         station_aet: str = "") -> JsonDict:
    """One worklist item: the patient attributes ``base`` plus the order's (ORC, OBR, TQ1,
    one IPC, ZDS) as the module documentation says."""
    attrs: JsonDict = {k: dict(v) for k, v in base.items()}
    sps: JsonDict = {}

    def pick(ipc_field: int, obr_field: int) -> str:
        value = ipc.get(ipc_field) if ipc is not None else ""
        return value or obr.get(obr_field)

    referring = _xcn(pv1, 8) or _xcn(orc, 12)
    if referring:
        attrs["00080090"] = {"vr": "PN", "Value": [{"Alphabetic": referring}]}
    requesting = _xcn(orc, 12)
    if requesting:
        attrs["00321032"] = {"vr": "PN", "Value": [{"Alphabetic": requesting}]}
    _put(attrs, 0x00402016, "LO", orc.get(2) or obr.get(2))
    _put(attrs, 0x00402017, "LO", orc.get(3) or obr.get(3))
    _put(attrs, 0x00080050, "SH", pick(1, 18))
    _put(attrs, 0x00401001, "SH", pick(2, 19))
    _put(attrs, 0x0020000D, "UI", (ipc.get(3) if ipc is not None else "")
         or (zds.get(1) if zds is not None else ""))
    description = obr.get(4, 2) or obr.get(4, 1)
    _put(attrs, 0x00321060, "LO", description)
    code = _code(obr, 4)
    if code:
        attrs["00321064"] = {"vr": "SQ", "Value": [code]}
    priority = (tq1.get(9) if tq1 is not None else "") or orc.get(7, 6)
    _put(attrs, 0x00401003, "CS", PRIORITIES.get(priority.upper(), ""))
    _put(attrs, 0x00401002, "LO", obr.get(31, 2) or obr.get(31, 1))

    modality = pick(5, 24).upper()
    if not modality:
        raise MappingError("the modality is required (OBR-24 or IPC-5)",
                           REQUIRED_FIELD_MISSING, "IPC-5" if ipc is not None else "OBR-24")
    date, time = _start(orc, obr, tq1)
    aet = (ipc.get(9) if ipc is not None else "") or obr.get(21) or station_aet or modality
    _put(sps, 0x00400001, "AE", aet)
    _put(sps, 0x00080060, "CS", modality)
    _put(sps, 0x00400002, "DA", date)
    _put(sps, 0x00400003, "TM", time)
    _put(sps, 0x00400009, "SH", pick(4, 20))
    _put(sps, 0x00400007, "LO", obr.get(4, 5) or description)
    protocol = (_code(ipc, 6) if ipc is not None else None) or _code(obr, 4, 4)
    if protocol:
        sps["00400008"] = {"vr": "SQ", "Value": [protocol]}
    if ipc is not None:
        _put(sps, 0x00400010, "SH", ipc.get(7))
        _put(sps, 0x00400011, "LO", ipc.get(8))
    attrs["00400100"] = {"vr": "SQ", "Value": [sps]}
    return attrs
