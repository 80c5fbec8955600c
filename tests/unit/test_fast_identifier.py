"""The C-FIND response encoder writes the same bytes as pydicom (through pynetdicom's
``encode``) for the identifiers it handles, and declines the ones it does not."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from pacsnode.dimse.fast_identifier import encode_identifier

JAPANESE = {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎",
            "Phonetic": "やまだ^たろう"}

CASES = [
    ([""], {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]},
            "00080050": {"vr": "SH", "Value": ["ACC1"]},
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},  # odd: NUL padded
            "00080061": {"vr": "CS", "Value": ["CT", "MR"]},
            "00201208": {"vr": "IS", "Value": [12]},
            "00280010": {"vr": "US", "Value": [512]},
            "00080020": {"vr": "DA"},  # empty
            "00080054": {"vr": "AE", "Value": ["PACSNODE"]}}),
    (["ISO_IR 100"], {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]},
                      "00081030": {"vr": "LO", "Value": ["Thorax ä"]}}),
    (["ISO_IR 192"], {"00100010": {"vr": "PN", "Value": [JAPANESE]},
                      "00081030": {"vr": "LO", "Value": ["Ελληνικά"]}}),
    (["ISO_IR 126"], {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Διονυσιος"}]}}),
    (["", "ISO 2022 IR 87"], {"00100010": {"vr": "PN", "Value": [JAPANESE]},
                              "00100020": {"vr": "LO", "Value": ["P1"]}}),
    # a worklist answer: a sequence with items (one empty), a nested sequence, an empty one
    (["ISO_IR 192"], {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]},
                      "00400100": {"vr": "SQ", "Value": [
                          {"00080060": {"vr": "CS", "Value": ["CT"]},
                           "00400001": {"vr": "AE", "Value": ["CT01"]},
                           "00400006": {"vr": "PN", "Value": [{"Alphabetic": "Ärztin^A"}]},
                           "00400008": {"vr": "SQ", "Value": [
                               {"00080100": {"vr": "SH", "Value": ["X1"]}}]}},
                          {}]},
                      "00081032": {"vr": "SQ"}}),
]


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize(("charset", "elements"), CASES)
def test_same_bytes_as_pydicom(charset, elements, implicit):
    elements = dict(elements)
    if charset != [""]:
        elements["00080005"] = {"vr": "CS", "Value": charset}
    ds = Dataset.from_json(elements)
    expected = encode(ds, implicit, True, False)
    assert encode_identifier(elements, charset, implicit) == expected


@pytest.mark.parametrize("element", [
    {"vr": "SQ", "Value": [{"00282000": {"vr": "OB", "InlineBinary": "AAAA"}}]},
    {"vr": "OB", "InlineBinary": "AAAA"},
    {"vr": "OW", "BulkDataURI": "7FE00010"},
])
def test_declines_what_it_does_not_write(element):
    assert encode_identifier({"00081032": element}, [""], True) is None
