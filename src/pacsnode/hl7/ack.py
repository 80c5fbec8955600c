"""General acknowledgement messages (ACK) in HL7 original acknowledgment mode (HL7 v2.5.1
2.9.2 "Message processing rules", 2.14.1 ACK, 2.15.8 MSA, 2.15.5 ERR).

An ACK answers one message:

* MSH: the message's delimiters; MSH-3/4 (sending application and facility) are the
  message's MSH-5/6 (pacsnode's own name when empty) and MSH-5/6 its MSH-3/4; MSH-7 now;
  MSH-9 ``ACK^<trigger>^ACK``; MSH-10 a new control ID; MSH-11 and MSH-12 echoed; MSH-18
  echoed (the ACK is written in the message's character set);
* MSA-1 ``AA`` (accepted), ``AE`` (error) or ``AR`` (rejected); MSA-2 the message's
  control ID (MSH-10); MSA-3 the reason (a v2.3-era field many RIS still display);
* for AE and AR an ERR segment: ERR-1 (segment^sequence^field^code, the v2.3/2.4 form)
  always, and for v2.5 and later ERR-2 (location), ERR-3 (the HL7 Table 0357 code, e.g.
  ``101^Required field missing^HL70357``), ERR-4 severity ``E`` and ERR-8 the reason.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from pacsnode.hl7.messages import CHARSETS, Delimiters, Message, escape

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"

ERROR_TEXTS = {  # HL7 Table 0357
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


@dataclass(frozen=True)
class Header:
    """What an ACK takes from the message it answers (MSH fields as written)."""

    delims: Delimiters
    sending_app: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_app: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    trigger: str = ""  # MSH-9.2
    control_id: str = ""  # MSH-10
    processing_id: str = "P"  # MSH-11
    version: str = "2.5.1"  # MSH-12
    charset: str = ""  # MSH-18
    codec: str = "utf-8"  # how the message was read, and the ACK is written

    @classmethod
    def of(cls, msg: Message) -> Header:
        """The header of a parsed message."""
        msh = msg.msh
        return cls(msg.delims, msh.raw(3), msh.raw(4), msh.raw(5), msh.raw(6),
                   msh.get(9, 2), msh.get(10), msh.raw(11) or "P",
                   msh.raw(12) or "2.5.1", msg.charset, msh.codec)

    @classmethod
    def guess(cls, raw: bytes) -> Header:
        """Best effort for bytes that do not parse: MSH fields split on the declared
        field separator, the rest defaults."""
        line = re.split(r"[\r\n]", raw[:4096].decode("latin-1"), maxsplit=1)[0]
        if not line.startswith("MSH") or len(line) < 8:
            return cls(Delimiters())
        fields = line.split(line[3])
        enc = fields[1]
        if len(enc) < 4 or len(set(line[3] + enc[:4])) != 5:
            return cls(Delimiters())
        delims = Delimiters(line[3], enc[0], enc[1], enc[2], enc[3])

        def field(n: int) -> str:  # MSH-n is fields[n - 1]
            return fields[n - 1] if n - 1 < len(fields) else ""

        comp = delims.component
        charset = field(18).split(delims.repetition)[0].split(comp)[0].strip().upper()
        return cls(delims, field(3), field(4), field(5), field(6),
                   [*field(9).split(comp), ""][1], field(10).split(comp)[0].strip(),
                   field(11) or "P", field(12) or "2.5.1",
                   charset if charset in CHARSETS else "",
                   CHARSETS.get(charset, "utf-8"))


def _version_at_least(version: str, wanted: tuple[int, ...]) -> bool:
    numbers = []
    for part in version.split("^")[0].split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) >= wanted


def build(header: Header, code: str, reason: str = "", *, error_code: str = "",
          location: str = "", our_name: str = "PACSNODE",
          now: dt.datetime | None = None) -> bytes:
    """The ACK for ``header``'s message with MSA-1 ``code``; for AE/AR, ``error_code``
    (HL7 Table 0357), ``location`` (``"PID-3"``) and ``reason`` go into MSA-3 and ERR."""
    d = header.delims
    sep = d.field
    stamp = (now or dt.datetime.now().astimezone()).strftime("%Y%m%d%H%M%S%z")
    control = "PN" + uuid.uuid4().hex[:18]
    msh = [
        "MSH", d.encoding_characters,
        header.receiving_app or escape(our_name, d), header.receiving_facility,
        header.sending_app, header.sending_facility, stamp, "",
        d.component.join(["ACK", header.trigger, "ACK"]),
        control, header.processing_id, header.version,
        "", "", "", "", "", header.charset,
    ]
    while msh and msh[-1] == "":
        msh.pop()
    segments = [sep.join(msh)]
    text = escape(reason, d)
    msa = ["MSA", code, escape(header.control_id, d)]
    if text:
        msa.append(text)
    segments.append(sep.join(msa))
    if code != ACCEPT:
        err_code = error_code or "207"
        seg_id, _, field_no = location.partition("-")
        coded = d.subcomponent.join([err_code, ERROR_TEXTS.get(err_code, ""), "HL70357"])
        eld = d.component.join([seg_id, "1" if seg_id else "", field_no, coded])
        err = ["ERR", eld]
        if _version_at_least(header.version, (2, 5)):
            erl = d.component.join([seg_id, "1", field_no]).rstrip(d.component) \
                if seg_id else ""
            cwe = d.component.join([err_code, ERROR_TEXTS.get(err_code, ""), "HL70357"])
            err += [erl, cwe, "E", "", "", "", text]
        segments.append(sep.join(err))
    return ("\r".join(segments) + "\r").encode(header.codec, errors="replace")
