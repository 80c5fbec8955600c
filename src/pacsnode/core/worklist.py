"""The Modality Worklist kept in the index (PS3.4 Annex K, Basic Worklist Management; table
``worklist``): adding items (from a pydicom Dataset, simple fields, DICOM JSON or DCMTK
``.wl`` files), listing, reading, changing their state and deleting them. No network code:
the C-FIND SCP is :mod:`pacsnode.dimse.mwl_scp`, the matching
:mod:`pacsnode.index.worklist_search`.

**An item** is one Scheduled Procedure Step with its Requested Procedure, Imaging Service
Request, visit and patient attributes (the Modality Worklist Information Model, PS3.4
K.6.1.1), kept as DICOM JSON (Unicode: values are decoded from the data set's Specific
Character Set, which is not kept; a response picks its own, K.4.1.2.3 / C.4.1.1.3.1). When
added (:func:`add`) it is checked and completed following the Return Key Types of PS3.4
Table K.6-1 (K.6.1.2.2):

* the Scheduled Procedure Step Sequence (0040,0100) must hold exactly **one** item (one
  worklist entry is one procedure step);
* Type 1 keys that must come from the requester: Scheduled Station AE Title (0040,0001) (1–16
  characters, PS3.5 VR AE), Modality (0008,0060), Scheduled Procedure Step Start Date
  (0040,0002) (YYYYMMDD), Patient's Name (0010,0010), Patient ID (0010,0020): missing or
  empty is an error (:class:`WorklistError`);
* Type 1 keys pacsnode fills in when missing: Scheduled Procedure Step Start Time
  (0040,0003) becomes ``000000`` (the start of the day); Scheduled Procedure Step ID
  (0040,0009) ``SPS`` and Requested Procedure ID (0040,1001) ``RP`` followed by the item's
  number (``SPS000042``); Study Instance UID (0020,000D) a new UID (``2.25.…``);
* Type 2 keys (Accession Number, Scheduled Performing Physician's Name, Patient's Birth
  Date, …) may be absent: the C-FIND SCP returns a requested key the item lacks with zero
  length (K.6.1.2.2). Type 1C/2C conditions (Requested Procedure Description or Code
  Sequence, …) are not checked.

**States**: SCHEDULED (new items), IN PROGRESS, COMPLETED, DISCONTINUED, CANCELLED. Only
SCHEDULED and IN PROGRESS items answer a C-FIND (:data:`ACTIVE`). COMPLETED, DISCONTINUED
and CANCELLED are final: the state of such an item cannot change (:class:`AlreadyFinished`).
A change of state also sets the item's Scheduled Procedure Step Status (0040,0020)
(:data:`SPS_STATUS_OF`); the other attributes are not changed by it. MPPS N-CREATE/N-SET
(:mod:`pacsnode.core.mpps`) move the items a procedure step performs to IN PROGRESS,
COMPLETED or DISCONTINUED.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydicom
import sqlalchemy as sa
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy.engine import Connection, Engine

from pacsnode.core.jobs import iso, utc_now
from pacsnode.index import dicom_json
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition
from pacsnode.index.records import Attributes, normalise_pn
from pacsnode.index.schema import worklist as worklist_table
from pacsnode.index.worklist_search import SPS_SEQUENCE, WorklistRow, search_worklist

JsonDict = dict[str, Any]

PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
BIRTH_DATE, SEX = 0x00100030, 0x00100040
ACCESSION = 0x00080050
REFERRING_PHYSICIAN = 0x00080090
STUDY_UID = 0x0020000D
REQUESTED_PROCEDURE_ID = 0x00401001
REQUESTED_PROCEDURE_DESCRIPTION = 0x00321060
STATION_AET = 0x00400001
MODALITY = 0x00080060
START_DATE, START_TIME = 0x00400002, 0x00400003
PERFORMING_PHYSICIAN = 0x00400006
SPS_DESCRIPTION = 0x00400007
SPS_ID = 0x00400009
SPS_STATUS = 0x00400020
STATION_NAME = 0x00400010
SPS_LOCATION = 0x00400011
CHARSET = 0x00080005


class State(StrEnum):
    """The state of a worklist item."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"
    CANCELLED = "CANCELLED"


ACTIVE: frozenset[State] = frozenset({State.SCHEDULED, State.IN_PROGRESS})
FINAL: frozenset[State] = frozenset({State.COMPLETED, State.DISCONTINUED, State.CANCELLED})


class WorklistError(ValueError):
    """A worklist item that cannot be added or changed (the message says why)."""


class NotFound(WorklistError):
    """No worklist item with that number."""

    def __init__(self, pk: int) -> None:
        super().__init__(f"no worklist item {pk}")
        self.pk = pk


class AlreadyFinished(WorklistError):
    """The item is COMPLETED, DISCONTINUED or CANCELLED: its state is final."""

    def __init__(self, item: WorklistItem) -> None:
        super().__init__(f"worklist item {item.pk} is already {item.state.value}")
        self.item = item


def parse_state(text: str) -> State:
    """A :class:`State` from user input (case-insensitive; ``IN_PROGRESS`` accepted)."""
    wanted = text.strip().upper().replace("_", " ")
    try:
        return State(wanted)
    except ValueError:
        raise WorklistError(f"unknown state {text!r}: one of "
                            f"{', '.join(s.value for s in State)}") from None


# -- items -----------------------------------------------------------------------------------


def _text(attrs: Mapping[str, Any], tag: int, limit: int = 1024) -> str:
    return Attributes({Level.IMAGE: dict(attrs)}).text(tag, limit)


def sps_item(attrs: Mapping[str, Any]) -> JsonDict:
    """The (one) Scheduled Procedure Step Sequence item of an item's DICOM JSON."""
    values = (attrs.get(f"{SPS_SEQUENCE:08X}") or {}).get("Value") or [{}]
    first = values[0]
    return first if isinstance(first, dict) else {}


@dataclass(frozen=True)
class WorklistItem:
    """One worklist entry: its number, state, DICOM JSON and timestamps."""

    pk: int
    state: State
    attrs: JsonDict
    created_at: str
    updated_at: str

    def text(self, tag: int) -> str:
        """A top-level attribute as text ('' when absent)."""
        return _text(self.attrs, tag)

    def sps_text(self, tag: int) -> str:
        """An attribute of the Scheduled Procedure Step item as text."""
        return _text(sps_item(self.attrs), tag)

    def summary(self) -> dict[str, Any]:
        """The item as the CLI and the REST API list it."""
        return {
            "id": self.pk,
            "state": self.state.value,
            "patient_name": self.text(PATIENT_NAME),
            "patient_id": self.text(PATIENT_ID),
            "birth_date": self.text(BIRTH_DATE),
            "sex": self.text(SEX),
            "accession": self.text(ACCESSION),
            "requested_procedure_id": self.text(REQUESTED_PROCEDURE_ID),
            "procedure": self.text(REQUESTED_PROCEDURE_DESCRIPTION)
            or self.sps_text(SPS_DESCRIPTION),
            "study_instance_uid": self.text(STUDY_UID),
            "station_aet": self.sps_text(STATION_AET),
            "modality": self.sps_text(MODALITY),
            "start_date": self.sps_text(START_DATE),
            "start_time": self.sps_text(START_TIME),
            "sps_id": self.sps_text(SPS_ID),
            "physician": self.sps_text(PERFORMING_PHYSICIAN),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _item(row: WorklistRow | sa.RowMapping) -> WorklistItem:
    if isinstance(row, WorklistRow):
        return WorklistItem(row.pk, State(row.state), row.attrs, row.created_at,
                            row.updated_at)
    return WorklistItem(int(row["pk"]), State(row["state"]), dicom_json.loads(row["attrs"]),
                        str(row["created_at"]), str(row["updated_at"]))


# -- checking and completing an item (PS3.4 Table K.6-1) -------------------------------------


def dataset_json(ds: Dataset) -> JsonDict:
    """Every top-level attribute of ``ds`` as DICOM JSON (Unicode), without file meta, group
    lengths and Specific Character Set."""
    out: JsonDict = {}
    for base_tag in ds.keys():  # noqa: SIM118 - iterating a Dataset reads every value
        tag = int(base_tag)
        if tag >> 16 == 0x0002 or tag & 0xFFFF == 0 or tag == CHARSET:
            continue
        value = dicom_json.element_json(ds, tag)
        if value is not None:
            out[f"{tag:08X}"] = value
    return out


def _required(attrs: Mapping[str, Any], tag: int, what: str) -> str:
    value = _text(attrs, tag)
    if not value:
        raise WorklistError(f"{what} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is required "
                            "(Type 1, PS3.4 Table K.6-1)")
    return value


def _check_date(value: str, what: str) -> None:
    try:
        if not (len(value) == 8 and value.isdigit()):
            raise ValueError(value)
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise WorklistError(f"{what} must be a date YYYYMMDD, not {value!r}") from None


def _check_time(value: str, what: str) -> None:
    digits = value.split(".")[0]
    if not (digits.isdigit() and len(digits) in (2, 4, 6)):
        raise WorklistError(f"{what} must be a time HH[MM[SS[.F]]], not {value!r}")


def check_item(attrs: JsonDict) -> JsonDict:
    """``attrs`` (an item's DICOM JSON) checked and completed as the module documentation
    says (except the generated IDs, which need the item's number: :func:`add`); returns the
    Scheduled Procedure Step item (changed in place)."""
    sequence = attrs.get(f"{SPS_SEQUENCE:08X}") or {}
    items = sequence.get("Value") or []
    if len(items) != 1 or not isinstance(items[0], dict):
        raise WorklistError("the Scheduled Procedure Step Sequence (0040,0100) must hold "
                            f"exactly one item, not {len(items)}")
    sps = items[0]
    aet = _required(sps, STATION_AET, "Scheduled Station AE Title")
    if len(aet) > 16 or "\\" in aet or not aet.isprintable() or not aet.isascii():
        raise WorklistError(f"Scheduled Station AE Title {aet!r} must be 1 to 16 printable "
                            "ASCII characters without backslash (PS3.5 6.2, VR AE)")
    _required(sps, MODALITY, "Modality")
    _check_date(_required(sps, START_DATE, "Scheduled Procedure Step Start Date"),
                "Scheduled Procedure Step Start Date")
    start_time = _text(sps, START_TIME)
    if start_time:
        _check_time(start_time, "Scheduled Procedure Step Start Time")
    else:
        sps[f"{START_TIME:08X}"] = {"vr": "TM", "Value": ["000000"]}
    _required(attrs, PATIENT_ID, "Patient ID")
    _required(attrs, PATIENT_NAME, "Patient's Name")
    if not _text(attrs, STUDY_UID):
        attrs[f"{STUDY_UID:08X}"] = {"vr": "UI", "Value": [generate_uid(prefix=None)]}
    return sps


def _columns(attrs: Mapping[str, Any]) -> dict[str, Any]:
    sps = sps_item(attrs)
    name = _text(attrs, PATIENT_NAME)
    return {
        "station_aet": _text(sps, STATION_AET, 16),
        "modality": _text(sps, MODALITY, 16),
        "start_date": _text(sps, START_DATE, 8),
        "start_time": _text(sps, START_TIME, 16),
        "performing_physician_name_norm": normalise_pn(_text(sps, PERFORMING_PHYSICIAN)),
        "patient_name": name,
        "patient_name_norm": normalise_pn(name),
        "patient_id": _text(attrs, PATIENT_ID, 64),
        "accession_number": _text(attrs, ACCESSION, 64),
        "requested_procedure_id": _text(attrs, REQUESTED_PROCEDURE_ID, 64),
        "sps_id": _text(sps, SPS_ID, 64),
        "study_instance_uid": _text(attrs, STUDY_UID, 64),
        "attrs": dicom_json.dumps(dict(attrs)),
    }


# -- adding ----------------------------------------------------------------------------------


def add_json(engine: Engine, attrs: JsonDict) -> WorklistItem:
    """Add an item given as DICOM JSON (Unicode values); see the module documentation."""
    attrs = copy.deepcopy(dict(attrs))
    attrs.pop(f"{CHARSET:08X}", None)
    sps = check_item(attrs)
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        key = conn.execute(sa.insert(worklist_table).values(
            state=State.SCHEDULED.value, created_at=now, updated_at=now,
            **_columns(attrs))).inserted_primary_key
        assert key is not None
        pk = int(key[0])
        generated = False
        if not _text(sps, SPS_ID):
            sps[f"{SPS_ID:08X}"] = {"vr": "SH", "Value": [f"SPS{pk:06d}"]}
            generated = True
        if not _text(attrs, REQUESTED_PROCEDURE_ID):
            attrs[f"{REQUESTED_PROCEDURE_ID:08X}"] = {"vr": "SH", "Value": [f"RP{pk:06d}"]}
            generated = True
        if generated:
            conn.execute(sa.update(worklist_table).where(worklist_table.c.pk == pk)
                         .values(**_columns(attrs)))
    return WorklistItem(pk, State.SCHEDULED, attrs, now, now)


def add(engine: Engine, ds: Dataset) -> WorklistItem:
    """Add the item ``ds`` (decoded in its own Specific Character Set)."""
    try:
        attrs = dataset_json(ds)
    except Exception as exc:  # pydicom raises many types on malformed values
        raise WorklistError(f"the data set cannot be read: {exc}") from exc
    return add_json(engine, attrs)


def dataset_from_json(attrs: Mapping[str, Any]) -> Dataset:
    """A pydicom Dataset from DICOM JSON (:class:`WorklistError` when it is not valid)."""
    try:
        ds = Dataset.from_json(dict(attrs))
    except Exception as exc:
        raise WorklistError(f"not a DICOM JSON data set: {exc}") from exc
    return ds


def parse_start(start: str) -> tuple[str, str]:
    """``YYYYMMDD[HHMM[SS]]`` as (date, time); the time is ``000000`` when not given."""
    text = start.strip().replace("-", "").replace(":", "").replace(" ", "").replace("T", "")
    date, time = text[:8], text[8:]
    _check_date(date, "the start")
    if time:
        if not (time.isdigit() and len(time) in (2, 4, 6)):
            raise WorklistError(f"the start must be YYYYMMDD[HHMM[SS]], not {start!r}")
        time = time.ljust(6, "0")
    return date, time or "000000"


def dataset_from_fields(*, patient_name: str, patient_id: str, modality: str,
                        station_aet: str, start: str, birth_date: str = "", sex: str = "",
                        accession: str = "", procedure: str = "", physician: str = "",
                        referring_physician: str = "", station_name: str = "",
                        location: str = "", requested_procedure_id: str = "",
                        sps_id: str = "", study_instance_uid: str = "",
                        sps_description: str = "") -> Dataset:
    """A worklist item from simple fields (the CLI's and the REST API's): Type 2 keys are
    present, empty when not given; ``procedure`` is the Requested Procedure Description and,
    unless ``sps_description`` is given, the Scheduled Procedure Step Description."""
    date, time = parse_start(start)
    ds = Dataset()
    texts = (patient_name, physician, referring_physician, procedure, sps_description,
             station_name, location)
    if not all(t.isascii() for t in texts):
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = sex
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = referring_physician
    if procedure:
        ds.RequestedProcedureDescription = procedure
    if requested_procedure_id:
        ds.RequestedProcedureID = requested_procedure_id
    if study_instance_uid:
        ds.StudyInstanceUID = study_instance_uid
    sps = Dataset()
    sps.ScheduledStationAETitle = station_aet
    sps.Modality = modality
    sps.ScheduledProcedureStepStartDate = date
    sps.ScheduledProcedureStepStartTime = time
    sps.ScheduledPerformingPhysicianName = physician
    if sps_description or procedure:
        sps.ScheduledProcedureStepDescription = sps_description or procedure
    sps.ScheduledStationName = station_name
    sps.ScheduledProcedureStepLocation = location
    if sps_id:
        sps.ScheduledProcedureStepID = sps_id
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def read_wl(path: str | Path) -> Dataset:
    """A DCMTK ``.wl`` worklist file (a DICOM data set, often without file meta)."""
    try:
        return pydicom.dcmread(str(path), force=True)
    except Exception as exc:  # pydicom raises many types on what is not DICOM
        raise WorklistError(f"{path}: cannot be read as DICOM: {exc}") from exc


def import_file(engine: Engine, path: str | Path) -> WorklistItem:
    """Add the item of a DCMTK ``.wl`` file (or any DICOM file holding a worklist item)."""
    ds = read_wl(path)
    try:
        return add(engine, ds)
    except WorklistError as exc:
        raise WorklistError(f"{path}: {exc}") from exc


# -- reading ---------------------------------------------------------------------------------


def search(engine: Engine, keys: Mapping[int, Condition], *,
           states: Collection[State] | None = ACTIVE, limit: int | None = None,
           offset: int = 0) -> list[WorklistItem]:
    """The items matching ``keys`` (tag → condition; PS3.4 C.2.2.2 rules, sequence keys of
    the Scheduled Procedure Step Sequence included) in ``states`` (None: any), in scheduled
    order."""
    wanted = None if states is None else {s.value for s in states}
    return [_item(r) for r in search_worklist(engine, keys, states=wanted, limit=limit,
                                              offset=offset)]


def list_items(engine: Engine, *, states: Collection[State] | None = ACTIVE,
               limit: int | None = None, offset: int = 0) -> list[WorklistItem]:
    """The items in ``states`` (None: every item), in scheduled order."""
    return search(engine, {}, states=states, limit=limit, offset=offset)


def _get(conn: Connection, pk: int) -> WorklistItem | None:
    row = conn.execute(sa.select(worklist_table).where(worklist_table.c.pk == pk)
                       ).mappings().first()
    return _item(row) if row is not None else None


def get(engine: Engine, pk: int) -> WorklistItem:
    """Item ``pk``, or :class:`NotFound`."""
    with read_transaction(engine) as conn:
        found = _get(conn, pk)
    if found is None:
        raise NotFound(pk)
    return found


# -- changing --------------------------------------------------------------------------------


# Scheduled Procedure Step Status (0040,0020) kept in step with the state (PS3.3 C.4.10:
# SCHEDULED, STARTED, COMPLETED, DISCONTINUED, CANCELED are its terms for these states).
SPS_STATUS_OF = {
    State.SCHEDULED: "SCHEDULED",
    State.IN_PROGRESS: "STARTED",
    State.COMPLETED: "COMPLETED",
    State.DISCONTINUED: "DISCONTINUED",
    State.CANCELLED: "CANCELED",
}


def with_sps_status(attrs: Mapping[str, Any], state: State) -> JsonDict:
    """A copy of ``attrs`` whose Scheduled Procedure Step Status says ``state``."""
    out = copy.deepcopy(dict(attrs))
    sequence = out.get(f"{SPS_SEQUENCE:08X}") or {}
    for item in sequence.get("Value") or []:
        if isinstance(item, dict):
            item[f"{SPS_STATUS:08X}"] = {"vr": "CS", "Value": [SPS_STATUS_OF[state]]}
    return out


def _changeable(conn: Connection, pk: int) -> WorklistItem:
    """Item ``pk``, locked for the transaction's update; :class:`NotFound`, or
    :class:`AlreadyFinished` when its state is final."""
    row = conn.execute(sa.select(worklist_table).where(worklist_table.c.pk == pk)
                       .with_for_update()).mappings().first()
    if row is None:
        raise NotFound(pk)
    found = _item(row)
    if found.state in FINAL:
        raise AlreadyFinished(found)
    return found


def set_state(engine: Engine, pk: int, state: State) -> WorklistItem:
    """Change the state of item ``pk`` (and its Scheduled Procedure Step Status);
    :class:`AlreadyFinished` when its state is final, :class:`NotFound` when there is no
    such item."""
    now = iso(utc_now())
    state = State(state)
    with write_transaction(engine) as conn:
        found = _changeable(conn, pk)
        attrs = with_sps_status(found.attrs, state)
        conn.execute(sa.update(worklist_table).where(worklist_table.c.pk == pk)
                     .values(state=state.value, updated_at=now,
                             attrs=dicom_json.dumps(attrs)))
    return WorklistItem(pk, state, attrs, found.created_at, now)


def cancel(engine: Engine, pk: int) -> WorklistItem:
    """Cancel item ``pk`` (it no longer answers a C-FIND)."""
    return set_state(engine, pk, State.CANCELLED)


def delete(engine: Engine, pk: int) -> bool:
    """Remove item ``pk``; whether it existed."""
    with write_transaction(engine) as conn:
        removed = conn.execute(sa.delete(worklist_table).where(worklist_table.c.pk == pk)
                               ).rowcount
    return bool(removed)


# -- orders (HL7) ----------------------------------------------------------------------------
# Used by :mod:`pacsnode.hl7.orders`: items are found by the order they belong to, Placer
# (0040,2016) and Filler Order Number (0040,2017) of the Imaging Service Request, and an
# order change (HL7 ORC-1 XO) replaces an item's attributes.

PLACER_ORDER, FILLER_ORDER = 0x00402016, 0x00402017


def find_by_order(engine: Engine, *, patient_id: str, placer: str = "", filler: str = "",
                  accession: str = "") -> list[WorklistItem]:
    """The items (any state, oldest first) of the order with Placer Order Number
    ``placer`` and/or Filler Order Number ``filler``: an item belongs to it when one of the
    given numbers equals the item's and neither differs from it. Candidates are the items of
    ``patient_id`` or with Accession Number ``accession`` (indexed columns), filtered on
    the stored JSON."""
    if not (placer or filler):
        return []
    wanted = worklist_table.c.patient_id == patient_id
    if accession:
        wanted = sa.or_(wanted, worklist_table.c.accession_number == accession)
    found = []
    with read_transaction(engine) as conn:
        for row in conn.execute(sa.select(worklist_table).where(wanted)
                                .order_by(worklist_table.c.pk)).mappings():
            item = _item(row)
            pairs = [(placer, item.text(PLACER_ORDER)), (filler, item.text(FILLER_ORDER))]
            if any(given and given == kept for given, kept in pairs) and not any(
                    given and kept and given != kept for given, kept in pairs):
                found.append(item)
    return found


def update_json(engine: Engine, pk: int, attrs: JsonDict) -> WorklistItem:
    """Replace the attributes of item ``pk`` (DICOM JSON, checked as :func:`add_json` does)
    and keep its state. Kept from the item when ``attrs`` lacks them: Scheduled Procedure
    Step ID, Requested Procedure ID and Study Instance UID (a modality may already use
    them); the item's Scheduled Procedure Step Status (0040,0020) is always kept.
    :class:`AlreadyFinished` when the item's state is final, :class:`NotFound` when there
    is no such item."""
    attrs = copy.deepcopy(dict(attrs))
    attrs.pop(f"{CHARSET:08X}", None)
    now = iso(utc_now())
    with write_transaction(engine) as conn:
        old = _changeable(conn, pk)
        for tag in (REQUESTED_PROCEDURE_ID, STUDY_UID):
            key = f"{tag:08X}"
            if not _text(attrs, tag) and key in old.attrs:
                attrs[key] = copy.deepcopy(old.attrs[key])
        sps = check_item(attrs)
        old_sps = sps_item(old.attrs)
        for tag in (SPS_ID, SPS_STATUS):
            key = f"{tag:08X}"
            if key in old_sps and (tag == SPS_STATUS or not _text(sps, tag)):
                sps[key] = copy.deepcopy(old_sps[key])
            elif tag == SPS_STATUS:
                sps.pop(key, None)
        conn.execute(sa.update(worklist_table).where(worklist_table.c.pk == pk)
                     .values(updated_at=now, **_columns(attrs)))
    return WorklistItem(pk, old.state, attrs, old.created_at, now)
