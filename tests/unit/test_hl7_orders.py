"""The HL7 receiver (:mod:`pacsnode.hl7.receiver`, :mod:`pacsnode.hl7.orders`) on an archive
of each index backend: ORM^O01 and OMI^O23 with order control NW, XO, CA, DC change the
worklist; the ACK code (AA, AE, AR) of each case; the worklist additions
(:func:`worklist.find_by_order`, :func:`worklist.update_json`)."""

from __future__ import annotations

import pytest

from pacsnode.core import worklist
from pacsnode.core.archive import Archive
from pacsnode.hl7.receiver import Receiver
from tests.hl7_messages import ack_fields, omi, orm, pid

State = worklist.State


def answer(receiver: Receiver, raw: bytes, codec: str = "utf-8") -> tuple[str, str, str]:
    """MSA-1, MSA-2 and the HL7 error code (ERR-1's 4th component) of the ACK."""
    seg = ack_fields(receiver.handle(raw, False, "test"), codec)
    err = seg["ERR"][1].split("^")[3].split("&")[0] if "ERR" in seg else ""
    return seg["MSA"][1], seg["MSA"][2], err


def items(archive: Archive) -> list[worklist.WorklistItem]:
    return worklist.list_items(archive.engine, states=None)


def test_new_change_cancel(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    assert answer(rx, orm("M1", "NW", study_uid="1.2.3")) == ("AA", "M1", "")
    (item,) = items(archive)
    assert (item.state, item.text(worklist.ACCESSION), item.sps_text(worklist.STATION_AET)
            ) == (State.SCHEDULED, "ACC1", "CT01")
    assert answer(rx, orm("M2", "NW")) == ("AE", "M2", "205")  # duplicate order
    status = worklist.set_state(archive.engine, item.pk, State.IN_PROGRESS).sps_text(
        0x00400020)
    # a change: new station, time and procedure; no SPS ID and no Study UID given
    assert answer(rx, orm("M3", "XO", station="CT02", start="202403151100", sps_id="",
                          procedure="CT002^CT CHEST^LOCAL")) == ("AA", "M3", "")
    (changed,) = items(archive)
    assert changed.pk == item.pk and changed.state == State.IN_PROGRESS
    assert changed.sps_text(worklist.STATION_AET) == "CT02"
    assert changed.sps_text(worklist.START_TIME) == "110000"
    assert changed.text(worklist.REQUESTED_PROCEDURE_DESCRIPTION) == "CT CHEST"
    assert changed.sps_text(worklist.SPS_ID) == "SPS1"  # kept
    assert changed.text(worklist.STUDY_UID) == "1.2.3"  # kept
    assert changed.sps_text(0x00400020) == status  # kept, whatever set_state made it
    assert answer(rx, orm("M4", "XO", sps_id="OTHER")) == ("AE", "M4", "204")
    assert answer(rx, orm("M5", "CA", placer="PL-UNKNOWN", filler="")) == ("AE", "M5", "204")
    assert answer(rx, orm("M6", "CA")) == ("AA", "M6", "")
    assert [i.state for i in items(archive)] == [State.CANCELLED]
    assert answer(rx, orm("M7", "CA")) == ("AE", "M7", "207")  # nothing left to cancel
    assert answer(rx, orm("M8", "XO")) == ("AE", "M8", "207")  # final: no change
    assert answer(rx, orm("M9", "DC")) == ("AE", "M9", "207")
    assert answer(rx, orm("M10", "NW")) == ("AE", "M10", "205")  # still known


def test_discontinue_and_filler_number_only(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    assert answer(rx, orm("D1", "NW", placer="", filler="F7", accession="A7"))[0] == "AA"
    assert answer(rx, orm("D2", "NW", placer="P8", filler="F8", accession="A8"))[0] == "AA"
    # DC names the order by its filler number only
    assert answer(rx, orm("D3", "DC", placer="", filler="F7")) == ("AA", "D3", "")
    states = {i.text(worklist.ACCESSION): i.state for i in items(archive)}
    assert states == {"A7": State.DISCONTINUED, "A8": State.SCHEDULED}
    # same placer, another filler number: not the same order
    assert answer(rx, orm("D4", "CA", placer="P8", filler="F9")) == ("AE", "D4", "204")


def test_omi_steps(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    steps = (("S1", "MR", "MR01"), ("S2", "MR", "MR02"))
    assert answer(rx, omi("O1", "NW", steps=steps)) == ("AA", "O1", "")
    assert sorted(i.sps_text(worklist.SPS_ID) for i in items(archive)) == ["S1", "S2"]
    # change the second step only, by its SPS ID
    assert answer(rx, omi("O2", "XO", steps=(("S2", "MR", "MR03"),))) == ("AA", "O2", "")
    assert {i.sps_text(worklist.SPS_ID): i.sps_text(worklist.STATION_AET)
            for i in items(archive)} == {"S1": "MR01", "S2": "MR03"}
    assert answer(rx, omi("O3", "CA")) == ("AA", "O3", "")
    assert {i.state for i in items(archive)} == {State.CANCELLED}


def test_several_orders_checked_before_any_change(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    one = orm("X1", "NW").decode().split("\r")
    two = orm("X1", "NW", placer="PL2", filler="FL2", accession="ACC2").decode().split("\r")
    both = "\r".join(one[:-1] + two[3:]).encode()  # MSH PID PV1 ORC OBR ORC OBR
    assert answer(rx, both) == ("AA", "X1", "")
    assert sorted(i.text(worklist.ACCESSION) for i in items(archive)) == ["ACC1", "ACC2"]
    three = orm("X2", "NW", placer="PL3", filler="FL3", accession="ACC3").decode()
    dup = "\r".join(three.split("\r")[:-1] + two[3:]).encode()  # PL3 new, PL2 known
    assert answer(rx, dup) == ("AE", "X2", "205")
    assert len(items(archive)) == 2  # PL3 not added either


@pytest.mark.parametrize(("raw", "expected"), [
    (orm("R1", "NW", kind="ADT^A01"), ("AR", "R1", "200")),
    (orm("R2", "NW", kind="ORM^O02"), ("AR", "R2", "201")),
    (orm("R3", "NW", version="2.2"), ("AR", "R3", "203")),
    (orm("R4", "NW", processing="T"), ("AR", "R4", "202")),
    (orm("", "NW"), ("AE", "", "101")),
    (b"not HL7 at all", ("AR", "", "100")),
    (b"MSH|^~\\&|R||P||||ORM^O01|R5|P|2.3.1\rP!D|x\r", ("AE", "R5", "100")),
    (b"MSH|^~\\&|R||P||||ORM^O01|R6|P|2.3.1||||||KOI8\rPID|1\r", ("AE", "R6", "103")),
    (orm("R7", "NW", patient=pid(patient_id="")), ("AE", "R7", "101")),
    (orm("R8", "NW", start="20240231"), ("AE", "R8", "102")),
    (orm("R9", "RP"), ("AE", "R9", "103")),
])
def test_naks(archive: Archive, raw: bytes, expected: tuple[str, str, str]) -> None:
    rx = Receiver(archive.engine)
    assert answer(rx, raw) == expected
    assert items(archive) == []


def test_oversized_message(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    assert answer(Receiver(archive.engine), b"") == ("AR", "", "100")
    seg = ack_fields(rx.handle(orm("BIG", "NW")[:200], True, "test"))
    assert seg["MSA"][1:3] == ["AR", "BIG"]


def test_latin1_message(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    raw = orm("L1", "NW", charset="8859/1", patient=pid(name="Müller^Jürgen"))
    assert answer(rx, raw, "latin-1") == ("AA", "L1", "")
    (item,) = items(archive)
    assert item.text(worklist.PATIENT_NAME) == "Müller^Jürgen"


def test_find_by_order_and_update_json(archive: Archive) -> None:
    rx = Receiver(archive.engine)
    assert answer(rx, orm("F1", "NW"))[0] == "AA"
    engine = archive.engine
    (item,) = worklist.find_by_order(engine, patient_id="P100", placer="PL1")
    assert worklist.find_by_order(engine, patient_id="P100", filler="FL1") == [item]
    assert worklist.find_by_order(engine, patient_id="OTHER", filler="FL1",
                                  accession="ACC1") == [item]
    assert worklist.find_by_order(engine, patient_id="OTHER", filler="FL1") == []
    assert worklist.find_by_order(engine, patient_id="P100", placer="PL1",
                                  filler="XX") == []
    assert worklist.find_by_order(engine, patient_id="P100") == []
    attrs = dict(item.attrs)
    attrs["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": "ROE^JANE"}]}
    del attrs["0020000D"]
    updated = worklist.update_json(engine, item.pk, attrs)
    assert updated.text(worklist.STUDY_UID) == item.text(worklist.STUDY_UID)
    found = worklist.search(engine, {})
    assert [i.text(worklist.PATIENT_NAME) for i in found] == ["ROE^JANE"]
    worklist.set_state(engine, item.pk, State.COMPLETED)
    with pytest.raises(worklist.AlreadyFinished):
        worklist.update_json(engine, item.pk, attrs)
    with pytest.raises(worklist.NotFound):
        worklist.update_json(engine, 999, attrs)
