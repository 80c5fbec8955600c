"""The REST API's view of the archive (JSON, documented by OpenAPI at ``/docs``):
``/api/stats``; ``/api/patients``, ``/api/studies``, ``/api/series``, ``/api/instances`` —
lists with filters and paging, one object with its children and counts, DELETE.

List filters are the DICOM attributes of the level and the levels above, by keyword or
tag, matched exactly like C-FIND and QIDO-RS (``?PatientName=DOE*&StudyDate=2020-``; one
implementation: :mod:`pacsnode.index.search`); ``limit`` (default 100, at most 1000) and
``offset`` page through one stable order: the order of first storage, or ``sort`` — a
comma-separated list of index columns of the level and above, by keyword or tag, ``-`` for
descending (``sort=-StudyDate,PatientName``; :mod:`pacsnode.index.sorting`), applied in
SQL with the filters. ``count=true`` adds ``total``, the number of matches: one SQL
``COUNT`` when every filter is on a column, else every candidate row is read and tested,
as slow as listing them all.
"""

from __future__ import annotations

import shutil
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pacsnode.core.archive import Archive
from pacsnode.index import matching, sorting
from pacsnode.index.levels import Level
from pacsnode.index.search import Match
from pacsnode.index.sorting import SortKey
from pacsnode.web import urls
from pacsnode.web.problems import Problem
from pacsnode.web.qido import Query

router = APIRouter(prefix="/api", tags=["Archive"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# level → (path segment, the level's unique key, summary fields: name → tag)
LEVELS: dict[Level, tuple[str, int, dict[str, int]]] = {
    Level.PATIENT: ("patients", 0x00100020, {
        "patient_id": 0x00100020, "patient_name": 0x00100010, "birth_date": 0x00100030,
        "sex": 0x00100040, "studies": 0x00201200, "series": 0x00201202,
        "instances": 0x00201204}),
    Level.STUDY: ("studies", 0x0020000D, {
        "study_uid": 0x0020000D, "patient_id": 0x00100020, "patient_name": 0x00100010,
        "birth_date": 0x00100030, "study_date": 0x00080020, "study_time": 0x00080030,
        "description": 0x00081030, "accession": 0x00080050, "modalities": 0x00080061,
        "series": 0x00201206, "instances": 0x00201208}),
    Level.SERIES: ("series", 0x0020000E, {
        "series_uid": 0x0020000E, "study_uid": 0x0020000D, "patient_id": 0x00100020,
        "modality": 0x00080060, "number": 0x00200011, "description": 0x0008103E,
        "instances": 0x00201209}),
    Level.IMAGE: ("instances", 0x00080018, {
        "sop_instance_uid": 0x00080018, "sop_class_uid": 0x00080016,
        "series_uid": 0x0020000E, "study_uid": 0x0020000D, "number": 0x00200013,
        "rows": 0x00280010, "columns": 0x00280011, "frames": 0x00280008}),
}
NAMES = {Level.PATIENT: "patient", Level.STUDY: "study", Level.SERIES: "series",
         Level.IMAGE: "instance"}
CHILD = {Level.PATIENT: Level.STUDY, Level.STUDY: Level.SERIES, Level.SERIES: Level.IMAGE}


def _value(attrs: dict[str, Any], tag: int) -> Any:
    """A plain JSON value of a DICOM JSON attribute: the first value (all values for a
    multi-valued one), a person name's alphabetic group; None when empty."""
    values = (attrs.get(f"{tag:08X}") or {}).get("Value")
    if not values:
        return None
    plain = [v.get("Alphabetic", "") if isinstance(v, dict) else v for v in values]
    return plain if len(plain) > 1 or tag == 0x00080061 else plain[0]


def summary(level: Level, attrs: dict[str, Any], root: str) -> dict[str, Any]:
    """One object as the list endpoints show it."""
    _, _, fields = LEVELS[level]
    out = {name: _value(attrs, tag) for name, tag in fields.items()}
    if level is not Level.PATIENT:
        study, series = _value(attrs, 0x0020000D), _value(attrs, 0x0020000E)
        if level is Level.STUDY:
            out["dicomweb"] = urls.study_url(root, study)
        elif level is Level.SERIES:
            out["dicomweb"] = urls.series_url(root, study, series)
        else:
            out["dicomweb"] = urls.instance_url(root, study, series, _value(attrs, 0x00080018))
    return out


def _paging(query: Query) -> tuple[int, int]:
    limit = DEFAULT_LIMIT if query.limit is None else query.limit
    if limit > MAX_LIMIT:
        raise Problem(400, f"limit may be at most {MAX_LIMIT}")
    return limit, query.offset


def _list_options(level: Level, params: list[tuple[str, str]]
                  ) -> tuple[list[tuple[str, str]], tuple[SortKey, ...], bool]:
    """``sort`` and ``count`` taken out of a list request's parameters (the rest are the
    QIDO-style filters and paging): the rest, the sort keys, whether to count."""
    rest: list[tuple[str, str]] = []
    specs: list[str] = []
    count = False
    for name, value in params:
        lowered = name.lower()
        if lowered == "sort":
            specs.append(value)
        elif lowered == "count":
            if value.lower() not in ("true", "false"):
                raise Problem(400, f"count must be true or false, not {value!r}")
            count = value.lower() == "true"
        else:
            rest.append((name, value))
    try:
        order = sorting.parse(level, ",".join(specs))
    except ValueError as exc:
        raise Problem(400, str(exc), sortable=list(sorting.sortable(level))) from None
    return rest, order, count


def _list(request: Request, level: Level, fixed: dict[int, str] | None = None
          ) -> dict[str, Any]:
    params, order, count = _list_options(level, list(request.query_params.multi_items()))
    query = Query(params)
    for tag, value in (fixed or {}).items():
        query.keys[tag] = matching.parse("UI" if tag != 0x00100020 else "LO", value)
    limit, offset = _paging(query)
    archive: Archive = request.app.state.archive
    root = urls.dicomweb(request)
    results = archive.search(level, query.keys, limit=limit + 1, offset=offset, order=order)
    try:
        items = [summary(level, m.attrs, root) for m in results]
    finally:
        results.close()
    more = len(items) > limit
    out: dict[str, Any] = {
        "items": items[:limit], "offset": offset, "limit": limit, "more": more,
        "ignored_filters": [f"{t:08X}" for t in results.unmatchable]}
    if order:
        out["sort"] = sorting.describe(order)
    if count:
        out["total"] = archive.count(level, query.keys)
    return out


def _one(request: Request, level: Level, uid: str) -> Match:
    archive: Archive = request.app.state.archive
    _, key, _ = LEVELS[level]
    results = archive.search(level, {key: matching.parse("UI" if level is not Level.PATIENT
                                                         else "LO", uid)}, limit=1)
    try:
        found = next(iter(results), None)
    finally:
        results.close()
    if found is None:
        raise Problem(404, f"no {NAMES[level]} {uid} in this archive")
    return found


def _detail(request: Request, level: Level, uid: str) -> dict[str, Any]:
    match = _one(request, level, uid)
    root = urls.dicomweb(request)
    out = summary(level, match.attrs, root)
    out["attributes"] = match.attrs
    child = CHILD.get(level)
    if child is not None:
        _, key, _ = LEVELS[level]
        archive: Archive = request.app.state.archive
        results = archive.search(child, {key: matching.parse(
            "UI" if level is not Level.PATIENT else "LO", uid)})
        try:
            out[LEVELS[child][0]] = [summary(child, m.attrs, root) for m in results]
        finally:
            results.close()
    return out


def _delete(request: Request, level: Level, uid: str) -> Response:
    _one(request, level, uid)  # 404 unless it exists at this level
    archive: Archive = request.app.state.archive
    result = archive.delete(uid)
    if result is None:
        raise Problem(404, f"{uid} is no longer in this archive")
    return Response(status_code=204)


@router.get("/stats", summary="What the archive holds")
def stats(request: Request) -> dict[str, Any]:
    archive: Archive = request.app.state.archive
    usage = shutil.disk_usage(archive.settings.data_dir)
    return {**archive.counts(), "stored_bytes": archive.stored_bytes(),
            "disk_free_bytes": usage.free, "disk_total_bytes": usage.total}


def _add_routes(level: Level) -> None:
    """GET list, GET one, DELETE one for ``level`` (the work runs in a worker thread)."""
    name = LEVELS[level][0]

    async def list_(request: Request) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(_list, request, level)

    async def get_(request: Request, uid: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(_detail, request, level, uid)

    async def delete_(request: Request, uid: str) -> Response:
        return await anyio.to_thread.run_sync(_delete, request, level, uid)

    router.add_api_route(f"/{name}", list_, methods=["GET"], name=f"list_{name}",
                         summary=f"List {name} (filters: DICOM keywords or tags; sort, "
                         "limit, offset, count)")
    router.add_api_route(f"/{name}/{{uid}}", get_, methods=["GET"], name=f"get_{name}",
                         summary=f"One of the {name}, with its attributes and children")
    router.add_api_route(f"/{name}/{{uid}}", delete_, methods=["DELETE"], status_code=204,
                         name=f"delete_{name}",
                         summary=f"Delete one of the {name} (index rows, then files)")


for _level in LEVELS:
    _add_routes(_level)
