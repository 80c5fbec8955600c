"""The REST API's performed procedure steps: ``/api/mpps`` — what modalities reported with
MPPS N-CREATE/N-SET (PS3.4 F.7; :mod:`pacsnode.core.mpps`, the same list as
``pacsnode mpps``).

* ``GET /api/mpps``: newest first, ``status`` (``IN PROGRESS``, ``COMPLETED``,
  ``DISCONTINUED``), ``study``, ``patient_id``, ``limit`` (≤ 1000, default 100),
  ``offset``; ``more`` says whether another page follows.
* ``GET /api/mpps/{uid}``: one step with its DICOM JSON, the worklist items it performs
  and how many of the instances it references are in the archive.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from pacsnode.core import mpps, worklist
from pacsnode.core.archive import Archive
from pacsnode.core.mpps_rules import referenced_instances
from pacsnode.web.problems import Problem

router = APIRouter(prefix="/api", tags=["MPPS"])

MAX_LIMIT = 1000


def _archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


@router.get("/mpps", summary="List performed procedure steps (MPPS), newest first")
def list_mpps(request: Request, status: str | None = None, study: str | None = None,
              patient_id: str | None = None, limit: int = Query(100, ge=1),
              offset: int = Query(0, ge=0)) -> dict[str, Any]:
    if limit > MAX_LIMIT:
        raise Problem(400, f"limit may be at most {MAX_LIMIT}")
    steps = mpps.list_steps(_archive(request).engine, status=status, study=study,
                            patient_id=patient_id, limit=limit + 1, offset=offset)
    return {"items": [s.summary() for s in steps[:limit]], "offset": offset, "limit": limit,
            "more": len(steps) > limit}


@router.get("/mpps/{uid}", summary="One performed procedure step, with its DICOM JSON")
def get_mpps(request: Request, uid: str) -> dict[str, Any]:
    engine = _archive(request).engine
    step = mpps.get(engine, uid)
    if step is None:
        raise Problem(404, f"no performed procedure step {uid}")
    items = []
    for pk in step.worklist_ids:
        try:
            items.append(worklist.get(engine, pk).summary())
        except worklist.NotFound:
            continue
    expected = referenced_instances(step.attrs)
    return {**step.summary(), "worklist_items": items,
            "received_instances": len(mpps.received(engine, expected)),
            "attributes": step.attrs}
