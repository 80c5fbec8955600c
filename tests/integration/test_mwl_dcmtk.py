"""Modality Worklist C-FIND SCP (PS3.4 Annex K) driven by DCMTK's ``findscu -W``, on both
index backends, against ``pacsnode serve``.

The worklist: DCMTK ``.wl`` files written with pydicom (with and without file meta, implicit
and explicit VR, ASCII, UTF-8 and the Japanese ISO 2022 IR 87 name of PS3.5 H.3.1) loaded
with ``pacsnode worklist import``, one item added with ``pacsnode worklist add`` and one
imported item cancelled with ``pacsnode worklist cancel``. Queries are written as files with
pydicom (each with its own Specific Character Set) and sent with findscu; responses are
written by findscu (-X) and read back with pydicom. Expected results come from the table
below, not from pacsnode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacsnode.core import worklist
from pacsnode.core.archive import Archive
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk
from tests.findscu import find_worklist

pytestmark = pytest.mark.dcmtk

MWL_FIND = "1.2.840.10008.5.1.4.31"
JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # PS3.5 H.3.1
ROOT = "1.2.826.0.1.3680043.10.511.5"

# accession, patient id, name, charset, station AE, modality, date, time, performing
# physician, requested procedure id, how the .wl file is written
ITEMS = [
    ("W1", "P1", "DOE^JOHN", None, "CT1", "CT", "20240315", "080000", "SMITH^ANNA", "RQ1",
     "bare-implicit"),
    ("W2", "P2", "DOE^JANE", None, "MR1", "MR", "20240315", "103000", "JONES^BOB", "RQ2",
     "meta"),
    ("W3", "P3", "Müller^Jürgen", "ISO_IR 192", "CT1", "CT", "20240316", "090000",
     "Smith^Anna", "RQ3", "meta"),
    ("W4", "P4", JAPANESE, ["", "ISO 2022 IR 87"], "US1", "US", "20240317", "140000", "",
     "RQ4", "bare-explicit"),
    ("W5", "P5", "ROE^RICHARD", None, "CT2", "CT", "20240315", "150000", "smith^anna", "RQ5",
     "meta"),  # no SPS ID, no Study Instance UID: generated
    ("W6", "P1", "DOE^JOHN", None, "CT1", "CT", "20240315", "090000", "SMITH^ANNA", "RQ6",
     "meta"),  # cancelled
]
# added with `pacsnode worklist add`
W7 = ("W7", "P7", "BROWN^ALICE", "CR1", "CR", "202403180730", "WHITE^TOM", "RQ7", "CHEST PA")
ACTIVE = ["W1", "W2", "W3", "W4", "W5", "W7"]


def write_wl(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (acc, pid, name, charset, aet, mod, date, time, phys, rp, how) in enumerate(
            ITEMS, start=1):
        ds = Dataset()
        if charset is not None:
            ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.PatientID = pid
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "F" if n % 2 else "M"
        ds.AccessionNumber = acc
        ds.RequestedProcedureID = rp
        ds.RequestedProcedureDescription = f"PROCEDURE {n}"
        ds.RequestedProcedurePriority = "ROUTINE"
        ds.ReferringPhysicianName = "REFERRER^ONE"
        sps = Dataset()
        sps.ScheduledStationAETitle = aet
        sps.Modality = mod
        sps.ScheduledProcedureStepStartDate = date
        sps.ScheduledProcedureStepStartTime = time
        sps.ScheduledPerformingPhysicianName = phys
        sps.ScheduledProcedureStepDescription = f"STEP {n}"
        code = Dataset()
        code.CodeValue = f"C{n}"
        code.CodingSchemeDesignator = "99LOCAL"
        code.CodeMeaning = f"PROTOCOL {n}"
        sps.ScheduledProtocolCodeSequence = [code]
        if acc != "W5":
            sps.ScheduledProcedureStepID = f"SPS-{n}"
            ds.StudyInstanceUID = f"{ROOT}.{n}"
        ds.ScheduledProcedureStepSequence = [sps]
        path = directory / f"item{n}.wl"
        if how == "meta":
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = MWL_FIND
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.save_as(path, enforce_file_format=True)
        else:  # a bare data set, as dump2dcm writes without +F
            ds.save_as(path, implicit_vr=how == "bare-implicit", little_endian=True)
        paths.append(path)
    return paths


def worklist_cli(server: PacsnodeServer, sub: str, *args: str,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pacsnode", "worklist", sub, *server.archive_args(), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def listed(server: PacsnodeServer, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(worklist_cli(server, "list", "--json", *args).stdout))


@pytest.fixture(scope="module")
def server(module_server: PacsnodeServer, tmp_path_factory: pytest.TempPathFactory
           ) -> PacsnodeServer:
    """One server per backend for the module, holding the worklist (queries change
    nothing)."""
    paths = write_wl(tmp_path_factory.mktemp("wl"))
    out = worklist_cli(module_server, "import", *map(str, paths)).stdout
    assert f"{len(ITEMS)} added, 0 rejected" in out, out
    acc, pid, name, aet, mod, start, phys, rp, proc = W7
    out = worklist_cli(module_server, "add", "--patient-name", name, "--patient-id", pid,
                       "--accession", acc, "--station-aet", aet, "--modality", mod,
                       "--start", start, "--physician", phys, "--procedure-id", rp,
                       "--procedure", proc, "--sex", "F", "--birth-date", "19800202").stdout
    assert out.startswith("added worklist item"), out
    (w6,) = [i for i in listed(module_server) if i["accession"] == "W6"]
    out = worklist_cli(module_server, "cancel", str(w6["id"])).stdout
    assert out.strip() == f"cancelled worklist item {w6['id']}"
    return module_server


def findscu(server: PacsnodeServer, work: Path, keys: dict[str, Any],
            sps: dict[str, Any] | None = None, *, charset: str | list[str] | None = None,
            ) -> tuple[list[Dataset], str]:
    """Send one Modality Worklist C-FIND; the responses and findscu's output. ``sps``: the
    Scheduled Procedure Step Sequence item's keys (the usual return keys by default)."""
    work.mkdir(parents=True, exist_ok=True)
    query = Dataset()
    if charset is not None:
        query.SpecificCharacterSet = charset
    for keyword, value in {"AccessionNumber": "", **keys}.items():
        setattr(query, keyword, value)
    item = Dataset()
    for keyword, value in {"ScheduledStationAETitle": "", "Modality": "",
                           "ScheduledProcedureStepStartDate": "",
                           "ScheduledProcedureStepStartTime": "", **(sps or {})}.items():
        setattr(item, keyword, value)
    query.ScheduledProcedureStepSequence = [item]
    responses, output = find_worklist(server, work, query)
    assert "Final Find Response (Success)" in output, output[-2000:]
    return responses, output


def accessions(responses: list[Dataset]) -> list[str]:
    return sorted(str(r.get("AccessionNumber", "")) for r in responses)


@pytest.mark.parametrize(("keys", "sps", "expected"), [
    ({}, {}, ACTIVE),  # cancelled W6 never answers
    ({}, {"ScheduledStationAETitle": "CT1"}, ["W1", "W3"]),
    ({}, {"ScheduledStationAETitle": "CT*"}, ["W1", "W3", "W5"]),
    ({}, {"Modality": "CT"}, ["W1", "W3", "W5"]),
    ({}, {"Modality": "CR"}, ["W7"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240315"}, ["W1", "W2", "W5"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240316-20240317"}, ["W3", "W4"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240317-"}, ["W4", "W7"]),
    ({}, {"ScheduledProcedureStepStartDate": "-20240315"}, ["W1", "W2", "W5"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240315",
          "ScheduledProcedureStepStartTime": "0800-1100"}, ["W1", "W2"]),
    ({}, {"ScheduledProcedureStepStartDate": "20240315",
          "ScheduledProcedureStepStartTime": "1200-"}, ["W5"]),
    ({}, {"ScheduledPerformingPhysicianName": "SMITH^ANNA"}, ["W1", "W3", "W5"]),
    ({}, {"ScheduledPerformingPhysicianName": "smi*"}, ["W1", "W3", "W5"]),
    ({}, {"ScheduledPerformingPhysicianName": "WHITE^TOM"}, ["W7"]),
    ({"PatientName": "doe*"}, {}, ["W1", "W2"]),
    ({"PatientName": "DOE^JOHN"}, {}, ["W1"]),
    ({"PatientName": "B*ALICE"}, {}, ["W7"]),
    ({"PatientID": "P5"}, {}, ["W5"]),
    ({"PatientID": "P1"}, {}, ["W1"]),
    ({"AccessionNumber": "W3"}, {}, ["W3"]),
    ({"RequestedProcedureID": "RQ4"}, {}, ["W4"]),
    ({"RequestedProcedureID": "RQ7"}, {}, ["W7"]),
    ({}, {"ScheduledStationAETitle": "CT1", "ScheduledProcedureStepStartDate": "20240315"},
     ["W1"]),
    ({"PatientName": "DOE*"}, {"Modality": "CT"}, ["W1"]),
    ({}, {"ScheduledStationAETitle": "CT2", "ScheduledPerformingPhysicianName": "SMITH*"},
     ["W5"]),
    ({}, {"Modality": "MR", "ScheduledProcedureStepStartDate": "20240315",
          "ScheduledProcedureStepStartTime": "1000-1100"}, ["W2"]),
    ({"PatientSex": "F"}, {"Modality": "CT", "ScheduledProcedureStepStartDate": "20240316"},
     ["W3"]),
    ({"PatientID": "P2"}, {"Modality": "CT"}, []),
])
def test_matching_keys(server: PacsnodeServer, tmp_path: Path, keys: dict[str, Any],
                       sps: dict[str, Any], expected: list[str]) -> None:
    responses, _ = findscu(server, tmp_path / "q", keys, sps)
    assert accessions(responses) == expected


def test_response_holds_the_requested_keys(server: PacsnodeServer, tmp_path: Path) -> None:
    """Every matching and return key comes back (K.2.2.1.2, K.6.1.2.2): with the stored
    value, or zero length when the item has none; nothing else but Specific Character Set;
    inside the sequence item only its requested keys."""
    keys = {"AccessionNumber": "W5", "PatientName": "", "PatientID": "", "PatientWeight": "",
            "StudyInstanceUID": "", "RequestedProcedureID": "", "PatientBirthDate": "",
            "ReferringPhysicianName": "", "RequestedProcedureDescription": ""}
    sps = {"ScheduledProcedureStepID": "", "ScheduledPerformingPhysicianName": "",
           "ScheduledStationName": "", "ScheduledProcedureStepLocation": "",
           "ScheduledProcedureStepDescription": ""}
    responses, _ = findscu(server, tmp_path / "q", keys, sps)
    assert len(responses) == 1
    rsp = responses[0]
    assert {e.keyword for e in rsp} == {*keys, "ScheduledProcedureStepSequence"}
    assert (str(rsp.PatientName), rsp.PatientID, rsp.RequestedProcedureID,
            rsp.PatientBirthDate, str(rsp.ReferringPhysicianName),
            rsp.RequestedProcedureDescription) == (
        "ROE^RICHARD", "P5", "RQ5", "19700101", "REFERRER^ONE", "PROCEDURE 5")
    assert rsp.PatientWeight in (None, "")  # not stored: zero length
    assert str(rsp.StudyInstanceUID).startswith("2.25.")  # generated at import
    (item,) = rsp.ScheduledProcedureStepSequence
    assert {e.keyword for e in item} == {
        "ScheduledStationAETitle", "Modality", "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStartTime", *sps}
    assert (item.ScheduledStationAETitle, item.Modality, item.ScheduledProcedureStepStartDate,
            item.ScheduledProcedureStepStartTime, str(item.ScheduledPerformingPhysicianName),
            item.ScheduledProcedureStepDescription) == (
        "CT2", "CT", "20240315", "150000", "smith^anna", "STEP 5")
    assert item.ScheduledProcedureStepID.startswith("SPS")  # generated at import
    assert item.ScheduledStationName in (None, "")
    assert item.ScheduledProcedureStepLocation in (None, "")
    # a nested sequence: the requested code attributes of each stored item
    responses, _ = findscu(server, tmp_path / "code", {"AccessionNumber": "W2"},
                           {"ScheduledProtocolCodeSequence": [_code_query()]})
    (code,) = responses[0].ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence
    assert {e.keyword for e in code} == {"CodeValue", "CodeMeaning"}
    assert (code.CodeValue, code.CodeMeaning) == ("C2", "PROTOCOL 2")


def _code_query() -> Dataset:
    code = Dataset()
    code.CodeValue = ""
    code.CodeMeaning = ""
    return code


@pytest.mark.parametrize(("name", "charset", "expected", "response_charset"), [
    ("Müller^Jürgen", "ISO_IR 192", ["W3"], "ISO_IR 192"),
    ("MÜLLER*", "ISO_IR 100", ["W3"], "ISO_IR 100"),  # Latin-1 can hold it: Latin-1
    ("müller^jürgen", "ISO_IR 100", ["W3"], "ISO_IR 100"),
    ("山田^太郎", ["", "ISO 2022 IR 87"], ["W4"], ["", "ISO 2022 IR 87"]),
    (JAPANESE, ["", "ISO 2022 IR 87"], ["W4"], ["", "ISO 2022 IR 87"]),
    ("やまだ*", ["", "ISO 2022 IR 87"], ["W4"], ["", "ISO 2022 IR 87"]),
    ("Yamada*", None, ["W4"], "ISO_IR 192"),  # ASCII request, answered in UTF-8
])
def test_names_in_character_sets(server: PacsnodeServer, tmp_path: Path, name: str,
                                 charset: str | list[str] | None, expected: list[str],
                                 response_charset: str | list[str]) -> None:
    responses, _ = findscu(server, tmp_path / "q", {"PatientName": name}, charset=charset)
    assert accessions(responses) == expected
    stored = {"W3": "Müller^Jürgen", "W4": JAPANESE}
    for rsp in responses:
        assert str(rsp.PatientName) == stored[str(rsp.AccessionNumber)]
        got = rsp.SpecificCharacterSet
        assert (list(got) if not isinstance(got, str) else got) == response_charset


def test_cancelled_items_are_listed_but_never_answer(server: PacsnodeServer,
                                                     tmp_path: Path) -> None:
    everything = {i["accession"]: i for i in listed(server, "--all")}
    assert sorted(everything) == sorted([*ACTIVE, "W6"])
    assert everything["W6"]["state"] == "CANCELLED"
    assert sorted(i["accession"] for i in listed(server)) == ACTIVE
    responses, _ = findscu(server, tmp_path / "q", {"PatientID": "P1"},
                           {"ScheduledStationAETitle": "CT1"})
    assert accessions(responses) == ["W1"]
    text = worklist_cli(server, "list").stdout
    assert "BROWN^ALICE" in text and "W6" not in text
    again = worklist_cli(server, "cancel", str(everything["W6"]["id"]), check=False)
    assert again.returncode == 1 and "already CANCELLED" in again.stderr


def test_query_retrieve_find_still_served(server: PacsnodeServer, tmp_path: Path) -> None:
    """C-FIND of the Query/Retrieve models goes to the Q/R SCP on the same listener."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    qfile = tmp_path / "qr.dcm"
    query.file_meta = FileMetaDataset()
    query.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    query.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    query.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    query.save_as(qfile, enforce_file_format=True)
    proc = subprocess.run([dcmtk("findscu"), "-v", "-S", "-aec", server.aet, "127.0.0.1",
                           str(server.port), str(qfile)], capture_output=True,
                          env=DCMTK_ENV, timeout=60)
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0 and "Final Find Response (Success)" in output, output


def test_import_reports_bad_files(server: PacsnodeServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wl"
    ds = Dataset()
    ds.PatientName = "NO^SPS"
    ds.PatientID = "PX"
    ds.save_as(bad, implicit_vr=True, little_endian=True)
    result = worklist_cli(server, "import", str(bad), check=False)
    assert result.returncode == 1
    assert "exactly one item" in result.stderr and "0 added, 1 rejected" in result.stdout
    assert sorted(i["accession"] for i in listed(server)) == ACTIVE


def test_cancel_stops_the_matches(pacsnode_server: Any, tmp_path: Path) -> None:
    """findscu sends C-CANCEL after two responses; of 1,000 matches at most half go out, and
    the final status is Cancel (0xFE00) (the Q/R C-FIND's backpressure and cancel check).
    What goes out meanwhile is a few milliseconds' worth of responses, more on a loaded
    machine (166 of 300 seen under a parallel test run), hence the many matches."""
    server = pacsnode_server()
    archive = Archive.open(server.data_dir, db=server.db)
    try:
        for n in range(1000):
            worklist.add(archive.engine, worklist.dataset_from_fields(
                patient_name=f"MANY^{n}", patient_id=f"M{n}", modality="CT",
                station_aet="CT9", start="20240401"))
    finally:
        archive.close()
    work = tmp_path / "q"
    query = Dataset()
    sps = Dataset()
    sps.ScheduledStationAETitle = "CT9"
    query.PatientName = ""
    query.ScheduledProcedureStepSequence = [sps]
    responses, output = find_worklist(server, work, query, "--cancel", "2")
    assert 2 <= len(responses) < 500, len(responses)
    assert "Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in output, \
        output[-2000:]
    assert server.alive()
