"""C-FIND SCP (PS3.4 C.4.1, C.6) driven by DCMTK's findscu, on both index backends.

The corpus: patients whose names exercise matching — DOE^JOHN, DOE^JANE, a German name in
ISO_IR 100 and in UTF-8, a Greek name in ISO_IR 126, and the Japanese name of PS3.5 H.3.1 in
ISO 2022 IR 87 — with several dates, modalities and SOP classes. Queries are written as
files with pydicom (so each carries its own Specific Character Set and encoding) and sent
with findscu; responses are written by findscu (-X) and read back with pydicom. Expected
results come from the corpus table, not from pacsnode.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from pacsnode.synthetic import generate_corpus
from tests.conftest import PacsnodeServer
from tests.findscu import run_findscu
from tests.unit.dicomdata import make_dataset

pytestmark = pytest.mark.dcmtk

STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # PS3.5 H.3.1
ROOT = "1.2.826.0.1.3680043.10.511.2"

# accession, patient id, name, charset, study date, modalities (one series each), SOP class
STUDIES = [
    ("A1", "P1", "DOE^JOHN", None, "20200105", ("CT",)),
    ("A2", "P2", "DOE^JANE", None, "20200612", ("MR", "MR")),
    ("A3", "P3", "Müller^Jürgen", "ISO_IR 100", "20210301", ("CT", "PT")),
    ("A4", "P4", "Müller^Jürgen", "ISO_IR 192", "20210302", ("US",)),
    ("A5", "P5", "Διονυσιος", "ISO_IR 126", "20191231", ("CR",)),
    ("A6", "P6", JAPANESE, ["", "ISO 2022 IR 87"], "20220101", ("MR",)),
    ("A7", "P1", "DOE^JOHN", None, "20230707", ("MR",)),  # a second study of P1
]


def write_corpus(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (acc, pid, name, charset, date, modalities) in enumerate(STUDIES, start=1):
        for s, modality in enumerate(modalities, start=1):
            for i in (1, 2):
                ds = make_dataset(patient_id=pid, patient_name="X", modality=modality,
                                  instance_number=i)
                if modality == "MR":
                    ds.SOPClassUID = MRImageStorage
                if charset is not None:
                    ds.SpecificCharacterSet = charset
                ds.PatientName = name
                ds.AccessionNumber = acc
                ds.StudyDate = date
                ds.StudyInstanceUID = f"{ROOT}.{n}"
                ds.SeriesInstanceUID = f"{ROOT}.{n}.{s}"
                ds.SOPInstanceUID = f"{ROOT}.{n}.{s}.{i}"
                ds.SeriesNumber = s
                path = directory / f"{n}-{s}-{i}.dcm"
                ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.save_as(path, enforce_file_format=True)
                paths.append(path)
    return paths


@pytest.fixture(scope="module")
def server(module_server, tmp_path_factory) -> PacsnodeServer:
    """One server per backend for the module, holding the corpus (queries change nothing)."""
    corpus = tmp_path_factory.mktemp("corpus")
    write_corpus(corpus)
    module_server.cli("import", str(corpus))
    return module_server


def findscu(server: PacsnodeServer, work: Path, level: str, keys: dict[str, object], *,
            charset: str | list[str] | None = None, model: str = STUDY_ROOT,
            extra: tuple[str, ...] = ()) -> tuple[list[Dataset], str]:
    """Send one C-FIND (the query written as a file by pydicom); the responses and output."""
    query = Dataset()
    if charset is not None:
        query.SpecificCharacterSet = charset
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return run_findscu(server, work, query, sop_class=model,
                       model_flag="-S" if model == STUDY_ROOT else "-P", options=extra)


def values(responses: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(r.get(keyword, "")) for r in responses)


@pytest.mark.parametrize(("name", "charset", "expected"), [
    ("DOE^JOHN", None, ["A1", "A7"]),
    ("doe*", None, ["A1", "A2", "A7"]),  # PN matching is case-insensitive
    ("DOE^JA?E", None, ["A2"]),
    ("Müller*", "ISO_IR 100", ["A3", "A4"]),  # Latin-1 query; Latin-1 and UTF-8 stored
    ("MÜLLER^JÜRGEN", "ISO_IR 192", ["A3", "A4"]),
    ("M?ller*", None, ["A3", "A4"]),  # ? is one character, also a non-ASCII one
    ("Διονυσιος", "ISO_IR 126", ["A5"]),
    ("山田^太郎", ["", "ISO 2022 IR 87"], ["A6"]),
    (JAPANESE, ["", "ISO 2022 IR 87"], ["A6"]),
    ("Yamada*", None, ["A6"]),
])
def test_study_level_names(server, tmp_path, name, charset, expected):
    responses, _ = findscu(server, tmp_path / "q", "STUDY",
                           {"PatientName": name, "AccessionNumber": "",
                            "StudyInstanceUID": ""}, charset=charset)
    assert values(responses, "AccessionNumber") == expected
    for rsp in responses:
        assert rsp.QueryRetrieveLevel == "STUDY"
        assert rsp.RetrieveAETitle == server.aet
        # only the requested keys, plus the level's unique key and the fixed ones
        assert {e.keyword for e in rsp} <= {
            "SpecificCharacterSet", "QueryRetrieveLevel", "RetrieveAETitle", "PatientName",
            "AccessionNumber", "StudyInstanceUID"}


def test_names_come_back_intact_in_a_charset_that_holds_them(server, tmp_path):
    """Nothing is dropped or turned into '?': a Latin-1 query gets Latin-1 back when that can
    hold every value, UTF-8 otherwise; the decoded names equal the stored ones."""
    responses, _ = findscu(server, tmp_path / "latin", "STUDY",
                           {"PatientName": "M*", "AccessionNumber": ""}, charset="ISO_IR 100")
    assert [str(r.PatientName) for r in responses] == ["Müller^Jürgen", "Müller^Jürgen"]
    assert {r.SpecificCharacterSet for r in responses} == {"ISO_IR 100"}
    responses, _ = findscu(server, tmp_path / "all", "STUDY",
                           {"PatientName": "", "AccessionNumber": ""}, charset="ISO_IR 100")
    names = {str(r.AccessionNumber): str(r.PatientName) for r in responses}
    assert names == {acc: name for acc, _, name, *_ in STUDIES}
    by_acc = {str(r.AccessionNumber): r for r in responses}
    assert by_acc["A3"].SpecificCharacterSet == "ISO_IR 100"
    assert by_acc["A5"].SpecificCharacterSet == "ISO_IR 192"  # Greek is not Latin-1
    assert by_acc["A6"].SpecificCharacterSet == "ISO_IR 192"
    # no character set in the request: ASCII answers plain, others in UTF-8
    responses, _ = findscu(server, tmp_path / "none", "STUDY",
                           {"PatientName": "", "AccessionNumber": ""})
    by_acc = {str(r.AccessionNumber): r for r in responses}
    assert "SpecificCharacterSet" not in by_acc["A1"]
    assert by_acc["A3"].SpecificCharacterSet == "ISO_IR 192"
    assert str(by_acc["A6"].PatientName) == JAPANESE


@pytest.mark.parametrize(("keys", "expected"), [
    ({"StudyDate": "20200101-20201231"}, ["A1", "A2"]),
    ({"StudyDate": "-20191231"}, ["A5"]),
    ({"StudyDate": "20220101-"}, ["A6", "A7"]),
    ({"StudyDate": "20210301"}, ["A3"]),
    ({"AccessionNumber": "A?"}, ["A1", "A2", "A3", "A4", "A5", "A6", "A7"]),
    ({"PatientID": "P1"}, ["A1", "A7"]),
    ({"ModalitiesInStudy": "PT"}, ["A3"]),
    ({"StudyInstanceUID": [f"{ROOT}.2", f"{ROOT}.5"]}, ["A2", "A5"]),  # list of UID
])
def test_study_level_keys(server, tmp_path, keys, expected):
    query = {"AccessionNumber": "", **keys}
    if "AccessionNumber" in keys:
        query["AccessionNumber"] = keys["AccessionNumber"]
    responses, _ = findscu(server, tmp_path / "q", "STUDY", query)
    assert values(responses, "AccessionNumber") == expected


def test_counts_and_derived_keys(server, tmp_path):
    responses, _ = findscu(server, tmp_path / "q", "STUDY",
                           {"AccessionNumber": "A3", "NumberOfStudyRelatedSeries": "",
                            "NumberOfStudyRelatedInstances": "", "ModalitiesInStudy": ""})
    assert len(responses) == 1
    rsp = responses[0]
    assert int(rsp.NumberOfStudyRelatedSeries) == 2
    assert int(rsp.NumberOfStudyRelatedInstances) == 4
    assert sorted(rsp.ModalitiesInStudy) == ["CT", "PT"]


def test_patient_root_every_level(server, tmp_path):
    responses, _ = findscu(server, tmp_path / "p", "PATIENT",
                           {"PatientID": "", "PatientName": "DOE*",
                            "NumberOfPatientRelatedStudies": ""}, model=PATIENT_ROOT)
    assert {(str(r.PatientID), int(r.NumberOfPatientRelatedStudies)) for r in responses} == {
        ("P1", 2), ("P2", 1)}
    responses, _ = findscu(server, tmp_path / "s", "STUDY",
                           {"PatientID": "P1", "StudyInstanceUID": "", "StudyDate": ""},
                           model=PATIENT_ROOT)
    assert values(responses, "StudyDate") == ["20200105", "20230707"]
    responses, _ = findscu(server, tmp_path / "se", "SERIES",
                           {"PatientID": "P2", "StudyInstanceUID": f"{ROOT}.2",
                            "SeriesInstanceUID": "", "Modality": "",
                            "NumberOfSeriesRelatedInstances": ""}, model=PATIENT_ROOT)
    assert values(responses, "SeriesInstanceUID") == [f"{ROOT}.2.1", f"{ROOT}.2.2"]
    assert {int(r.NumberOfSeriesRelatedInstances) for r in responses} == {2}
    responses, _ = findscu(server, tmp_path / "i", "IMAGE",
                           {"PatientID": "P3", "StudyInstanceUID": f"{ROOT}.3",
                            "SeriesInstanceUID": f"{ROOT}.3.2", "SOPInstanceUID": "",
                            "InstanceNumber": "2"}, model=PATIENT_ROOT)
    assert values(responses, "SOPInstanceUID") == [f"{ROOT}.3.2.2"]


def test_study_root_series_and_image_levels(server, tmp_path):
    responses, _ = findscu(server, tmp_path / "se", "SERIES",
                           {"StudyInstanceUID": f"{ROOT}.3", "SeriesInstanceUID": "",
                            "Modality": "PT"})
    assert values(responses, "SeriesInstanceUID") == [f"{ROOT}.3.2"]
    responses, _ = findscu(server, tmp_path / "i", "IMAGE",
                           {"StudyInstanceUID": f"{ROOT}.2", "SeriesInstanceUID": f"{ROOT}.2.1",
                            "SOPInstanceUID": "", "SOPClassUID": ""})
    assert values(responses, "SOPInstanceUID") == [f"{ROOT}.2.1.1", f"{ROOT}.2.1.2"]
    assert {str(r.SOPClassUID) for r in responses} == {MRImageStorage}


def test_refusals_and_warnings(server, tmp_path):
    # Study Root has no PATIENT level: 0xA900 Identifier does not match SOP Class
    responses, output = findscu(server, tmp_path / "a", "PATIENT", {"PatientName": ""})
    assert responses == [] and "DataSetDoesNotMatchSOPClass" in output
    # a key below the query level cannot be matched: Pending 0xFF01 for every match
    responses, output = findscu(server, tmp_path / "b", "STUDY",
                                {"AccessionNumber": "A1", "InstanceNumber": "1"})
    assert values(responses, "AccessionNumber") == ["A1"]
    assert "Pending: WarningUnsupportedOptionalKeys" in output, output[-2000:]
    # the server still serves
    responses, _ = findscu(server, tmp_path / "c", "STUDY", {"AccessionNumber": "A2"})
    assert values(responses, "AccessionNumber") == ["A2"]


def test_cancel_stops_the_matches(pacsnode_server, tmp_path):
    """findscu sends C-CANCEL after two responses; of 1,000 matches at most half go out (the
    responses already in flight when the cancel is read: a few milliseconds' worth, more on
    a loaded machine), and the final status is Cancel (0xFE00)."""
    server = pacsnode_server()
    corpus = tmp_path / "many"
    generate_corpus(corpus, patients=10, studies_per_patient=2, series_per_study=2,
                    instances_per_series=25, rows=8, columns=8, seed=7)
    server.cli("import", str(corpus))
    responses, output = findscu(server, tmp_path / "q", "IMAGE", {"SOPInstanceUID": ""},
                                extra=("--cancel", "2"))
    assert 2 <= len(responses) < 500, len(responses)
    assert "Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in output, \
        output[-2000:]
    assert server.alive()
