"""The MPPS core (:mod:`pacsnode.core.mpps`, :mod:`pacsnode.core.mpps_rules`): the N-CREATE
and N-SET rules of PS3.4 F.7.2 (statuses, Table F.7.2-1), the worklist items a step moves,
the study-complete bookkeeping and the 0006 migration, on both index backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from pydicom.uid import generate_uid

from pacsnode.core import mpps, worklist
from pacsnode.core.archive import Archive
from pacsnode.core.mpps_rules import MppsError
from pacsnode.core.worklist import dataset_json
from pacsnode.index import migrate, schema
from pacsnode.index.engine import create_engine
from pacsnode.synthetic import generate_corpus
from tests.mpps_datasets import n_create, n_set_final


def scheduled(archive: Archive, accession: str, sps_id: str) -> worklist.WorklistItem:
    ds = worklist.dataset_from_fields(
        patient_name="DOE^JOHN", patient_id="P1", modality="CT", station_aet="CT1",
        start="202403150800", accession=accession, sps_id=sps_id)
    return worklist.add(archive.engine, ds)


def refused(call: object, *args: object) -> MppsError:
    with pytest.raises(MppsError) as info:
        call(*args)  # type: ignore[operator]
    return info.value


# -- N-CREATE ------------------------------------------------------------------------------------


def test_create_keeps_the_instance_and_moves_its_worklist_item(archive: Archive) -> None:
    item = scheduled(archive, "A1", "SPS1")
    other = scheduled(archive, "A2", "SPS2")
    study = item.text(worklist.STUDY_UID)
    uid = generate_uid()
    step = mpps.create(archive.engine, dataset_json(n_create(study_uid=study, sps_id="SPS1",
                                                             accession="A1")), uid,
                       calling_aet="CT1")
    assert (step.sop_instance_uid, step.status, step.worklist_ids) == \
        (uid, "IN PROGRESS", [item.pk])
    got = mpps.get(archive.engine, uid)
    assert got is not None and got.study_instance_uid == study
    assert got.summary()["accession"] == "A1" and got.calling_aet == "CT1"
    moved = worklist.get(archive.engine, item.pk)
    assert moved.state == worklist.State.IN_PROGRESS
    assert moved.sps_text(worklist.SPS_STATUS) == "STARTED"
    assert worklist.get(archive.engine, other.pk).state == worklist.State.SCHEDULED


def test_create_without_uid_makes_one_and_unscheduled_steps_move_nothing(
        archive: Archive) -> None:
    item = scheduled(archive, "A1", "SPS1")
    step = mpps.create(archive.engine, dataset_json(n_create(study_uid=generate_uid())))
    assert step.sop_instance_uid.startswith("2.25.") and step.worklist_ids == []
    assert worklist.get(archive.engine, item.pk).state == worklist.State.SCHEDULED


def test_create_refusals(archive: Archive) -> None:
    study = generate_uid()
    good = dataset_json(n_create(study_uid=study))
    uid = generate_uid()
    mpps.create(archive.engine, good, uid)
    assert refused(mpps.create, archive.engine, good, uid).status == 0x0111  # duplicate

    no_station = dict(good)
    del no_station["00400241"]
    error = refused(mpps.create, archive.engine, no_station)
    assert (error.status, error.tags) == (0x0120, (0x00400241,))

    empty_id = dict(good, **{"00400253": {"vr": "SH"}})
    assert refused(mpps.create, archive.engine, empty_id).status == 0x0121

    completed = dataset_json(n_create(study_uid=study, status="COMPLETED"))
    error = refused(mpps.create, archive.engine, completed)
    assert (error.status, error.tags) == (0x0106, (0x00400252,))

    no_study = dataset_json(n_create(study_uid=study))
    del no_study["00400270"]["Value"][0]["0020000D"]
    assert refused(mpps.create, archive.engine, no_study).status == 0x0121
    assert len(mpps.list_steps(archive.engine)) == 1


# -- N-SET ---------------------------------------------------------------------------------------


def test_set_state_rules(archive: Archive) -> None:
    item = scheduled(archive, "A1", "SPS1")
    study = item.text(worklist.STUDY_UID)
    uid = generate_uid()
    mpps.create(archive.engine, dataset_json(n_create(study_uid=study, sps_id="SPS1",
                                                      accession="A1")), uid)
    # a progress update: allowed, and the status stays
    step = mpps.update(archive.engine, uid, {"00400254": {"vr": "LO", "Value": ["HEAD+"]}})
    assert step.status == "IN PROGRESS"
    # attributes fixed at creation
    error = refused(mpps.update, archive.engine, uid,
                    {"00100020": {"vr": "LO", "Value": ["OTHER"]},
                     "00400244": {"vr": "DA", "Value": ["20240316"]}})
    assert (error.status, error.tags) == (0x0105, (0x00100020, 0x00400244))
    # an unknown status; COMPLETED without end date/time or series
    error = refused(mpps.update, archive.engine, uid,
                    {"00400252": {"vr": "CS", "Value": ["FINISHED"]}})
    assert error.status == 0x0106
    error = refused(mpps.update, archive.engine, uid,
                    {"00400252": {"vr": "CS", "Value": ["COMPLETED"]}})
    assert (error.status, set(error.tags)) == (0x0121, {0x00400250, 0x00400251, 0x00400340})
    assert worklist.get(archive.engine, item.pk).state == worklist.State.IN_PROGRESS
    # completed: the worklist item follows; nothing may change afterwards
    final = dataset_json(n_set_final("COMPLETED", series_uid=generate_uid(),
                                     instances=[generate_uid()]))
    assert mpps.update(archive.engine, uid, final).status == "COMPLETED"
    done = worklist.get(archive.engine, item.pk)
    assert done.state == worklist.State.COMPLETED
    assert done.sps_text(worklist.SPS_STATUS) == "COMPLETED"
    error = refused(mpps.update, archive.engine, uid,
                    {"00400254": {"vr": "LO", "Value": ["AGAIN"]}})
    assert (error.status, error.error_id) == (0x0110, 0xA710)
    assert refused(mpps.update, archive.engine, generate_uid(), final).status == 0x0112
    assert worklist.search(archive.engine, {}) == []  # a completed item leaves the worklist


def test_discontinued_needs_no_series_and_discontinues_the_item(archive: Archive) -> None:
    item = scheduled(archive, "A1", "SPS1")
    uid = generate_uid()
    mpps.create(archive.engine, dataset_json(n_create(
        study_uid=item.text(worklist.STUDY_UID), sps_id="SPS1")), uid)
    step = mpps.update(archive.engine, uid, dataset_json(n_set_final("DISCONTINUED")))
    assert step.status == "DISCONTINUED"
    assert worklist.get(archive.engine, item.pk).state == worklist.State.DISCONTINUED
    assert [s.status for s in mpps.list_steps(archive.engine, status="discontinued")] == \
        ["DISCONTINUED"]


# -- study complete ------------------------------------------------------------------------------


def test_study_complete_waits_for_the_referenced_instances(
        archive: Archive, tmp_path: Path) -> None:
    files = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1,
                            series_per_study=1, instances_per_series=3, rows=8, columns=8,
                            seed=11)
    import pydicom

    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    study, series = headers[0].StudyInstanceUID, headers[0].SeriesInstanceUID
    uids = [h.SOPInstanceUID for h in headers]
    uid = generate_uid()
    mpps.create(archive.engine, dataset_json(n_create(study_uid=study)), uid)
    mpps.update(archive.engine, uid, dataset_json(
        n_set_final("COMPLETED", series_uid=series, instances=uids)))
    for f in files[:2]:
        archive.ingest(f)
    assert list(mpps.due_notifications(archive.engine, wait=600)) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=601)
    [late] = mpps.due_notifications(archive.engine, wait=600, now=later)
    assert not late.complete and late.missing == [uids[2]]
    archive.ingest(files[2])
    [event] = mpps.due_notifications(archive.engine, wait=600)
    payload = event.payload()
    assert payload["complete"] is True and payload["study_instance_uid"] == study
    assert (payload["expected_instances"], payload["received_instances"]) == (3, 3)
    assert mpps.claim_notification(archive.engine, event.step.pk)
    assert not mpps.claim_notification(archive.engine, event.step.pk)
    assert list(mpps.due_notifications(archive.engine, wait=0)) == []


# -- the 0006 migration --------------------------------------------------------------------------


def test_migration_0006_upgrades_and_downgrades(tmp_path: Path, db_url: str | None) -> None:
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'index.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.attributes["engine"] = engine
    try:
        command.upgrade(cfg, "0005")
        assert "mpps" not in sa.inspect(engine).get_table_names()
        command.upgrade(cfg, "0006")
        with engine.connect() as conn:  # the migration creates what schema.py declares
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     schema.metadata)
        about_mpps = [d for d in diffs if "mpps" in repr(d)]
        assert about_mpps == []
        command.downgrade(cfg, "0005")
        assert "mpps" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
