"""DICOM JSON (PS3.18 F.2) to the Native DICOM Model XML of PS3.19 Annex A
(``application/dicom+xml``, PS3.18 F.3), for the QIDO-RS and WADO-RS metadata responses
that may be XML (PS3.18 10.6.3, 10.4.1.1.2: ``multipart/related;
type="application/dicom+xml"``, one XML document per part).

The XML is built from the DICOM JSON the index keeps (no file is opened), one document at a
time, so a response of any size streams part by part.

The encoding follows PS3.19 A.1.5 (Tables A.1.5-1 and A.1.5-2) and the RELAX NG schema of
A.1.6:

* ``<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM"
  xml:space="preserve">`` holds one ``<DicomAttribute>`` per attribute, in ascending tag
  order, with ``tag`` (8 hex digits), ``vr``, ``keyword`` (public attributes known to the
  data dictionary) and ``privateCreator`` (private data elements whose creator is in the
  same data set); private attributes have no keyword.
* Values are ``<Value number="n">`` (numbered from 1; an empty value of a multi-valued
  attribute, JSON ``null``, is an empty ``<Value number="n"/>``); person names are
  ``<PersonName number="n">`` with ``<Alphabetic>``, ``<Ideographic>``, ``<Phonetic>``
  groups of ``<FamilyName>``, ``<GivenName>``, ``<MiddleName>``, ``<NamePrefix>``,
  ``<NameSuffix>`` (empty components left out); sequence items are ``<Item number="n">``;
  binary values are ``<InlineBinary>`` (base64, as in the JSON) or ``<BulkData uri="…"/>``.
* Text is escaped (``&``, ``<``, ``>``, and ``"`` and white space in attribute values);
  carriage returns are written as ``&#13;`` so that an XML parser keeps them. Characters
  XML 1.0 cannot represent at all (C0 controls other than tab, LF and CR; lone surrogates)
  are replaced by U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from pydicom.datadict import keyword_for_tag

from pacsnode.web.media import DICOM_XML

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
PARTS_PER_CHUNK = 16

# XML 1.0 Char production (section 2.2): everything else cannot appear, escaped or not.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"})


def text(value: str) -> str:
    """``value`` as XML character data."""
    return _NOT_XML_CHAR.sub("\ufffd", value).translate(_TEXT_ESCAPES)


def attribute(value: str) -> str:
    """``value`` as the content of a double-quoted XML attribute value."""
    return _NOT_XML_CHAR.sub("\ufffd", value).translate(_ATTR_ESCAPES)


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool):  # not a DICOM JSON type; kept readable
        return "1" if value else "0"
    return text(str(value))  # int, float: Python's shortest round-trip representation


def _private_creators(dataset: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    """(group, block) → Private Creator of the data set's private blocks (PS3.5 7.8.1)."""
    creators: dict[tuple[int, int], str] = {}
    for key, element in dataset.items():
        tag = int(key, 16)
        group, number = tag >> 16, tag & 0xFFFF
        if group % 2 and 0x0010 <= number <= 0x00FF:
            values = element.get("Value") or []
            if values and isinstance(values[0], str):
                creators[(group, number)] = values[0].strip()
    return creators


def _names(tag: int, creators: Mapping[tuple[int, int], str]) -> str:
    """The ``keyword`` or ``privateCreator`` attribute of one DicomAttribute (with its
    leading space), or nothing."""
    group, number = tag >> 16, tag & 0xFFFF
    if group % 2 == 0:
        keyword = keyword_for_tag(tag)
        return f' keyword="{keyword}"' if keyword else ""
    creator = creators.get((group, number >> 8)) if number >= 0x1000 else None
    return f' privateCreator="{attribute(creator)}"' if creator else ""


def _person_name(number: int, value: Any, out: list[str]) -> None:
    groups: list[str] = []
    if isinstance(value, Mapping):
        for group in PN_GROUPS:
            raw = value.get(group)
            if not raw:
                continue
            components = "".join(
                f"<{name}>{text(part)}</{name}>"
                for name, part in zip(PN_COMPONENTS, str(raw).split("^"), strict=False)
                if part)
            if components:
                groups.append(f"<{group}>{components}</{group}>")
    elif isinstance(value, str) and value:  # not DICOM JSON, but seen from other writers
        _person_name(number, {"Alphabetic": value}, out)
        return
    if groups:
        out.append(f'<PersonName number="{number}">{"".join(groups)}</PersonName>')
    else:
        out.append(f'<PersonName number="{number}"/>')


def _element(tag: int, element: Mapping[str, Any], creators: Mapping[tuple[int, int], str],
             out: list[str]) -> None:
    vr = str(element.get("vr") or "UN")
    head = f'<DicomAttribute tag="{tag:08X}" vr="{attribute(vr)}"{_names(tag, creators)}'
    values = element.get("Value")
    if values:
        out.append(head + ">")
        for number, value in enumerate(values, start=1):
            if vr == "SQ":
                out.append(f'<Item number="{number}">')
                if isinstance(value, Mapping):
                    dataset(value, out)
                out.append("</Item>")
            elif vr == "PN":
                _person_name(number, value, out)
            elif value is None:
                out.append(f'<Value number="{number}"/>')
            else:
                out.append(f'<Value number="{number}">{_value_text(value)}</Value>')
        out.append("</DicomAttribute>")
    elif "InlineBinary" in element:
        out.append(f'{head}><InlineBinary>{text(str(element["InlineBinary"]))}'
                   "</InlineBinary></DicomAttribute>")
    elif "BulkDataURI" in element:
        out.append(f'{head}><BulkData uri="{attribute(str(element["BulkDataURI"]))}"/>'
                   "</DicomAttribute>")
    else:
        out.append(head + "/>")  # zero length: no Value (PS3.19 A.1.5)


def dataset(json_dataset: Mapping[str, Any], out: list[str]) -> None:
    """Append the DicomAttribute elements of one DICOM JSON object to ``out``, in ascending
    tag order (the members of a JSON object have no defined order)."""
    creators = _private_creators(json_dataset)
    for tag, key in sorted((int(key, 16), key) for key in json_dataset):
        _element(tag, json_dataset[key], creators, out)


def to_xml(json_dataset: Mapping[str, Any]) -> str:
    """One DICOM JSON object (PS3.18 F.2) as a Native DICOM Model document (PS3.19 A.1)."""
    out = [DECLARATION, f'<NativeDicomModel xmlns="{NAMESPACE}" xml:space="preserve">']
    dataset(json_dataset, out)
    out.append("</NativeDicomModel>")
    return "".join(out)


def multipart_body(datasets: Iterable[Mapping[str, Any]], boundary: str
                   ) -> Generator[bytes, None, None]:
    """A ``multipart/related; type="application/dicom+xml"`` body (PS3.18 8.6.1.2), one
    document per part, generated as the data sets come (a few parts per chunk); closes
    ``datasets`` (a generator holding a database cursor) when done or abandoned."""
    chunk: list[str] = []
    try:
        for json_dataset in datasets:
            chunk.append(f"--{boundary}\r\nContent-Type: {DICOM_XML}\r\n\r\n")
            chunk.append(to_xml(json_dataset))
            chunk.append("\r\n")
            if len(chunk) >= 3 * PARTS_PER_CHUNK:
                yield "".join(chunk).encode("utf-8")
                chunk = []
    finally:
        close = getattr(datasets, "close", None)
        if close is not None:
            close()
    chunk.append(f"--{boundary}--\r\n")
    yield "".join(chunk).encode("utf-8")
