"""Modality Performed Procedure Steps kept in the index (PS3.4 Annex F.7, table ``mpps``):
what a modality reports it has done, created by N-CREATE and changed by N-SET. No network
code: the SCP is :mod:`pacsnode.dimse.mpps_scp`, the rules :mod:`pacsnode.core.mpps_rules`.

* **Create** (:func:`create`): the instance is checked (Table F.7.2-1) and stored as DICOM
  JSON with its SOP Instance UID (the requester's, or a new one when it gave none,
  PS3.7 10.1.5.1.4); a UID already known is refused (0x0111 Duplicate SOP Instance).
* **Set** (:func:`update`): the Modification List replaces attributes of an IN PROGRESS
  instance; a COMPLETED or DISCONTINUED one is never changed again.
* **Worklist** (IHE RAD TF-2 4.6/4.7): the worklist items a step performs are those whose
  Scheduled Procedure Step ID equals the one of a Scheduled Step Attributes Sequence item
  and whose Study Instance UID or Accession Number is that item's. They go to
  IN PROGRESS on N-CREATE, then COMPLETED or DISCONTINUED with the step, and so drop out of
  the worklist's default answer. An unscheduled step (no SPS ID) performs no item.
* **Study complete** (:func:`due_notifications`, :func:`claim_notification`): a COMPLETED
  step whose referenced instances (Performed Series Sequence) are all in the archive, or
  that has waited ``wait`` seconds for them, is due for the study-complete event
  (:mod:`pacsnode.hooks.study_complete` raises it), once: the claim is a conditional
  UPDATE of ``notified_at``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydicom.uid import generate_uid
from sqlalchemy.engine import Connection, Engine

from pacsnode.core import worklist
from pacsnode.core.jobs import iso, parse_iso, utc_now
from pacsnode.core.mpps_rules import (
    ACCESSION,
    COMPLETED,
    DISCONTINUED,
    DUPLICATE_SOP_INSTANCE,
    FINAL,
    MODALITY,
    NO_SUCH_OBJECT_INSTANCE,
    PATIENT_ID,
    SCHEDULED_STEP_ATTRIBUTES,
    SPS_ID,
    START_DATE,
    START_TIME,
    STATION_AET,
    STATUS,
    STUDY_UID,
    JsonDict,
    MppsError,
    check_create,
    check_set,
    items,
    referenced_instances,
    text,
)
from pacsnode.index import dicom_json
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import instance as instance_table
from pacsnode.index.schema import mpps as mpps_table
from pacsnode.index.schema import worklist as worklist_table

log = logging.getLogger(__name__)

MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
_CHUNK = 500


@dataclass(frozen=True)
class PerformedStep:
    """One MPPS instance as the index keeps it."""

    pk: int
    sop_instance_uid: str
    status: str
    attrs: JsonDict
    worklist_ids: list[int]
    calling_aet: str
    created_at: str
    updated_at: str
    notified_at: str | None

    @property
    def study_instance_uid(self) -> str:
        """The Study Instance UID of the first scheduled step (the study the images of the
        step belong to)."""
        steps = items(self.attrs, SCHEDULED_STEP_ATTRIBUTES)
        return text(steps[0], STUDY_UID) if steps else ""

    def summary(self) -> dict[str, Any]:
        """The step as the CLI and the REST API list it."""
        steps = items(self.attrs, SCHEDULED_STEP_ATTRIBUTES)
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "status": self.status,
            "study_instance_uid": self.study_instance_uid,
            "accession": text(steps[0], ACCESSION) if steps else "",
            "patient_id": text(self.attrs, PATIENT_ID),
            "patient_name": text(self.attrs, 0x00100010),
            "pps_id": text(self.attrs, 0x00400253),
            "station_aet": text(self.attrs, STATION_AET),
            "modality": text(self.attrs, MODALITY),
            "start": (text(self.attrs, START_DATE) + " " + text(self.attrs, START_TIME)
                      ).strip(),
            "end": (text(self.attrs, 0x00400250) + " " + text(self.attrs, 0x00400251)
                    ).strip(),
            "referenced_instances": len(referenced_instances(self.attrs)),
            "worklist_ids": self.worklist_ids,
            "calling_aet": self.calling_aet,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "notified_at": self.notified_at,
        }


def _step(row: sa.RowMapping) -> PerformedStep:
    return PerformedStep(
        pk=int(row["pk"]), sop_instance_uid=str(row["sop_instance_uid"]),
        status=str(row["status"]), attrs=dicom_json.loads(row["attrs"]),
        worklist_ids=[int(i) for i in json.loads(row["worklist_ids"] or "[]")],
        calling_aet=str(row["calling_aet"]), created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]), notified_at=row["notified_at"])


def _columns(attrs: Mapping[str, Any]) -> dict[str, Any]:
    steps = items(attrs, SCHEDULED_STEP_ATTRIBUTES)
    first = steps[0] if steps else {}
    return {
        "status": text(attrs, STATUS),
        "study_instance_uid": text(first, STUDY_UID)[:64],
        "patient_id": text(attrs, PATIENT_ID)[:64],
        "accession_number": text(first, ACCESSION)[:64],
        "performed_station_aet": text(attrs, STATION_AET)[:16],
        "modality": text(attrs, MODALITY)[:16],
        "start_date": text(attrs, START_DATE)[:8],
        "start_time": text(attrs, START_TIME)[:16],
        "attrs": dicom_json.dumps(dict(attrs)),
    }


# -- the worklist items a step performs ------------------------------------------------------


def _performed_items(conn: Connection, attrs: Mapping[str, Any]) -> list[int]:
    """The worklist items the scheduled steps of ``attrs`` name (see the module doc)."""
    found: dict[int, None] = {}
    w = worklist_table.c
    for step in items(attrs, SCHEDULED_STEP_ATTRIBUTES):
        sps_id = text(step, SPS_ID)
        if not sps_id:
            continue
        same = [w.study_instance_uid == text(step, STUDY_UID)]
        if text(step, ACCESSION):
            same.append(w.accession_number == text(step, ACCESSION))
        for pk in conn.execute(sa.select(w.pk).where(w.sps_id == sps_id, sa.or_(*same))
                               .order_by(w.pk)).scalars():
            found.setdefault(int(pk))
    return list(found)


def _move_worklist(engine: Engine, ids: list[int], state: worklist.State) -> None:
    for pk in ids:
        try:
            worklist.set_state(engine, pk, state)
        except worklist.WorklistError as exc:  # gone, or already final: nothing to move
            log.info("MPPS: worklist item %d not moved to %s: %s", pk, state.value, exc)


# -- N-CREATE, N-SET -------------------------------------------------------------------------


def create(engine: Engine, attrs: JsonDict, sop_instance_uid: str | None = None, *,
           calling_aet: str = "") -> PerformedStep:
    """Create the MPPS instance ``attrs`` (DICOM JSON, Unicode); :class:`MppsError` when the
    N-CREATE rules refuse it or the UID is known."""
    check_create(attrs)
    uid = sop_instance_uid or generate_uid(prefix=None)
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(mpps_table.c.pk).where(
                mpps_table.c.sop_instance_uid == uid)).first() is not None:
            raise MppsError(DUPLICATE_SOP_INSTANCE, f"MPPS instance {uid} already exists")
        ids = _performed_items(conn, attrs)
        key = conn.execute(sa.insert(mpps_table).values(
            sop_instance_uid=uid, calling_aet=calling_aet[:16],
            worklist_ids=json.dumps(ids), created_at=now, updated_at=now, notified_at=None,
            **_columns(attrs))).inserted_primary_key
    assert key is not None
    _move_worklist(engine, ids, worklist.State.IN_PROGRESS)
    return PerformedStep(int(key[0]), uid, text(attrs, STATUS), dict(attrs), ids,
                         calling_aet, now, now, None)


def update(engine: Engine, sop_instance_uid: str, modifications: JsonDict) -> PerformedStep:
    """Apply an N-SET Modification List; :class:`MppsError` when there is no such instance
    or the N-SET rules refuse the change."""
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        row = conn.execute(sa.select(mpps_table).where(
            mpps_table.c.sop_instance_uid == sop_instance_uid).with_for_update()
        ).mappings().first()
        if row is None:
            raise MppsError(NO_SUCH_OBJECT_INSTANCE, f"no MPPS instance {sop_instance_uid}")
        current = _step(row)
        merged = check_set(current.attrs, modifications)
        conn.execute(sa.update(mpps_table).where(mpps_table.c.pk == current.pk)
                     .values(updated_at=now, **_columns(merged)))
    status = text(merged, STATUS)
    if status in FINAL:
        state = worklist.State.COMPLETED if status == COMPLETED else \
            worklist.State.DISCONTINUED
        _move_worklist(engine, current.worklist_ids, state)
    return PerformedStep(current.pk, sop_instance_uid, status, merged, current.worklist_ids,
                         current.calling_aet, current.created_at, now, None)


# -- reading ---------------------------------------------------------------------------------


def get(engine: Engine, sop_instance_uid: str) -> PerformedStep | None:
    """The MPPS instance with that UID, if any."""
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(mpps_table).where(
            mpps_table.c.sop_instance_uid == sop_instance_uid)).mappings().first()
    return _step(row) if row is not None else None


def list_steps(engine: Engine, *, status: str | None = None, study: str | None = None,
               patient_id: str | None = None, limit: int = 100,
               offset: int = 0) -> list[PerformedStep]:
    """MPPS instances, newest first, optionally of one status, study or patient."""
    c = mpps_table.c
    query = sa.select(mpps_table)
    if status:
        query = query.where(c.status == status.upper().replace("_", " "))
    if study:
        query = query.where(c.study_instance_uid == study)
    if patient_id:
        query = query.where(c.patient_id == patient_id)
    query = query.order_by(c.pk.desc()).limit(limit).offset(offset)
    with read_transaction(engine) as conn:
        return [_step(r) for r in conn.execute(query).mappings()]


def received(engine: Engine, uids: list[str]) -> set[str]:
    """Which of ``uids`` are instances in the archive."""
    present: set[str] = set()
    c = instance_table.c
    with read_transaction(engine) as conn:
        for start in range(0, len(uids), _CHUNK):
            chunk = uids[start:start + _CHUNK]
            present.update(conn.execute(sa.select(c.sop_instance_uid).where(
                c.sop_instance_uid.in_(chunk))).scalars())
    return present


# -- the study-complete event ----------------------------------------------------------------


@dataclass(frozen=True)
class StudyComplete:
    """What the study-complete event says: the step, and which of the instances it
    references are in the archive."""

    step: PerformedStep
    expected: list[str]
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every referenced instance has arrived."""
        return not self.missing

    def payload(self) -> dict[str, Any]:
        """The event as JSON (the webhook's body, the callable's argument)."""
        return {
            "event": "study-complete",
            "study_instance_uid": self.step.study_instance_uid,
            "mpps_sop_instance_uid": self.step.sop_instance_uid,
            "complete": self.complete,
            "expected_instances": len(self.expected),
            "received_instances": len(self.expected) - len(self.missing),
            "missing_instances": self.missing[:100],
            "mpps": self.step.summary(),
        }


def due_notifications(engine: Engine, *, wait: float,
                      now: dt.datetime | None = None) -> Iterator[StudyComplete]:
    """The COMPLETED steps not notified yet whose instances are all here, or that have
    waited ``wait`` seconds since they were completed."""
    now = now or utc_now()
    c = mpps_table.c
    with read_transaction(engine) as conn:
        rows = list(conn.execute(sa.select(mpps_table).where(
            c.status == COMPLETED, c.notified_at.is_(None)).order_by(c.pk).limit(100)
        ).mappings())
    for row in rows:
        step = _step(row)
        expected = referenced_instances(step.attrs)
        present = received(engine, expected)
        missing = [u for u in expected if u not in present]
        waited = (now - parse_iso(step.updated_at)).total_seconds()
        if not missing or waited >= wait:
            yield StudyComplete(step, expected, missing)


def claim_notification(engine: Engine, pk: int) -> bool:
    """Mark step ``pk`` notified; False when another process did it first."""
    with write_transaction(engine) as conn:
        return bool(conn.execute(sa.update(mpps_table).where(
            mpps_table.c.pk == pk, mpps_table.c.notified_at.is_(None)
        ).values(notified_at=iso(utc_now()))).rowcount)


__all__ = ["COMPLETED", "DISCONTINUED", "MPPS_SOP_CLASS", "MppsError", "PerformedStep",
           "StudyComplete", "claim_notification", "create", "due_notifications", "get",
           "list_steps", "received", "update"]
