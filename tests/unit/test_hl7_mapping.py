"""Orders → worklist items (:mod:`pacsnode.hl7.mapping`, :func:`pacsnode.hl7.orders.read`):
the IHE RAD TF-2 Appendix B mapping for ORM^O01 (OBR fields, ZDS) and OMI^O23 (TQ1, IPC),
person names, dates, the station AE title fallback and the errors. Expected values are
written out."""

from __future__ import annotations

from typing import Any

import pytest

from pacsnode.hl7 import orders
from pacsnode.hl7.mapping import MappingError, hl7_date, hl7_time, person_name
from pacsnode.hl7.messages import parse
from tests.hl7_messages import omi, orm, pid


def value(attrs: dict[str, Any], tag: str) -> Any:
    return attrs[tag]["Value"][0] if tag in attrs else None


def sps(attrs: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = attrs["00400100"]["Value"][0]
    return item


def test_orm_item() -> None:
    raw = orm("C1", "NW", study_uid="1.2.3.4",
              patient=pid(name="Müller^Jürgen^K^Jr^Dr", birth="19700102153000", sex="F"))
    patient_id, found = orders.read(parse(raw))
    assert patient_id == "P100"
    (order,) = found
    assert (order.control, order.placer, order.filler) == ("NW", "PL1", "FL1")
    (attrs,) = order.items
    assert value(attrs, "00100020") == "P100"
    assert value(attrs, "00100021") == "HOSP"
    assert value(attrs, "00100010") == {"Alphabetic": "Müller^Jürgen^K^Dr^Jr"}
    assert value(attrs, "00100030") == "19700102"
    assert value(attrs, "00100040") == "F"
    assert value(attrs, "00380010") == "V77"
    assert value(attrs, "00080090") == {"Alphabetic": "REFERRER^RITA"}
    assert value(attrs, "00321032") == {"Alphabetic": "ORDERER^OTTO"}
    assert value(attrs, "00402016") == "PL1"
    assert value(attrs, "00402017") == "FL1"
    assert value(attrs, "00080050") == "ACC1"
    assert value(attrs, "00401001") == "RP1"
    assert value(attrs, "0020000D") == "1.2.3.4"
    assert value(attrs, "00321060") == "CT HEAD"
    assert value(attrs, "00321064") == {"00080100": {"vr": "SH", "Value": ["CT001"]},
                                        "00080102": {"vr": "SH", "Value": ["LOCAL"]},
                                        "00080104": {"vr": "LO", "Value": ["CT HEAD"]}}
    assert value(attrs, "00401003") == "ROUTINE"
    step = sps(attrs)
    assert value(step, "00400001") == "CT01"
    assert value(step, "00080060") == "CT"
    assert value(step, "00400002") == "20240315"
    assert value(step, "00400003") == "093000"
    assert value(step, "00400009") == "SPS1"
    assert value(step, "00400007") == "CT HEAD"
    assert "00400008" not in step


def test_omi_one_item_per_ipc() -> None:
    raw = omi("C2", "NW", steps=(("SPS9A", "MR", "MR01"), ("SPS9B", "mr", "")))
    _, (order,) = orders.read(parse(raw), station_aet="DEFAULTAE")
    first, second = order.items
    assert value(first, "00080050") == "ACC9"
    assert value(first, "00401001") == "RP9"
    assert value(first, "0020000D") == "1.2.826.0.1.3680043.10.511.9"
    assert value(first, "00401003") == "STAT"  # TQ1-9 S
    assert value(first, "00321060") == "MR KNEE"
    a, b = sps(first), sps(second)
    assert (value(a, "00400009"), value(a, "00080060"), value(a, "00400001")) == (
        "SPS9A", "MR", "MR01")
    assert (value(b, "00400009"), value(b, "00080060"), value(b, "00400001")) == (
        "SPS9B", "MR", "DEFAULTAE")  # no IPC-9: the hl7_station_aet setting
    assert (value(a, "00400002"), value(a, "00400003")) == ("20240316", "141500")
    assert value(a, "00400010") == "MRSTATION" and value(a, "00400011") == "ROOM 2"
    assert value(a, "00400008")["00080104"] == {"vr": "LO", "Value": ["KNEE PROTOCOL"]}


def test_station_aet_falls_back_to_modality() -> None:
    _, (order,) = orders.read(parse(orm("C3", "NW", station="")))
    assert value(sps(order.items[0]), "00400001") == "CT"


def test_cancel_needs_no_obr() -> None:
    text = orm("C4", "CA").decode().split("\r")
    raw = "\r".join(s for s in text if not s.startswith("OBR")).encode()
    _, (order,) = orders.read(parse(raw))
    assert (order.control, order.placer, order.items) == ("CA", "PL1", [])


@pytest.mark.parametrize(("raw", "code", "location"), [
    (orm("E1", "NW", patient=pid(patient_id="")), "101", "PID-3"),
    (orm("E2", "NW", patient=pid(name="")), "101", "PID-5"),
    (orm("E3", "NW", patient=pid(birth="1970-01-02")), "102", "PID-7"),
    (orm("E4", "NW", start="20241345"), "102", "TQ1-7"),
    (orm("E5", "NW", start="2024031599"), "102", "TQ1-7"),
    (orm("E6", "NW", start=""), "101", "ORC-7"),
    (orm("E7", "NW", modality=""), "101", "OBR-24"),
    (orm("E8", "SC"), "103", "ORC-1"),
    (orm("E9", "NW", placer="", filler=""), "101", "ORC-2"),
    (orm("E10", "NW", station="WAY_TOO_LONG_AE_TITLE"), "102", "OBR"),
    (orm("E11", "XO").replace(b"\rORC", b"\rXXX"), "100", "OBR"),
])
def test_errors(raw: bytes, code: str, location: str) -> None:
    with pytest.raises(MappingError) as info:
        orders.read(parse(raw))
    # ORM start dates come from ORC-7.4 (no TQ1): the location names the field read
    expected = "ORC-7.4" if location == "TQ1-7" else location
    assert (info.value.code, info.value.location) == (code, expected)


def test_no_pid_no_orc() -> None:
    with pytest.raises(MappingError) as info:
        orders.read(parse(b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1\rORC|NW|1\r"))
    assert info.value.location == "PID"
    with pytest.raises(MappingError) as info:
        orders.read(parse(b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1\rPID|||1||A^B\r"))
    assert info.value.location == "ORC"


def test_names_and_dates() -> None:
    assert person_name(["DOE", "JOHN"]) == "DOE^JOHN"
    assert person_name(["DOE", "JOHN", "Q", "III", "DR", "PHD"]) == "DOE^JOHN^Q^DR^III"
    assert person_name(["", "", "", "", ""]) == ""
    assert hl7_date("20240315", "X") == "20240315"
    assert hl7_date("202403151230+0100", "X") == "20240315"
    assert hl7_time("20240315", "X") == ""
    assert hl7_time("2024031512", "X") == "120000"
    assert hl7_time("202403151230", "X") == "123000"
    assert hl7_time("20240315123045.123+0100", "X") == "123045"
    for bad in ("2024", "20240230", "abcdefgh"):
        with pytest.raises(MappingError):
            hl7_date(bad, "X")
    for bad in ("2024031525", "202403151261", "20240315123"):
        with pytest.raises(MappingError):
            hl7_time(bad, "X")
