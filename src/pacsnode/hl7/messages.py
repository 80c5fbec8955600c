"""Parsing HL7 v2 messages (HL7 v2.5.1 chapter 2, "Control"): segments, fields,
repetitions, components and subcomponents, with the delimiters the message declares in
MSH-1 and MSH-2 (2.5.4, 2.6), escape sequences (2.7) and the character set of MSH-18
(2.15.9.18, HL7 Table 0211).

Choices (conformance statement §6e):

* segments end with a carriage return (2.5.1); a line feed, or CR LF, is accepted too;
* the value ``""`` (HL7 "null", 2.5.3) reads as empty: a change replaces a whole worklist
  item, so "delete this value" and "no value" come to the same;
* escape sequences ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` give the delimiters, ``\\Xhh…\\`` the
  bytes hh… in the message's character set, ``\\.br\\`` a line feed; highlighting
  (``\\H\\ \\N\\``), character set switches (``\\C…\\ \\M…\\``), other formatting and local
  (``\\Z…\\``) sequences are dropped; an escape character without its closing one is kept
  as it is;
* MSH-18 (its first repetition) names the character set of the whole message; without
  MSH-18 the standard says ASCII, but bytes outside ASCII are then read as UTF-8 when they
  are valid UTF-8 and as ISO 8859-1 otherwise (what RIS without MSH-18 send in practice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# HL7 Table 0211 (alternate character sets) → Python codec. Character sets whose MSH would
# not be ASCII bytes (UTF-16, UTF-32) and the JIS/CNS sets needing ISO 2022 switching are
# not supported.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "UNICODE UTF-8": "utf-8",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
}

# HL7 Table 0357 (message error condition codes) used by pacsnode
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
INTERNAL_ERROR = "207"

_SEGMENT_END = re.compile(r"\r\n|\r|\n")


class ParseError(ValueError):
    """A message that cannot be read; ``code`` is its HL7 Table 0357 error code and
    ``location`` the segment and field (``"MSH-18"``) when known."""

    def __init__(self, message: str, code: str = SEGMENT_SEQUENCE_ERROR,
                 location: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.location = location


@dataclass(frozen=True)
class Delimiters:
    """The delimiters of a message (MSH-1, MSH-2; 2.5.4)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as written in a message."""
        return self.component + self.repetition + self.escape + self.subcomponent


def unescape(text: str, delims: Delimiters, codec: str = "ascii") -> str:
    """``text`` with its escape sequences (HL7 v2.5.1 2.7) replaced."""
    esc = delims.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        end = text.find(esc, i + 1) if char == esc else -1
        if end < 0:
            out.append(text[i:] if char == esc else char)
            if char == esc:
                break
            i += 1
            continue
        seq = text[i + 1:end]
        i = end + 1
        simple = {"F": delims.field, "S": delims.component, "T": delims.subcomponent,
                  "R": delims.repetition, "E": esc}
        if seq in simple:
            out.append(simple[seq])
        elif seq == ".br":
            out.append("\n")
        elif seq[:1] == "X" and len(seq) % 2 == 1:
            try:
                out.append(bytes.fromhex(seq[1:]).decode(codec, errors="replace"))
            except ValueError:
                out.append(f"{esc}{seq}{esc}")
        # \H\ \N\ \C..\ \M..\ \Z..\ and other formatting: dropped
    return "".join(out)


def escape(text: str, delims: Delimiters) -> str:
    """``text`` with the delimiters escaped (2.7.1), for a value we write; line breaks
    become spaces (segments end with CR)."""
    esc = delims.escape
    pairs = [(esc, "E"), (delims.field, "F"), (delims.component, "S"),
             (delims.subcomponent, "T"), (delims.repetition, "R")]
    out = []
    for char in text.replace("\r", " ").replace("\n", " "):
        for delim, name in pairs:
            if char == delim:
                out.append(f"{esc}{name}{esc}")
                break
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Segment:
    """One segment: ``fields[n]`` is field n as written (escaped); ``fields[0]`` the
    segment ID. For MSH, ``fields[1]`` is the field separator and ``fields[2]`` MSH-2."""

    fields: tuple[str, ...]
    delims: Delimiters
    codec: str

    @property
    def name(self) -> str:
        return self.fields[0]

    def raw(self, n: int) -> str:
        """Field n as written ('' when absent)."""
        return self.fields[n] if 0 <= n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        """The repetitions of field n as written (MSH-1 and MSH-2 are never split)."""
        raw = self.raw(n)
        if self.name == "MSH" and n <= 2:
            return [raw]
        return raw.split(self.delims.repetition) if raw else []

    def get(self, n: int, component: int = 1, sub: int = 1, rep: int = 1) -> str:
        """Field n, component, subcomponent of repetition ``rep`` (all 1-based), decoded and
        stripped; '' when absent or HL7 null (``""``)."""
        if self.name == "MSH" and n <= 2:
            return self.raw(n)
        reps = self.repetitions(n)
        if len(reps) < rep:
            return ""
        return self.part(reps[rep - 1], component, sub)

    def part(self, raw: str, component: int = 1, sub: int = 1) -> str:
        """Component and subcomponent of one field repetition ``raw``, decoded."""
        comps = raw.split(self.delims.component)
        if len(comps) < component:
            return ""
        subs = comps[component - 1].split(self.delims.subcomponent)
        if len(subs) < sub:
            return ""
        value = unescape(subs[sub - 1], self.delims, self.codec).strip()
        return "" if value == '""' else value

    def components(self, n: int, rep: int = 1) -> list[str]:
        """Every component of field n (repetition ``rep``), decoded (first subcomponent)."""
        reps = self.repetitions(n)
        if len(reps) < rep:
            return []
        raw = reps[rep - 1]
        return [self.part(raw, c) for c in range(1, raw.count(self.delims.component) + 2)]


@dataclass(frozen=True)
class Message:
    """A parsed message: its segments in order, delimiters and character set."""

    segments: tuple[Segment, ...]
    delims: Delimiters
    charset: str  # MSH-18 as written ('' when absent)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        """The first segment ``name``, or None."""
        return next((s for s in self.segments if s.name == name), None)

    @property
    def control_id(self) -> str:
        """MSH-10, Message Control ID."""
        return self.msh.get(10)

    @property
    def message_type(self) -> tuple[str, str]:
        """MSH-9 message code and trigger event, e.g. ``("ORM", "O01")``."""
        return self.msh.get(9, 1).upper(), self.msh.get(9, 2).upper()

    @property
    def version(self) -> str:
        """MSH-12, Version ID (its first component)."""
        return self.msh.get(12)

    @property
    def processing_id(self) -> str:
        """MSH-11, Processing ID (its first component)."""
        return self.msh.get(11).upper()


def _charset_of(raw: bytes) -> str:
    """MSH-18 read from the bytes of the MSH segment (they are ASCII in every supported
    character set)."""
    head = _SEGMENT_END.split(raw[:4096].decode("latin-1"), maxsplit=1)[0]
    if len(head) < 8 or not head.startswith("MSH"):
        return ""
    fields = head.split(head[3])
    if len(fields) < 18:
        return ""
    component, repetition = fields[1][:1], fields[1][1:2]
    first = fields[17].split(repetition)[0] if repetition else fields[17]
    return (first.split(component)[0] if component else first).strip().upper()


def decode(raw: bytes) -> tuple[str, str, str]:
    """The text of a message, its MSH-18 ('' when absent) and the codec used; a
    :class:`ParseError` when the character set is unsupported or the bytes do not fit it."""
    charset = _charset_of(raw)
    if not charset:
        try:
            return raw.decode("utf-8"), "", "utf-8"
        except UnicodeDecodeError:
            return raw.decode("iso8859-1"), "", "iso8859-1"
    codec = CHARSETS.get(charset)
    if codec is None:
        raise ParseError(f"unsupported character set {charset!r} (MSH-18)",
                         TABLE_VALUE_NOT_FOUND, "MSH-18")
    try:
        return raw.decode(codec), charset, codec
    except UnicodeDecodeError as exc:
        raise ParseError(f"the message is not valid {charset} (MSH-18): byte "
                         f"{exc.start}", DATA_TYPE_ERROR, "MSH-18") from None


def parse(raw: bytes) -> Message:
    """Parse the bytes of one message (without MLLP framing)."""
    text, charset, codec = decode(raw)
    lines = [line for line in _SEGMENT_END.split(text) if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise ParseError("the message does not start with an MSH segment",
                         SEGMENT_SEQUENCE_ERROR, "MSH")
    sep = lines[0][3]
    encoding = lines[0][4:].split(sep, 1)[0]
    chars = [sep, *encoding[:4]]
    if (len(encoding) < 4 or len(set(chars)) != 5 or any(c.isalnum() or c.isspace()
                                                          for c in chars)):
        raise ParseError(f"bad delimiters in MSH-1/MSH-2: {lines[0][3:9]!r}",
                         DATA_TYPE_ERROR, "MSH-2")
    delims = Delimiters(sep, encoding[0], encoding[1], encoding[2], encoding[3])
    segments = []
    for line in lines:
        parts = line.split(sep)
        name = parts[0].strip().upper()
        if len(name) != 3 or not name.isalnum():
            raise ParseError(f"bad segment ID {parts[0][:10]!r}", SEGMENT_SEQUENCE_ERROR,
                             parts[0][:3])
        fields = (name, sep, *parts[1:]) if name == "MSH" else (name, *parts[1:])
        segments.append(Segment(tuple(fields), delims, codec))
    return Message(tuple(segments), delims, charset)
