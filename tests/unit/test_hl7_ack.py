"""ACK building (:mod:`pacsnode.hl7.ack`; HL7 v2.5.1 2.9.2, 2.14.1, MSA 2.15.8, ERR
2.15.5): MSH with applications swapped, MSH-9 ``ACK^<trigger>^ACK``, a new MSH-10,
MSH-11/12/18 echoed, MSA-1/2/3, ERR in the v2.3 form and the v2.5 form, escaping,
character set."""

from __future__ import annotations

import datetime as dt

from pacsnode.hl7 import ack
from pacsnode.hl7.messages import Delimiters, parse
from tests.hl7_messages import ack_fields, orm

NOW = dt.datetime(2024, 3, 15, 8, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_accept() -> None:
    header = ack.Header.of(parse(orm("MSG1", "NW")))
    seg = ack_fields(ack.build(header, ack.ACCEPT, now=NOW))
    assert list(seg) == ["MSH", "MSA"]
    msh = seg["MSH"]  # msh[n - 1] is MSH-n
    assert msh[1] == "^~\\&"
    assert (msh[2], msh[3], msh[4], msh[5]) == ("PACSNODE", "RADIOLOGY", "RIS", "HOSPITAL")
    assert msh[6] == "20240315083005+0100"
    assert msh[8] == "ACK^O01^ACK"
    assert msh[9] and msh[9] != "MSG1" and len(msh[9]) <= 20
    assert (msh[10], msh[11]) == ("P", "2.3.1")
    assert len(msh) == 12  # no MSH-18: the message had none
    assert seg["MSA"] == ["MSA", "AA", "MSG1"]
    other = ack_fields(ack.build(header, ack.ACCEPT))["MSH"][9]
    assert other != msh[9]  # a new control ID each time


def test_error_v231_has_err1_only() -> None:
    header = ack.Header.of(parse(orm("MSG2", "NW")))
    seg = ack_fields(ack.build(header, ack.ERROR, "PID-3 is required", error_code="101",
                               location="PID-3"))
    assert seg["MSA"] == ["MSA", "AE", "MSG2", "PID-3 is required"]
    assert seg["ERR"] == ["ERR", "PID^1^3^101&Required field missing&HL70357"]


def test_reject_v251_has_err2_to_8() -> None:
    header = ack.Header.of(parse(orm("MSG3", "NW", version="2.5.1", kind="ADT^A01")))
    seg = ack_fields(ack.build(header, ack.REJECT, "unsupported message type 'ADT'",
                               error_code="200", location="MSH-9"))
    assert seg["MSH"][8] == "ACK^A01^ACK" and seg["MSH"][11] == "2.5.1"
    assert seg["MSA"][:3] == ["MSA", "AR", "MSG3"]
    err = seg["ERR"]
    assert err[1] == "MSH^1^9^200&Unsupported message type&HL70357"
    assert err[2] == "MSH^1^9"
    assert err[3] == "200^Unsupported message type^HL70357"
    assert err[4] == "E"
    assert err[8] == "unsupported message type 'ADT'"


def test_error_without_location() -> None:
    header = ack.Header.of(parse(orm("MSG4", "NW", version="2.5")))
    seg = ack_fields(ack.build(header, ack.REJECT, "internal error"))
    assert seg["ERR"][1] == "^^^207&Application internal error&HL70357"
    assert seg["ERR"][2] == "" and seg["ERR"][3].startswith("207^")


def test_reason_and_control_id_are_escaped() -> None:
    header = ack.Header(Delimiters(), control_id="A|B")
    raw = ack.build(header, ack.ERROR, "bad ^value| here", error_code="102")
    msa = raw.decode().split("\r")[1]
    assert msa == "MSA|AE|A\\F\\B|bad \\S\\value\\F\\ here"


def test_character_set_echoed_and_used() -> None:
    header = ack.Header.of(parse(orm("MSG5", "NW", charset="8859/1",
                                     patient="PID|1||P1||Müller^Jürgen")))
    raw = ack.build(header, ack.ERROR, "Müller: no order", error_code="204")
    seg = ack_fields(raw, "latin-1")
    assert seg["MSH"][17] == "8859/1"
    assert seg["MSA"][3] == "Müller: no order"
    assert "Müller".encode("latin-1") in raw


def test_guess_from_unparsable_bytes() -> None:
    raw = b"MSH|^~\\&|LAB|F1|ME|F2|2024||ORM^O01|X77|P|2.4||||||8859/1\rBAD!|x\r"
    header = ack.Header.guess(raw)
    assert (header.sending_app, header.receiving_app) == ("LAB", "ME")
    assert (header.control_id, header.trigger, header.version) == ("X77", "O01", "2.4")
    assert header.charset == "8859/1"
    seg = ack_fields(ack.build(header, ack.ERROR, "x", error_code="100"), "latin-1")
    assert seg["MSA"][:3] == ["MSA", "AE", "X77"]
    assert seg["MSH"][2:6] == ["ME", "F2", "LAB", "F1"]
    empty = ack.Header.guess(b"nothing")
    seg = ack_fields(ack.build(empty, ack.REJECT, "no MSH", error_code="100",
                               our_name="MYPACS"))
    assert seg["MSH"][2] == "MYPACS" and seg["MSA"][:3] == ["MSA", "AR", ""]
    assert seg["MSH"][8] == "ACK^^ACK" and seg["MSH"][11] == "2.5.1"
