"""HL7 v2 parsing (:mod:`pacsnode.hl7.messages`): delimiters from MSH-1/MSH-2, the field
hierarchy, escape sequences (HL7 v2.5.1 2.7), character sets (MSH-18, Table 0211) and
malformed input."""

from __future__ import annotations

import pytest

from pacsnode.hl7.messages import Delimiters, ParseError, escape, parse, unescape

MSG = ("MSH|^~\\&|RIS|HOSP|PACS|RAD|20240315||ORM^O01|C1|P|2.3.1\r"
       "PID|1||P1^^^HOSP^MR~X9^^^OTHER||DOE^JOHN^Q||19700102|F\r"
       "OBR|1|||CT1^CT HEAD^LOCAL&SUB|\"\"\r")


def test_fields_components_repetitions() -> None:
    msg = parse(MSG.encode())
    assert msg.control_id == "C1"
    assert msg.message_type == ("ORM", "O01")
    assert (msg.version, msg.processing_id, msg.charset) == ("2.3.1", "P", "")
    assert msg.msh.get(1) == "|" and msg.msh.get(2) == "^~\\&"
    assert msg.msh.get(3) == "RIS" and msg.msh.get(6) == "RAD"
    pid = msg.first("PID")
    assert pid is not None
    assert pid.get(3) == "P1" and pid.get(3, 4) == "HOSP" and pid.get(3, 5) == "MR"
    assert pid.get(3, rep=2) == "X9" and pid.get(3, 4, rep=2) == "OTHER"
    assert pid.get(3, rep=3) == ""
    assert pid.components(5) == ["DOE", "JOHN", "Q"]
    assert pid.get(99) == "" and pid.get(5, 9) == ""
    obr = msg.first("OBR")
    assert obr is not None
    assert obr.get(4, 3) == "LOCAL" and obr.get(4, 3, 2) == "SUB"
    assert obr.get(5) == ""  # HL7 null ""
    assert msg.first("ZDS") is None


def test_other_delimiters_and_line_ends() -> None:
    text = ("MSH#*!/$#RIS##PACS####ORM*O01#C2#P#2.5.1\n"
            "PID#1##P2!P3##A/F/B*C$D\r\n")
    msg = parse(text.encode())
    assert msg.delims == Delimiters("#", "*", "!", "/", "$")
    assert msg.message_type == ("ORM", "O01") and msg.control_id == "C2"
    pid = msg.first("PID")
    assert pid is not None
    assert pid.get(3) == "P2" and pid.get(3, rep=2) == "P3"
    assert pid.get(5) == "A#B" and pid.get(5, 2) == "C" and pid.get(5, 2, 2) == "D"


@pytest.mark.parametrize(("raw", "expected"), [
    ("A\\F\\B", "A|B"),
    ("A\\S\\B\\T\\C\\R\\D\\E\\E", "A^B&C~D\\E"),
    ("\\H\\BOLD\\N\\ text", "BOLD text"),
    ("line1\\.br\\line2", "line1\nline2"),
    ("M\\XC3BC\\ller", "Müller"),  # hex bytes in the message's character set (UTF-8)
    ("\\Zlocal\\x", "x"),
    ("\\C2842\\x", "x"),  # character set switches are dropped
    ("trailing\\", "trailing\\"),  # no closing escape character: kept
    ("no escapes", "no escapes"),
])
def test_unescape(raw: str, expected: str) -> None:
    assert unescape(raw, Delimiters(), "utf-8") == expected


def test_escaped_delimiters_do_not_split() -> None:
    msg = parse(b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1\rPID|||ID\\S\\1||A\\F\\B^C\r")
    pid = msg.first("PID")
    assert pid is not None
    assert pid.get(3) == "ID^1" and pid.get(3, 2) == ""
    assert pid.get(5) == "A|B" and pid.get(5, 2) == "C"


def test_escape_roundtrip() -> None:
    d = Delimiters()
    text = "a|b^c&d~e\\f"
    assert escape(text, d) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert unescape(escape(text, d), d) == text
    assert escape("two\rlines\n", d) == "two lines "


@pytest.mark.parametrize(("charset", "codec"), [
    ("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1"), ("8859/15", "iso8859-15"),
    ("8859/5", "iso8859-5"),
])
def test_character_sets(charset: str, codec: str) -> None:
    name = "Доу^Иван" if charset == "8859/5" else "Müller^Jürgen€" if codec != "latin-1" \
        else "Müller^Jürgen"
    raw = (f"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1||||||{charset}\rPID|||1||{name}\r"
           ).encode(codec)
    msg = parse(raw)
    assert msg.charset == charset
    pid = msg.first("PID")
    assert pid is not None
    assert (pid.get(5), pid.get(5, 2)) == tuple(name.split("^"))


def test_hex_escape_in_latin1() -> None:
    raw = b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1||||||8859/1\rPID|||1||M\\XFC\\LLER\r"
    pid = parse(raw).first("PID")
    assert pid is not None and pid.get(5) == "MüLLER"


def test_no_msh18_reads_utf8_then_latin1() -> None:
    base = "MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1\rPID|||1||Müller\r"
    for codec in ("utf-8", "latin-1"):
        pid = parse(base.encode(codec)).first("PID")
        assert pid is not None and pid.get(5) == "Müller"


def test_unsupported_character_set() -> None:
    with pytest.raises(ParseError) as info:
        parse(b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1||||||UNICODE UTF-16\rPID|||1\r")
    assert (info.value.code, info.value.location) == ("103", "MSH-18")


def test_bytes_outside_the_declared_character_set() -> None:
    with pytest.raises(ParseError) as info:
        parse("MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1||||||ASCII\rPID|||1||Müller\r"
              .encode("latin-1"))
    assert (info.value.code, info.value.location) == ("102", "MSH-18")
    with pytest.raises(ParseError):
        parse("MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1||||||UNICODE UTF-8\rPID|||Mü\r"
              .encode("latin-1"))


@pytest.mark.parametrize(("raw", "location"), [
    (b"", "MSH"),
    (b"garbage without a header", "MSH"),
    (b"PID|||1\rMSH|^~\\&|R\r", "MSH"),
    (b"MSH|^~|R||P||||ORM^O01|C|P|2.3.1\r", "MSH-2"),  # too few encoding characters
    (b"MSH|^^\\&|R||P||||ORM^O01|C|P|2.3.1\r", "MSH-2"),  # the same character twice
    (b"MSHA^~\\&ARAAPAAAAORM^O01ACAPA2.3.1\r", "MSH-2"),  # a letter as field separator
    (b"MSH|^~\\&|R||P||||ORM^O01|C|P|2.3.1\rP!D|||1\r", "P!D"),
])
def test_malformed(raw: bytes, location: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert info.value.location == location
