"""DICOM JSON → Native DICOM Model XML (PS3.19 Annex A) for application/dicom+xml, and the
Accept negotiation of the XML and rendered multipart responses.

pydicom has no XML reader, so the XML is read here with xml.etree by a decoder written for
these tests, checked against the structure rules of PS3.19 A.1.5/A.1.6 (element and
attribute names, numbering from 1, PersonName groups and components, ascending tags), and
its values compared with the DICOM JSON pydicom makes of the same data sets.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from pacsnode.web.dicom_xml import multipart_body, to_xml
from pacsnode.web.media import DICOM_JSON, DICOM_XML, dicom_model_for
from pacsnode.web.rendered_study import rendered_type_for

NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
VRS = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD",
       "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
       "UL", "UN", "UR", "US", "UT", "UV"}
PN_GROUPS = ["Alphabetic", "Ideographic", "Phonetic"]
PN_COMPONENTS = ["FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix"]
SAMPLES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtdose.dcm", "emri_small.dcm",
           "SC_rgb.dcm", "waveform_ecg.dcm", "JPEG2000.dcm", "chrH31.dcm", "chrX1.dcm",
           "chrArab.dcm", "chrSQEncoding.dcm"]


def local(element: ET.Element) -> str:
    assert element.tag.startswith(NS), f"{element.tag} is not in the NativeDICOM namespace"
    return element.tag[len(NS):]


def check_numbers(children: list[ET.Element]) -> None:
    assert [c.get("number") for c in children] == [str(n) for n in
                                                   range(1, len(children) + 1)]


def check_dataset(parent: ET.Element) -> None:
    """The schema rules of PS3.19 A.1.6 that can be checked by hand, recursively."""
    assert not (parent.text or "").strip()
    tags = []
    for attr in parent:
        assert local(attr) == "DicomAttribute"
        assert set(attr.attrib) <= {"tag", "vr", "keyword", "privateCreator"}
        tag_text = attr.get("tag", "")
        assert re.fullmatch("[0-9A-F]{8}", tag_text), tag_text
        tag = int(tag_text, 16)
        tags.append(tag)
        assert attr.get("vr") in VRS
        if tag >> 16 & 1:
            assert "keyword" not in attr.attrib  # private: no keyword
        else:
            assert attr.get("keyword") == (keyword_for_tag(tag) or None)
        kinds = {local(c) for c in attr}
        assert len(kinds) <= 1, kinds
        children = list(attr)
        if kinds == {"Value"} or kinds == {"PersonName"} or kinds == {"Item"}:
            check_numbers(children)
        elif kinds:
            assert kinds <= {"InlineBinary", "BulkData"} and len(children) == 1
        if kinds == {"Item"}:
            assert attr.get("vr") == "SQ"
            for item in children:
                check_dataset(item)
        if kinds == {"PersonName"}:
            assert attr.get("vr") == "PN"
            for name in children:
                groups = [local(g) for g in name]
                assert groups == [g for g in PN_GROUPS if g in groups]
                for group in name:
                    parts = [local(c) for c in group]
                    assert parts and parts == [c for c in PN_COMPONENTS if c in parts]
                    assert all(len(c) == 0 and c.text for c in group)
        if kinds == {"Value"}:
            assert all(len(c) == 0 for c in children)
        if kinds == {"BulkData"}:
            assert set(children[0].attrib) == {"uri"}
    assert tags == sorted(tags) and len(tags) == len(set(tags))


def parse(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document.encode("utf-8"))
    assert local(root) == "NativeDicomModel"
    assert root.get(XML_SPACE) == "preserve"
    check_dataset(root)
    return root


def decode(parent: ET.Element) -> dict[str, Any]:
    """The XML back as DICOM JSON (values as the XML's text)."""
    out: dict[str, Any] = {}
    for attr in parent:
        node: dict[str, Any] = {"vr": attr.get("vr")}
        children = list(attr)
        kind = local(children[0]) if children else None
        if kind == "Value":
            node["Value"] = [c.text if c.text is not None else None for c in children]
        elif kind == "PersonName":
            names = []
            for name in children:
                value = {}
                for group in name:
                    parts = {local(c): c.text for c in group}
                    value[local(group)] = "^".join(parts.get(c) or "" for c in
                                                   PN_COMPONENTS).rstrip("^")
                names.append(value or None)
            node["Value"] = names
        elif kind == "Item":
            node["Value"] = [decode(item) for item in children]
        elif kind == "InlineBinary":
            node["InlineBinary"] = children[0].text
        elif kind == "BulkData":
            node["BulkDataURI"] = children[0].get("uri")
        out[attr.get("tag", "")] = node
    return out


def same(expected: Any, got: Any, vr: str) -> bool:
    """One JSON value against the XML's text for it."""
    if vr == "PN":  # groups without any component ("^^^^") are left out
        groups = {k: v.rstrip("^") for k, v in (expected or {}).items() if v.strip("^")}
        return (groups or None) == got
    if expected is None or expected == "":
        return got is None or got == ""
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return float(got) == float(expected)
    return str(expected) == got


def assert_same(expected: dict[str, Any], got: dict[str, Any]) -> None:
    assert set(expected) == set(got)
    for key, node in expected.items():
        vr = node["vr"]
        assert got[key]["vr"] == vr, key
        if vr == "SQ":
            items = node.get("Value") or []
            assert len(items) == len(got[key].get("Value") or []), key
            for mine, theirs in zip(items, got[key].get("Value") or [], strict=True):
                assert_same(mine, theirs)
        elif node.get("Value"):
            values = got[key]["Value"]
            assert len(values) == len(node["Value"]), key
            assert all(same(e, g, vr) for e, g in zip(node["Value"], values, strict=True)), (
                key, node["Value"], values)
        else:
            for member in ("InlineBinary", "BulkDataURI"):
                assert node.get(member) == got[key].get(member), key
            assert not got[key].get("Value")


@pytest.mark.parametrize("name", SAMPLES)
def test_pydicom_samples_convert_with_the_same_values(name: str) -> None:
    path = get_charset_files(name)[0] if name.startswith("chr") else get_testdata_file(name)
    ds = pydicom.dcmread(str(path))
    expected = ds.to_json_dict(bulk_data_threshold=1024,
                               bulk_data_element_handler=lambda e: f"http://x/{e.tag:08X}")
    root = parse(to_xml(expected))
    assert_same(expected, decode(root))
    assert len(root) == len(expected) > 3


def _special() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.ReferringPhysicianName = ["Doe^^^Dr", "X"]
    ds.StudyDescription = 'a <b> & "c" \'d\''
    ds.PatientComments = "line 1\r\nline 2\ttab\x01bell\x1b"
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]
    ds.AccessionNumber = ""
    ds.Rows = 512
    ds.PixelSpacing = [0.5, 0.25]
    ds.SliceThickness = "1e-05"
    ds.FrameIncrementPointer = 0x00181063
    block = ds.private_block(0x0011, 'ACME "1" <&>', create=True)
    block.add_new(0x01, "LO", "private & <value>")
    block.add_new(0x02, "OB", b"\x00\x01\x02")
    ds.add_new(0x00131010, "LO", "no creator")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    inner = Dataset()
    inner.CodeValue = "X<1>"
    item.ConceptNameCodeSequence = [inner]
    ds.ReferencedStudySequence = [item, Dataset()]
    return ds


def test_special_values_escapes_and_private_tags() -> None:
    ds = _special()
    json_ds = ds.to_json_dict()
    json_ds["00080090"]["Value"][1] = None  # pydicom 3.0 cannot write an empty PN value
    json_ds["7FE00010"] = {"vr": "OW", "BulkDataURI": "http://h/a?x=1&y=\"2\""}
    json_ds["00091002"] = {"vr": "UN"}  # empty private attribute without creator
    document = to_xml(json_ds)
    root = parse(document)
    expected = {**json_ds, "00104000": {"vr": "LT", "Value": [
        "line 1\r\nline 2\ttab\ufffdbell\ufffd"]}}
    assert_same(expected, decode(root))
    by_tag = {a.get("tag"): a for a in root}
    # escapes: the parser gives the original text back, CR included; a C0 control that
    # XML 1.0 cannot carry is replaced
    assert by_tag["00081030"][0].text == 'a <b> & "c" \'d\''
    assert by_tag["00104000"][0].text == "line 1\r\nline 2\ttab\ufffdbell\ufffd"
    assert "&lt;b&gt; &amp;" in document and "&#13;" in document
    # person names: three groups; empty components left out; an empty name has no group
    (name,) = by_tag["00100010"]
    assert [local(g) for g in name] == PN_GROUPS
    assert [(local(c), c.text) for c in name[1]] == [("FamilyName", "山田"),
                                                     ("GivenName", "太郎")]
    doctor, empty = by_tag["00080090"]
    assert [(local(c), c.text) for c in doctor[0]] == [("FamilyName", "Doe"),
                                                       ("NamePrefix", "Dr")]
    assert len(empty) == 0 and empty.get("number") == "2"
    # an empty value inside a multi-valued attribute; a zero-length attribute
    assert [v.text for v in by_tag["00080008"]] == ["ORIGINAL", None, "AXIAL"]
    assert len(by_tag["00080050"]) == 0
    # private: no keyword; privateCreator where the block's creator is in the data set
    assert by_tag["00111001"].get("privateCreator") == 'ACME "1" <&>'
    assert "keyword" not in by_tag["00111001"].attrib
    assert "privateCreator" not in by_tag["00110010"].attrib  # the creator element itself
    assert "privateCreator" not in by_tag["00131010"].attrib
    assert base64.b64decode(by_tag["00111002"][0].text or "") == b"\x00\x01\x02"
    assert by_tag["7FE00010"][0].get("uri") == 'http://h/a?x=1&y="2"'
    assert by_tag["00280030"].get("keyword") == "PixelSpacing"
    assert [float(v.text or "") for v in by_tag["00280030"]] == [0.5, 0.25]
    assert by_tag["00280009"][0].text == "00181063"  # AT as 8 hex digits, as in JSON
    # nested sequences, items numbered from 1; an empty item stays an Item
    items = list(by_tag["00081110"])
    assert [i.get("number") for i in items] == ["1", "2"] and len(items[1]) == 0
    code = items[0].find(f"{NS}DicomAttribute[@tag='0040A043']/{NS}Item/"
                         f"{NS}DicomAttribute[@tag='00080100']/{NS}Value")
    assert code is not None and code.text == "X<1>"


def test_index_json_nulls_and_unsorted_members() -> None:
    """The index's JSON: null for empty values (PS3.18 F.2.5), members in any order."""
    json_ds = {"00200013": {"vr": "IS", "Value": [7]},
               "00080008": {"vr": "CS", "Value": ["A", None, "B"]},
               "00100010": {"vr": "PN", "Value": [None, {"Alphabetic": "X^Y"}]},
               "00100020": {"vr": "LO", "Value": ["lone \ud800 surrogate"]}}
    root = parse(to_xml(json_ds))
    assert [a.get("tag") for a in root] == ["00080008", "00100010", "00100020", "00200013"]
    assert [v.text for v in root[0]] == ["A", None, "B"]
    assert [len(p) for p in root[1]] == [0, 1]
    assert root[2][0].text == "lone \ufffd surrogate"
    assert root[3][0].text == "7"


def _datasets(count: int, closed: list[bool]) -> Iterator[dict[str, Any]]:
    try:
        for n in range(count):
            yield {"00080018": {"vr": "UI", "Value": [f"1.2.{n}"]}}
    finally:
        closed.append(True)


@pytest.mark.parametrize("count", [1, 3, 40])
def test_multipart_body(count: int) -> None:
    closed: list[bool] = []
    body = b"".join(multipart_body(_datasets(count, closed), "BND"))
    assert closed == [True]
    assert body.endswith(b"\r\n--BND--\r\n")
    parts = body[: -len(b"--BND--\r\n")].split(b"--BND\r\n")
    assert parts[0] == b"" and len(parts) == count + 1
    for n, part in enumerate(parts[1:]):
        head, _, xml = part.partition(b"\r\n\r\n")
        assert head == b"Content-Type: application/dicom+xml"
        assert xml.endswith(b"\r\n")
        root = parse(xml[:-2].decode("utf-8"))
        assert root[0][0].text == f"1.2.{n}"


def test_multipart_body_closes_its_source_when_abandoned() -> None:
    closed: list[bool] = []
    chunks = multipart_body(_datasets(1000, closed), "BND")
    next(chunks)
    chunks.close()
    assert closed == [True]


@pytest.mark.parametrize(("accept", "expected"), [
    (None, DICOM_JSON),
    ("*/*", DICOM_JSON),
    ("application/json", DICOM_JSON),
    ('multipart/related; type="application/dicom+xml"', DICOM_XML),
    ("multipart/related; type=application/dicom+xml", DICOM_XML),
    ("application/dicom+xml", DICOM_XML),
    ("application/dicom+xml; q=0.5, application/dicom+json", DICOM_JSON),
    ('application/dicom+json; q=0.2, multipart/related; type="application/dicom+xml"',
     DICOM_XML),
    ("text/html, application/dicom+xml; q=0.1", DICOM_XML),
    ("text/html", None),
    ('multipart/related; type="application/dicom"', None),
    ("application/dicom+xml; q=0", None),
])
def test_dicom_model_negotiation(accept: str | None, expected: str | None) -> None:
    assert dicom_model_for(accept) == expected


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "image/jpeg"),
    ("*/*", "image/jpeg"),
    ("image/*", "image/jpeg"),
    ("image/png", "image/png"),
    ('multipart/related; type="image/gif"', "image/gif"),
    ("multipart/related", "image/jpeg"),
    ('multipart/related; type="image/webp", image/png; q=0.5', "image/png"),
    ('multipart/related; type="application/dicom"', None),
    ("application/dicom+json", None),
    ("image/webp", None),
])
def test_rendered_negotiation(accept: str | None, expected: str | None) -> None:
    assert rendered_type_for(accept) == expected
