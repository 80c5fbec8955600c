"""The Modality Worklist core (:mod:`pacsnode.core.worklist`), its search
(:mod:`pacsnode.index.worklist_search`), the MWL response builder and the REST API, on both
index backends: items checked and completed per PS3.4 Table K.6-1, every matching key in
SQL or on the DICOM JSON with the C-FIND rules, states, DCMTK ``.wl`` import, the 0005
migration. Expected results are written out from the table below."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacsnode.core import worklist
from pacsnode.core.archive import Archive
from pacsnode.dimse.find_scp import parse_keys
from pacsnode.dimse.mwl_scp import build_response, requested_json
from pacsnode.index import migrate, schema
from pacsnode.index.engine import create_engine
from pacsnode.index.worklist_search import compile_worklist_search
from pacsnode.web import api_worklist
from pacsnode.web.app import create_app

JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # PS3.5 H.3.1

# accession, patient id, name, station AE, modality, date, time, physician, RP ID, SPS desc
ITEMS = [
    ("W1", "P1", "DOE^JOHN", "CT1", "CT", "20240315", "0800", "SMITH^ANNA", "RQ1", "HEAD"),
    ("W2", "P2", "DOE^JANE", "MR1", "MR", "20240315", "1030", "JONES^BOB", "RQ2", "KNEE"),
    ("W3", "P3", "Müller^Jürgen", "CT1", "CT", "20240316", "0900", "Smith^Anna", "RQ3",
     "CHEST"),
    ("W4", "P4", JAPANESE, "US1", "US", "20240317", "1400", "", "RQ4", "ABDOMEN"),
    ("W5", "P5", "ROE^RICHARD", "CT2", "CT", "20240315", "1500", "SMITH^ANNA", "RQ5",
     "HEAD NECK"),
]


def add_items(archive: Archive) -> dict[str, worklist.WorklistItem]:
    added = {}
    for acc, pid, name, aet, mod, date, time, phys, rp, desc in ITEMS:
        ds = worklist.dataset_from_fields(
            patient_name=name, patient_id=pid, modality=mod, station_aet=aet,
            start=date + time, accession=acc, physician=phys, requested_procedure_id=rp,
            procedure=desc, sex="F" if pid in ("P2", "P3") else "M")
        added[acc] = worklist.add(archive.engine, ds)
    return added


def query(**keys: Any) -> Dataset:
    """A C-FIND identifier; keys named ``sps_*`` go into the SPS sequence item."""
    ds = Dataset()
    sps = Dataset()
    for keyword, value in keys.items():
        if keyword.startswith("sps_"):
            setattr(sps, keyword[4:], value)
        elif keyword != "charset":
            setattr(ds, keyword, value)
    if "charset" in keys:
        ds.SpecificCharacterSet = keys["charset"]
    if len(sps):
        ds.ScheduledProcedureStepSequence = [sps]
    return ds


def found(archive: Archive, ds: Dataset, **options: Any) -> list[str]:
    items = worklist.search(archive.engine, parse_keys(ds), **options)
    return sorted(i.text(0x00080050) for i in items)


# -- adding: Table K.6-1 checks and completions -----------------------------------------------


def test_add_completes_type1_keys(archive: Archive) -> None:
    ds = worklist.dataset_from_fields(patient_name="DOE^JOHN", patient_id="P1",
                                      modality="CT", station_aet="CT1", start="20240315")
    item = worklist.add(archive.engine, ds)
    assert item.state is worklist.State.SCHEDULED
    s = item.summary()
    assert s["start_time"] == "000000"
    assert s["sps_id"] == f"SPS{item.pk:06d}"
    assert s["requested_procedure_id"] == f"RP{item.pk:06d}"
    assert s["study_instance_uid"].startswith("2.25.")
    again = worklist.get(archive.engine, item.pk)
    assert again.attrs == item.attrs  # what was generated is stored
    # given values are kept
    ds = worklist.dataset_from_fields(patient_name="X", patient_id="P9", modality="MR",
                                      station_aet="MR1", start="202403151230",
                                      sps_id="S-1", requested_procedure_id="R-1",
                                      study_instance_uid="1.2.3.4")
    s = worklist.add(archive.engine, ds).summary()
    assert (s["sps_id"], s["requested_procedure_id"], s["study_instance_uid"],
            s["start_time"]) == ("S-1", "R-1", "1.2.3.4", "123000")


def _valid() -> Dataset:
    return worklist.dataset_from_fields(patient_name="DOE^JOHN", patient_id="P1",
                                        modality="CT", station_aet="CT1",
                                        start="202403150800")


@pytest.mark.parametrize(("change", "message"), [
    (lambda ds: delattr(ds, "ScheduledProcedureStepSequence"), "exactly one item, not 0"),
    (lambda ds: ds.ScheduledProcedureStepSequence.append(Dataset()), "exactly one item, not 2"),
    (lambda ds: setattr(ds.ScheduledProcedureStepSequence[0], "ScheduledStationAETitle", ""),
     "Scheduled Station AE Title"),
    (lambda ds: setattr(ds.ScheduledProcedureStepSequence[0], "ScheduledStationAETitle",
                        "A" * 17), "1 to 16"),
    (lambda ds: delattr(ds.ScheduledProcedureStepSequence[0], "Modality"), "Modality"),
    (lambda ds: delattr(ds.ScheduledProcedureStepSequence[0],
                        "ScheduledProcedureStepStartDate"), "Start Date"),
    (lambda ds: setattr(ds.ScheduledProcedureStepSequence[0],
                        "ScheduledProcedureStepStartDate", "20241345"), "YYYYMMDD"),
    (lambda ds: setattr(ds.ScheduledProcedureStepSequence[0],
                        "ScheduledProcedureStepStartTime", "8h"), "HH[MM"),
    (lambda ds: setattr(ds, "PatientID", ""), "Patient ID"),
    (lambda ds: delattr(ds, "PatientName"), "Patient's Name"),
])
def test_add_refuses_incomplete_items(archive: Archive, change: Any, message: str) -> None:
    ds = _valid()
    change(ds)
    with pytest.raises(worklist.WorklistError, match=re.escape(message)):
        worklist.add(archive.engine, ds)
    assert worklist.list_items(archive.engine, states=None) == []
    worklist.add(archive.engine, _valid())  # the unchanged item is fine
    assert len(worklist.list_items(archive.engine)) == 1


def test_parse_start() -> None:
    assert worklist.parse_start("20240315") == ("20240315", "000000")
    assert worklist.parse_start("202403150830") == ("20240315", "083000")
    assert worklist.parse_start("2024-03-15 08:30:15") == ("20240315", "083015")
    for bad in ("2024031", "20240315083", "tomorrow"):
        with pytest.raises(worklist.WorklistError):
            worklist.parse_start(bad)


# -- searching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("keys", "expected"), [
    ({}, ["W1", "W2", "W3", "W4", "W5"]),
    ({"sps_ScheduledStationAETitle": "CT1"}, ["W1", "W3"]),
    ({"sps_ScheduledStationAETitle": "CT*"}, ["W1", "W3", "W5"]),
    ({"sps_Modality": "CT"}, ["W1", "W3", "W5"]),
    ({"sps_Modality": "ct"}, []),  # CS matching is case-sensitive
    ({"sps_ScheduledProcedureStepStartDate": "20240315"}, ["W1", "W2", "W5"]),
    ({"sps_ScheduledProcedureStepStartDate": "20240316-20240317"}, ["W3", "W4"]),
    ({"sps_ScheduledProcedureStepStartDate": "20240317-"}, ["W4"]),
    ({"sps_ScheduledProcedureStepStartDate": "-20240315"}, ["W1", "W2", "W5"]),
    ({"sps_ScheduledProcedureStepStartDate": "20240315",
      "sps_ScheduledProcedureStepStartTime": "0800-1100"}, ["W1", "W2"]),
    ({"sps_ScheduledProcedureStepStartTime": "14"}, ["W4"]),  # the whole hour
    ({"sps_ScheduledPerformingPhysicianName": "SMITH^ANNA"}, ["W1", "W3", "W5"]),
    ({"sps_ScheduledPerformingPhysicianName": "smi*"}, ["W1", "W3", "W5"]),
    ({"sps_ScheduledPerformingPhysicianName": '""'}, ["W4"]),  # empty value
    ({"sps_ScheduledProcedureStepID": "S-NONE"}, []),
    ({"sps_ScheduledProcedureStepDescription": "HEAD*"}, ["W1", "W5"]),  # JSON, in the item
    ({"PatientName": "doe*"}, ["W1", "W2"]),
    ({"PatientName": "DOE^JA?E"}, ["W2"]),
    ({"PatientName": "müller^jürgen"}, ["W3"]),
    ({"PatientName": "山田^太郎"}, ["W4"]),
    ({"PatientName": "Yamada*"}, ["W4"]),
    ({"PatientID": "P2"}, ["W2"]),
    ({"AccessionNumber": "W5"}, ["W5"]),
    ({"RequestedProcedureID": "RQ4"}, ["W4"]),
    ({"PatientSex": "F"}, ["W2", "W3"]),  # not a column: the stored JSON
    ({"RequestedProcedureDescription": "HEAD"}, ["W1"]),
    ({"sps_ScheduledStationAETitle": "CT1",
      "sps_ScheduledProcedureStepStartDate": "20240315"}, ["W1"]),
    ({"sps_Modality": "CT", "PatientName": "DOE*"}, ["W1"]),
    ({"sps_ScheduledStationAETitle": "CT2",
      "sps_ScheduledPerformingPhysicianName": "SMITH*", "PatientSex": "M"}, ["W5"]),
    ({"sps_Modality": "CT", "sps_ScheduledProcedureStepDescription": "CHEST",
      "PatientID": "P3"}, ["W3"]),
])
def test_search(archive: Archive, keys: dict[str, Any], expected: list[str]) -> None:
    add_items(archive)
    assert found(archive, query(**keys)) == expected


def test_matching_keys_compile_to_columns() -> None:
    """The keys modalities send are SQL on the columns; others are left to the JSON filter
    (inside the sequence only the keys without a column)."""
    keys = parse_keys(query(sps_ScheduledStationAETitle="CT1", sps_Modality="CT",
                            sps_ScheduledProcedureStepStartDate="20240315",
                            sps_ScheduledProcedureStepStartTime="0800-1200",
                            sps_ScheduledPerformingPhysicianName="S*",
                            sps_ScheduledProcedureStepID="S1", PatientName="D*",
                            PatientID="P1", AccessionNumber="A", RequestedProcedureID="R",
                            StudyInstanceUID="1.2"))
    plan = compile_worklist_search(keys)
    assert plan.json_filters == ()
    sql = str(plan.statement.compile(compile_kwargs={"literal_binds": True}))
    for column in ("station_aet", "modality", "start_date", "start_time",
                   "performing_physician_name_norm", "sps_id", "patient_name_norm",
                   "patient_id", "accession_number", "requested_procedure_id",
                   "study_instance_uid"):
        assert f"worklist.{column}" in sql.split("WHERE", 1)[1], column
    keys = parse_keys(query(sps_Modality="CT", sps_ScheduledProcedureStepDescription="X",
                            PatientSex="F"))
    plan = compile_worklist_search(keys)
    assert sorted(tag for tag, _ in plan.json_filters) == [0x00100040, 0x00400100]
    sequence = dict(plan.json_filters)[0x00400100]
    assert [tag for tag, _ in sequence.items] == [0x00400007]


def test_states(archive: Archive) -> None:
    items = add_items(archive)
    engine = archive.engine
    worklist.set_state(engine, items["W1"].pk, worklist.State.IN_PROGRESS)
    worklist.cancel(engine, items["W2"].pk)
    worklist.set_state(engine, items["W3"].pk, worklist.State.COMPLETED)
    worklist.set_state(engine, items["W4"].pk, worklist.State.DISCONTINUED)
    assert found(archive, query()) == ["W1", "W5"]  # SCHEDULED and IN PROGRESS only
    assert found(archive, query(), states=None) == ["W1", "W2", "W3", "W4", "W5"]
    assert found(archive, query(), states={worklist.State.CANCELLED}) == ["W2"]
    assert worklist.get(engine, items["W2"].pk).state is worklist.State.CANCELLED
    with pytest.raises(worklist.AlreadyFinished):
        worklist.set_state(engine, items["W2"].pk, worklist.State.SCHEDULED)
    with pytest.raises(worklist.AlreadyFinished):
        worklist.cancel(engine, items["W3"].pk)
    with pytest.raises(worklist.NotFound):
        worklist.cancel(engine, 999999)
    assert worklist.parse_state("in_progress") is worklist.State.IN_PROGRESS
    with pytest.raises(worklist.WorklistError):
        worklist.parse_state("DONE")
    assert worklist.delete(engine, items["W5"].pk) is True
    assert worklist.delete(engine, items["W5"].pk) is False
    assert found(archive, query()) == ["W1"]


def test_list_in_scheduled_order_with_paging(archive: Archive) -> None:
    add_items(archive)
    order = [i.text(0x00080050) for i in worklist.list_items(archive.engine)]
    assert order == ["W1", "W2", "W5", "W3", "W4"]
    page = worklist.list_items(archive.engine, limit=2, offset=2)
    assert [i.text(0x00080050) for i in page] == ["W5", "W3"]
    # paging after a JSON filter counts only the matches
    page = worklist.search(archive.engine, parse_keys(query(PatientSex="M")), limit=1,
                           offset=1)
    assert [i.text(0x00080050) for i in page] == ["W5"]


# -- DCMTK .wl files ------------------------------------------------------------------------------


def wl_dataset(name: str, charset: str | list[str] | None, accession: str) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = "PWL"
    ds.AccessionNumber = accession
    sps = Dataset()
    sps.ScheduledStationAETitle = "CT1"
    sps.Modality = "CT"
    sps.ScheduledProcedureStepStartDate = "20240320"
    sps.ScheduledProcedureStepStartTime = "101500"
    sps.ScheduledPerformingPhysicianName = "Größe^Anna" if charset else "SMITH"
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def test_import_wl_files(archive: Archive, tmp_path: Path) -> None:
    bare = tmp_path / "bare.wl"  # no preamble, no file meta, implicit VR (as dump2dcm -g)
    wl_dataset("DOE^JOHN", None, "WL1").save_as(bare, implicit_vr=True, little_endian=True)
    latin = tmp_path / "latin.wl"
    wl_dataset("Müller^Jürgen", "ISO_IR 100", "WL2").save_as(latin, implicit_vr=False,
                                                            little_endian=True)
    japanese = tmp_path / "jp.wl"
    ds = wl_dataset(JAPANESE, ["", "ISO 2022 IR 87"], "WL3")
    ds.ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName = "山田^花子"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(japanese, enforce_file_format=True)
    for path in (bare, latin, japanese):
        worklist.import_file(archive.engine, path)
    items = {i.text(0x00080050): i for i in worklist.list_items(archive.engine)}
    assert items["WL1"].text(0x00100010) == "DOE^JOHN"
    assert items["WL2"].text(0x00100010) == "Müller^Jürgen"
    assert items["WL2"].sps_text(0x00400006) == "Größe^Anna"
    assert items["WL3"].text(0x00100010) == JAPANESE
    assert items["WL3"].sps_text(0x00400006) == "山田^花子"
    assert "00080005" not in items["WL3"].attrs  # values are Unicode now
    assert found(archive, query(sps_ScheduledPerformingPhysicianName="größe*")) == ["WL2"]
    assert found(archive, query(sps_ScheduledPerformingPhysicianName="山田*")) == ["WL3"]
    garbage = tmp_path / "garbage.wl"
    garbage.write_bytes(b"this is not DICOM at all")
    with pytest.raises(worklist.WorklistError, match=r"garbage\.wl"):
        worklist.import_file(archive.engine, garbage)
    assert len(worklist.list_items(archive.engine, states=None)) == 3


# -- responses (PS3.4 K.6.1.2.2) ------------------------------------------------------------------


def test_response_has_every_requested_key(archive: Archive) -> None:
    items = add_items(archive)
    request = query(PatientName="", PatientID="", PatientWeight="", AccessionNumber="W1",
                    StudyInstanceUID="", sps_ScheduledStationAETitle="CT1", sps_Modality="",
                    sps_ScheduledProcedureStepStartDate="", sps_ScheduledProcedureStepID="",
                    sps_ScheduledProcedureStepLocation="", sps_ScheduledStationName="",
                    sps_CommentsOnTheScheduledProcedureStep="")
    request.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence = [Dataset()]
    out = requested_json(items["W1"].attrs, request)
    assert set(out) == {"00100010", "00100020", "00101030", "00080050", "0020000D",
                        "00400100"}
    assert out["00101030"] == {"vr": "DS"}  # not stored: zero length
    assert out["00100010"]["Value"] == [{"Alphabetic": "DOE^JOHN"}]
    assert out["0020000D"]["Value"] == [items["W1"].text(0x0020000D)]
    (sps,) = out["00400100"]["Value"]
    assert set(sps) == {"00400001", "00080060", "00400002", "00400009", "00400011",
                        "00400010", "00400400", "00400008"}
    assert sps["00400001"]["Value"] == ["CT1"] and sps["00080060"]["Value"] == ["CT"]
    assert sps["00400009"]["Value"] == [f"SPS{items['W1'].pk:06d}"]
    assert sps["00400400"] == {"vr": "LT"} and sps["00400008"] == {"vr": "SQ"}
    # charset: ASCII request, non-ASCII name: UTF-8; Latin-1 request that can hold it: Latin-1
    rsp = build_response(items["W3"].attrs, query(PatientName="", charset="ISO_IR 100"),
                         ["ISO_IR 100"])
    assert rsp.SpecificCharacterSet == "ISO_IR 100" and rsp.PatientName == "Müller^Jürgen"
    rsp = build_response(items["W4"].attrs, query(PatientName=""), [""])
    assert rsp.SpecificCharacterSet == "ISO_IR 192"
    rsp = build_response(items["W1"].attrs, query(PatientName=""), [""])
    assert "SpecificCharacterSet" not in rsp


# -- the 0005 migration --------------------------------------------------------------------------


def _worklist_diffs(diffs: Iterable[Any]) -> list[Any]:
    """The autogenerate differences about table ``worklist`` (PostgreSQL's pattern indexes of
    the migration, which schema.py does not declare, left out)."""
    out = []
    for diff in diffs:
        if isinstance(diff, list):  # column modifications: [(op, schema, table, column, ...)]
            if str(diff[0][2]) == "worklist":
                out.append(diff)
            continue
        obj = diff[1]
        table = getattr(obj, "table", obj)
        name = str(getattr(table, "name", diff[2] if len(diff) > 2 else ""))
        if name == "worklist" and not str(getattr(obj, "name", "")).endswith("_pattern"):
            out.append(diff)
    return out


def test_migration_0005_upgrades_and_downgrades(tmp_path: Path, db_url: str | None) -> None:
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'index.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.attributes["engine"] = engine
    try:
        command.upgrade(cfg, "0004")
        assert "worklist" not in sa.inspect(engine).get_table_names()
        command.upgrade(cfg, "0005")
        assert migrate.current_revision(engine) == "0005"
        with engine.connect() as conn:  # the migration creates what schema.py declares
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     schema.metadata)
        assert _worklist_diffs(diffs) == []
        indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("worklist")}
        assert "ix_worklist_station_aet_start_date" in indexes
        command.downgrade(cfg, "0004")
        assert "worklist" not in sa.inspect(engine).get_table_names()
        assert migrate.current_revision(engine) == "0004"
    finally:
        engine.dispose()


# -- the REST API, in-process -------------------------------------------------------------------

PROBLEM = "application/problem+json"


def test_api(archive: Archive) -> None:
    app = create_app(archive, archive.settings)
    app.include_router(api_worklist.router)
    add_items(archive)
    with TestClient(app) as client:
        got = client.get("/api/worklist", params={"ScheduledStationAETitle": "CT1"}).json()
        assert [i["accession"] for i in got["items"]] == ["W1", "W3"]
        got = client.get("/api/worklist", params={"00400100.00080060": "CT",
                                                  "PatientName": "doe*"}).json()
        assert [i["accession"] for i in got["items"]] == ["W1"]
        got = client.get("/api/worklist", params={"limit": 2}).json()
        assert [i["accession"] for i in got["items"]] == ["W1", "W2"] and got["more"] is True
        r = client.post("/api/worklist", json={
            "patient_name": "NEW^ONE", "patient_id": "P7", "modality": "CR",
            "station_aet": "CR1", "start": "202403180730", "accession": "W7"})
        assert r.status_code == 201, r.text
        new = r.json()
        assert r.headers["location"] == f"/api/worklist/{new['id']}"
        assert (new["state"], new["start_time"], new["station_aet"]) == (
            "SCHEDULED", "073000", "CR1")
        body = client.get(f"/api/worklist/{new['id']}").json()
        assert body["attributes"]["00100010"]["Value"] == [{"Alphabetic": "NEW^ONE"}]
        dicom_json = {
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "JSON^ITEM"}]},
            "00100020": {"vr": "LO", "Value": ["P8"]},
            "00080050": {"vr": "SH", "Value": ["W8"]},
            "00400100": {"vr": "SQ", "Value": [{
                "00400001": {"vr": "AE", "Value": ["MR1"]},
                "00080060": {"vr": "CS", "Value": ["MR"]},
                "00400002": {"vr": "DA", "Value": ["20240319"]}}]}}
        r = client.post("/api/worklist", json=dicom_json)
        assert r.status_code == 201, r.text
        assert r.json()["start_time"] == "000000" and r.json()["sps_id"].startswith("SPS")
        got = client.get("/api/worklist", params={"ScheduledStationAETitle": "MR1"}).json()
        assert [i["accession"] for i in got["items"]] == ["W2", "W8"]
        r = client.patch(f"/api/worklist/{new['id']}", json={"state": "cancelled"})
        assert r.status_code == 200 and r.json()["state"] == "CANCELLED"
        r = client.patch(f"/api/worklist/{new['id']}", json={"state": "SCHEDULED"})
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert "W7" not in [i["accession"] for i in client.get("/api/worklist").json()["items"]]
        got = client.get("/api/worklist", params={"state": "CANCELLED"}).json()
        assert [i["accession"] for i in got["items"]] == ["W7"]
        got = client.get("/api/worklist", params={"state": "all", "limit": 1000}).json()
        assert len(got["items"]) == 7
        for bad in ({"patient_name": "X"},  # fields missing
                    {"patient_name": "X", "patient_id": "P", "modality": "CT",
                     "station_aet": "CT1", "start": "2024"},
                    {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "X"}]}}):
            r = client.post("/api/worklist", json=bad)
            assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
        for params in ({"state": "DONE"}, {"limit": 5000}, {"NotAKeyword": "x"}):
            r = client.get("/api/worklist", params=params)
            assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
        assert client.delete(f"/api/worklist/{new['id']}").status_code == 204
        assert client.get(f"/api/worklist/{new['id']}").status_code == 404
        assert client.delete(f"/api/worklist/{new['id']}").status_code == 404
        assert client.patch("/api/worklist/999999", json={"state": "COMPLETED"}
                            ).status_code == 404
