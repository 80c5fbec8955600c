"""Matching (PS3.4 C.2.2.2) through the index, on both backends: every matching type at every
level, on names in several character sets. Expected results are written out from the
fixture table below, not computed by pacsnode's code."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import MRImageStorage

from pacsnode.core.archive import Archive
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.index.search import compile_search
from tests.unit.dicomdata import make_dataset

# accession, patient id, name, charset, birth date, study date, time, modalities, procedure
STUDIES = [
    ("ACC-1", "P1", "DOE^JOHN", None, "19500101", "20200105", "083000", ("CT",), "XR1"),
    ("ACC-2", "P2", "DOE^JANE", None, "19600101", "20200612", "141500", ("MR",), "MR7"),
    ("ACC_3", "P3", "Müller^Hans", "ISO_IR 100", "19700101", "20210301", "230000",
     ("CT", "PT"), "PET"),
    ("ACC%4", "P4", "Müller^Hannah", "ISO_IR 192", "19800101", "20210302", "000500",
     ("US",), "US1"),
    ("ACC-5", "P5", "Διονυσιος", "ISO_IR 126", "19900101", "20191231", "120000", ("CR",),
     "XR1"),
    ("ACC-6", "P6", "Yamada^Tarou=山田^太郎=やまだ^たろう", ["", "ISO 2022 IR 87"],
     "20000101", "20220101", "090000", ("MR",), "MR7"),
]


def _dataset(row: tuple, series_no: int, modality: str, instance_no: int) -> Dataset:
    acc, pid, name, charset, birth, date, time, _mods, proc = row
    ds = make_dataset(patient_id=pid, patient_name="X", modality=modality,
                      instance_number=instance_no,
                      sop_class=MRImageStorage if modality == "MR" else make_dataset().SOPClassUID)
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientBirthDate = birth
    ds.AccessionNumber = acc
    ds.StudyDate, ds.StudyTime = date, time
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.511.1.{pid[1:]}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.{series_no}"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{instance_no}"
    ds.SeriesNumber = series_no
    ds.InstitutionName = "GENERAL HOSPITAL" if pid in ("P1", "P2") else "CLINIC"
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = proc, "LOCAL", proc
    ds.ProcedureCodeSequence = Sequence([item])
    return ds


@pytest.fixture
def loaded(archive: Archive) -> Archive:
    for row in STUDIES:
        for series_no, modality in enumerate(row[7], start=1):
            for instance_no in (1, 2):
                result = archive.ingest(_dataset(row, series_no, modality, instance_no))
                assert result.ok, result.detail
    return archive


def find(archive: Archive, level: Level, out: int, **keys: tuple[str, object]) -> set[str]:
    """Run a search with keys ``keyword=(vr, value)``; the set of values of tag ``out``."""
    from pydicom.datadict import tag_for_keyword

    conditions = {}
    for keyword, (vr, value) in keys.items():
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        conditions[tag] = matching.parse(vr, value)
    found = set()
    for match in archive.search(level, conditions):
        elem = match.attrs.get(f"{out:08X}", {})
        found.add(matching.json_text((elem.get("Value") or [""])[0]))
    return found


ACCESSION = 0x00080050
STUDY = Level.STUDY


def accs(*numbers: int) -> set[str]:
    return {STUDIES[n - 1][0] for n in numbers}


@pytest.mark.parametrize(("value", "expected"), [
    ("DOE^JOHN", (1,)),
    ("doe^john", (1,)),  # PN: case-insensitive
    ("DOE*", (1, 2)),
    ("DOE^JA?E", (2,)),
    ("*^JOHN", (1,)),
    ("MÜLLER*", (3, 4)),  # Latin-1 and UTF-8 stored names match alike
    ("m?ller^han*", (3, 4)),  # ? is one character, also a non-ASCII one
    ("M?LER*", ()),
    ("Διονυσιος", (5,)),
    ("ΔΙΟΝ*", (5,)),
    ("山田*", (6,)),  # the ideographic component group
    ("YAMADA^TAROU", (6,)),  # the alphabetic group alone
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", (6,)),
    ("", (1, 2, 3, 4, 5, 6)),  # universal
    ("*", (1, 2, 3, 4, 5, 6)),
])
def test_person_name(loaded, value, expected):
    assert find(loaded, STUDY, ACCESSION, PatientName=("PN", value)) == accs(*expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("ACC_3", (3,)),  # '_' is not a wildcard
    ("ACC_*", (3,)),
    ("ACC%4", (4,)),  # '%' neither
    ("ACC-?", (1, 2, 5, 6)),
    ("acc-1", ()),  # case-sensitive
    ("ACC-1\\ACC-2", (1, 2)),  # several values: any of them
])
def test_text_single_and_wildcard(loaded, value, expected):
    assert find(loaded, STUDY, ACCESSION, AccessionNumber=("SH", value)) == accs(*expected)


@pytest.mark.parametrize(("vr", "key", "value", "expected"), [
    ("DA", "StudyDate", "20200101-20201231", (1, 2)),
    ("DA", "StudyDate", "-20191231", (5,)),
    ("DA", "StudyDate", "20210302-", (4, 6)),
    ("DA", "StudyDate", "20200105", (1,)),
    ("DA", "StudyDate", "2020*", ()),  # no wildcards in dates
    ("TM", "StudyTime", "0800-0900", (1, 6)),  # 09:00:00 is within "0900"
    ("TM", "StudyTime", "2300-", (3,)),
    ("TM", "StudyTime", "2300-0100", ()),  # never across midnight
    ("TM", "StudyTime", "14", (2,)),  # reduced precision: the whole hour
    ("DA", "PatientBirthDate", "-19651231", (1, 2)),
])
def test_date_time(loaded, vr, key, value, expected):
    assert find(loaded, STUDY, ACCESSION, **{key: (vr, value)}) == accs(*expected)


def test_uid_list_and_multi_valued_columns(loaded):
    uids = "1.2.826.0.1.3680043.10.511.1.2\\1.2.826.0.1.3680043.10.511.1.5"
    assert find(loaded, STUDY, ACCESSION, StudyInstanceUID=("UI", uids)) == accs(2, 5)
    assert find(loaded, STUDY, ACCESSION, StudyInstanceUID=("UI", "1.2.826.0.1.3680043.10.511.1")
                ) == set()  # a UID is never a prefix or wildcard
    assert find(loaded, STUDY, ACCESSION, ModalitiesInStudy=("CS", "PT")) == accs(3)
    assert find(loaded, STUDY, ACCESSION, ModalitiesInStudy=("CS", "CT")) == accs(1, 3)
    assert find(loaded, STUDY, ACCESSION, ModalitiesInStudy=("CS", "MR\\US")) == accs(2, 4, 6)


def test_keys_matched_on_the_stored_json(loaded):
    # Institution Name is not a column: matched on the series' DICOM JSON
    assert find(loaded, Level.SERIES, ACCESSION, InstitutionName=("LO", "GENERAL*")
                ) == accs(1, 2)
    # sequence matching: any item matching every key of the query item
    item = [(0x00080100, matching.parse("SH", "XR1"))]
    keys = {0x00081032: matching.parse("SQ", None, item)}
    found = {matching.json_text(m.attrs["00080050"]["Value"][0])
             for m in loaded.search(STUDY, keys)}
    assert found == accs(1, 5)


def test_empty_value_matching(loaded):
    # ReferringPhysicianName is empty everywhere; StudyDescription never
    assert find(loaded, STUDY, ACCESSION, ReferringPhysicianName=("PN", '""')) == accs(
        1, 2, 3, 4, 5, 6)
    assert find(loaded, STUDY, ACCESSION, StudyDescription=("LO", '""')) == set()


def test_every_level(loaded):
    assert find(loaded, Level.PATIENT, 0x00100020, PatientName=("PN", "DOE*")) == {"P1", "P2"}
    assert find(loaded, Level.PATIENT, 0x00100020, PatientID=("LO", "P6")) == {"P6"}
    series_uids = find(loaded, Level.SERIES, 0x0020000E,
                       StudyInstanceUID=("UI", "1.2.826.0.1.3680043.10.511.1.3"))
    assert series_uids == {"1.2.826.0.1.3680043.10.511.1.3.1", "1.2.826.0.1.3680043.10.511.1.3.2"}
    assert find(loaded, Level.SERIES, 0x0020000E, Modality=("CS", "PT")) == {
        "1.2.826.0.1.3680043.10.511.1.3.2"}
    assert find(loaded, Level.SERIES, 0x00080050, SeriesNumber=("IS", "2")) == accs(3)
    images = find(loaded, Level.IMAGE, 0x00080018,
                  SeriesInstanceUID=("UI", "1.2.826.0.1.3680043.10.511.1.1.1"),
                  InstanceNumber=("IS", "2"))
    assert images == {"1.2.826.0.1.3680043.10.511.1.1.1.2"}


def test_derived_keys_are_returned(loaded):
    matches = list(loaded.search(STUDY, {0x00080050: matching.parse("SH", "ACC_3")}))
    assert len(matches) == 1
    attrs = matches[0].attrs
    assert attrs["00201206"]["Value"] == [2]  # Number of Study Related Series
    assert attrs["00201208"]["Value"] == [4]
    assert sorted(attrs["00080061"]["Value"]) == ["CT", "PT"]


def test_keys_below_the_level_are_reported(loaded):
    plan = compile_search(STUDY, {0x00200013: matching.parse("IS", "1"),
                                  0x00080050: matching.parse("SH", "ACC-1")})
    assert plan.unmatchable == (0x00200013,)


def _values(items: Iterable[str]) -> list[str]:
    return sorted(items)


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("*", "", True), ("a*c", "abbc", True), ("a?c", "abc", True), ("a?c", "ac", False),
    ("?", "ü", True), ("*b", "abc", False), ("a**", "a", True),
])
def test_wildcard_in_python(pattern, text, expected):
    assert matching.wildcard_match(pattern, text) is expected


@pytest.mark.parametrize("json_key", [False, True])
def test_paging_is_stable_and_counts_only_matches(loaded, json_key):
    """limit/offset page through the matches in one stable order; with a key matched on the
    series' stored JSON (InstitutionName), rows that key drops do not count towards either."""
    from pydicom.datadict import tag_for_keyword

    keys = {tag_for_keyword("InstitutionName"): matching.parse("LO", "CLINIC")} \
        if json_key else {}
    uid_tag = tag_for_keyword("SeriesInstanceUID")

    def uids(**paging):
        return [m.attrs[f"{uid_tag:08X}"]["Value"][0]
                for m in loaded.search(Level.SERIES, keys, **paging)]

    everything = uids()
    assert len(everything) == (5 if json_key else 7)
    pages = [uids(limit=3, offset=n) for n in range(0, len(everything), 3)]
    assert [u for page in pages for u in page] == everything
    assert uids(limit=2, offset=1) == everything[1:3]
    assert uids(offset=len(everything)) == []
    assert uids(limit=0) == []
