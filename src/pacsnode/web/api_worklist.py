"""The REST API's Modality Worklist: ``/api/worklist`` — the scheduled procedure steps
modalities query with C-FIND (PS3.4 Annex K; :mod:`pacsnode.core.worklist`, the same list
as ``pacsnode worklist``).

* ``GET /api/worklist``: a page of items in scheduled order (``limit`` ≤ 1000, default 100;
  ``offset``; ``more``), SCHEDULED and IN PROGRESS unless ``state`` says otherwise
  (repeatable or comma-separated; ``all``). Other parameters are DICOM attributes by keyword
  or tag, matched with the C-FIND rules (PS3.4 C.2.2.2): top-level ones (``PatientName=doe*``,
  ``AccessionNumber``) and those of the Scheduled Procedure Step Sequence item, given
  either plainly (``ScheduledStationAETitle=CT1``, ``Modality=CT``,
  ``ScheduledProcedureStepStartDate=20240101-20240131``) or as a path
  (``00400100.00400001=CT1``).
* ``POST /api/worklist``: a new item from simple fields (:class:`WorklistFields`) or from
  a DICOM JSON data set (PS3.18 F.2: an object whose keys are 8-digit tags), checked as
  :func:`pacsnode.core.worklist.check_item` says (Table K.6-1); 201 with ``Location``.
* ``GET /api/worklist/{id}``: one item with its DICOM JSON; ``PATCH`` ``{"state": …}``
  changes its state (409 once it is COMPLETED, DISCONTINUED or CANCELLED); ``DELETE``
  removes it (204).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from pacsnode.core import worklist
from pacsnode.core.archive import Archive
from pacsnode.index import matching
from pacsnode.index.matching import Condition, Kind
from pacsnode.index.worklist_search import SPS_SEQUENCE
from pacsnode.web.problems import Problem
from pacsnode.web.qido import Query

router = APIRouter(prefix="/api", tags=["Worklist"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Attributes of the Scheduled Procedure Step Sequence item (PS3.4 Table K.6-1) that a list
# filter may give without the sequence path.
SPS_ITEM_TAGS = frozenset({
    0x00400001, 0x00400002, 0x00400003, 0x00400004, 0x00400005, 0x00080060, 0x00400006,
    0x00400007, 0x00400009, 0x00400010, 0x00400011, 0x00400012, 0x00400020, 0x00321070,
})


class WorklistFields(BaseModel):
    """A worklist item from simple fields (Type 2 attributes not given are empty)."""

    patient_name: str = Field(description="Patient's Name, e.g. DOE^JOHN")
    patient_id: str
    modality: str = Field(description="Modality of the Scheduled Procedure Step, e.g. CT")
    station_aet: str = Field(description="Scheduled Station AE Title")
    start: str = Field(description="Scheduled Procedure Step Start, YYYYMMDD[HHMM[SS]]")
    birth_date: str = ""
    sex: str = ""
    accession: str = ""
    procedure: str = Field("", description="Requested Procedure Description")
    physician: str = Field("", description="Scheduled Performing Physician's Name")
    referring_physician: str = ""
    station_name: str = ""
    location: str = Field("", description="Scheduled Procedure Step Location")
    requested_procedure_id: str = Field("", description="generated when empty")
    sps_id: str = Field("", description="Scheduled Procedure Step ID, generated when empty")
    study_instance_uid: str = Field("", description="generated when empty")


class StateChange(BaseModel):
    """A new state for an item."""

    state: str = Field(description="SCHEDULED, IN PROGRESS, COMPLETED, DISCONTINUED or "
                       "CANCELLED")


def _archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


def _detail(item: worklist.WorklistItem) -> dict[str, Any]:
    return {**item.summary(), "attributes": item.attrs}


def _states(values: list[str]) -> set[worklist.State] | None:
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not names:
        return set(worklist.ACTIVE)
    if any(n.lower() == "all" for n in names):
        return None
    try:
        return {worklist.parse_state(n) for n in names}
    except worklist.WorklistError as exc:
        raise Problem(400, str(exc)) from None


def _keys(query: Query) -> dict[int, Condition]:
    """The query's keys, SPS item attributes given plainly moved into the sequence."""
    keys = {tag: c for tag, c in query.keys.items() if tag not in SPS_ITEM_TAGS}
    moved = [(tag, c) for tag, c in query.keys.items() if tag in SPS_ITEM_TAGS]
    if moved:
        existing = keys.get(SPS_SEQUENCE)
        items = list(existing.items) if existing is not None and \
            existing.kind is Kind.SEQUENCE else []
        keys[SPS_SEQUENCE] = matching.parse("SQ", None, [*items, *moved])
    return keys


@router.get("/worklist", summary="List worklist items (filters: DICOM keywords or tags; "
            "state; limit, offset)")
def list_worklist(request: Request) -> dict[str, Any]:
    params = list(request.query_params.multi_items())
    states = _states([v for k, v in params if k.lower() == "state"])
    query = Query([(k, v) for k, v in params if k.lower() != "state"])
    limit = DEFAULT_LIMIT if query.limit is None else query.limit
    if limit > MAX_LIMIT:
        raise Problem(400, f"limit may be at most {MAX_LIMIT}")
    items = worklist.search(_archive(request).engine, _keys(query), states=states,
                            limit=limit + 1, offset=query.offset)
    return {"items": [i.summary() for i in items[:limit]], "offset": query.offset,
            "limit": limit, "more": len(items) > limit}


def _is_dicom_json(body: dict[str, Any]) -> bool:
    return bool(body) and all(len(k) == 8 and all(c in "0123456789abcdefABCDEF" for c in k)
                              for k in body)


@router.post("/worklist", status_code=201, summary="Add a worklist item (simple fields or a "
             "DICOM JSON data set)")
def add_worklist(request: Request, response: Response,
                 body: dict[str, Any] = Body(  # noqa: B008 - FastAPI's way
                     description="Either the fields of WorklistFields, or a DICOM JSON data "
                     "set (PS3.18 F.2) holding one Scheduled Procedure Step Sequence item",
                     examples=[{"patient_name": "DOE^JOHN", "patient_id": "P1",
                                "modality": "CT", "station_aet": "CT1",
                                "start": "202403150800", "procedure": "CT HEAD"}])
                 ) -> dict[str, Any]:
    engine = _archive(request).engine
    try:
        if _is_dicom_json(body):
            ds = worklist.dataset_from_json({k.upper(): v for k, v in body.items()})
        else:
            fields = WorklistFields.model_validate(body)
            ds = worklist.dataset_from_fields(**fields.model_dump())
        item = worklist.add(engine, ds)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors())
        raise Problem(400, detail) from None
    except worklist.WorklistError as exc:
        raise Problem(400, str(exc)) from None
    response.headers["Location"] = f"/api/worklist/{item.pk}"
    return _detail(item)


def _get(request: Request, item_id: int) -> worklist.WorklistItem:
    try:
        return worklist.get(_archive(request).engine, item_id)
    except worklist.NotFound as exc:
        raise Problem(404, str(exc)) from None


@router.get("/worklist/{item_id}", summary="One worklist item, with its DICOM JSON")
def get_worklist(request: Request, item_id: int) -> dict[str, Any]:
    return _detail(_get(request, item_id))


@router.patch("/worklist/{item_id}", summary="Change the state of a worklist item")
def patch_worklist(request: Request, item_id: int, body: StateChange) -> dict[str, Any]:
    try:
        state = worklist.parse_state(body.state)
        item = worklist.set_state(_archive(request).engine, item_id, state)
    except worklist.NotFound as exc:
        raise Problem(404, str(exc)) from None
    except worklist.AlreadyFinished as exc:
        raise Problem(409, str(exc)) from None
    except worklist.WorklistError as exc:
        raise Problem(400, str(exc)) from None
    return _detail(item)


@router.delete("/worklist/{item_id}", status_code=204, summary="Remove a worklist item")
def delete_worklist(request: Request, item_id: int) -> Response:
    if not worklist.delete(_archive(request).engine, item_id):
        raise Problem(404, f"no worklist item {item_id}")
    return Response(status_code=204)
