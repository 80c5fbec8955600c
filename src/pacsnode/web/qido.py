"""QIDO-RS, the DICOMweb search service (PS3.18 10.6), answered from the index alone with
the same matching as C-FIND (:mod:`pacsnode.index.matching`, :mod:`pacsnode.index.search`).

* Resources (10.6.1): all studies, a study's series, all series, a series' instances, a
  study's instances, all instances.
* Query parameters (8.3.4): ``{attributeID}={value}`` where attributeID is a keyword or
  an 8-digit tag, or a dotted path into a sequence (``00400275.00400009``, sequence
  matching); a UI value may be a comma-separated UID list; ``includefield`` (repeatable,
  comma-separated, or ``all``); ``limit``/``offset`` over one stable order (the order the
  entities were first stored); ``fuzzymatching=true`` is not supported: the answer is
  literal matching with a ``Warning: 299`` header (8.3.4.3).
* Each result has the attributes of PS3.18 Table 10.6.3-3 (study), 10.6.3-4 (series),
  10.6.3-5 (instance) — those of the levels above too when the resource is not under a
  study or series (10.6.3.3) — plus the match keys and the included fields, and its
  Retrieve URL. A key of a level below the query level cannot be matched: it is ignored,
  and a ``Warning: 299`` header names it.
* ``application/dicom+json`` (``application/json`` accepted too), or ``multipart/related;
  type="application/dicom+xml"`` with one Native DICOM Model document per result (10.6.3,
  PS3.19 A.1; :mod:`pacsnode.web.dicom_xml`), by the Accept header; no match: 204 No Content
  (8.3.4.4.1; CP-2473 proposes 200 with an empty array).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from pacsnode.core.archive import Archive
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition
from pacsnode.index.search import Match, Results
from pacsnode.web import dicom_xml, multipart, urls
from pacsnode.web.media import DICOM_JSON, DICOM_XML, accept_dicom_model
from pacsnode.web.problems import Problem

router = APIRouter()

STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
RETRIEVE_URL = 0x00081190
INSTANCE_AVAILABILITY = 0x00080056

# PS3.18 Table 10.6.3-3, 10.6.3-4, 10.6.3-5
STUDY_ATTRIBUTES = (0x00080020, 0x00080030, 0x00080050, 0x00080056, 0x00080061, 0x00080090,
                    0x00080201, 0x00081190, 0x00100010, 0x00100020, 0x00100030, 0x00100040,
                    0x0020000D, 0x00200010, 0x00201206, 0x00201208)
SERIES_ATTRIBUTES = (0x00080060, 0x00080201, 0x0008103E, 0x00081190, 0x0020000E, 0x00200011,
                     0x00201209, 0x00400244, 0x00400245, 0x00400275)
INSTANCE_ATTRIBUTES = (0x00080016, 0x00080018, 0x00080056, 0x00080201, 0x00081190,
                       0x00200013, 0x00280010, 0x00280011, 0x00280100, 0x00280008)
LEVEL_ATTRIBUTES = {Level.STUDY: STUDY_ATTRIBUTES, Level.SERIES: SERIES_ATTRIBUTES,
                    Level.IMAGE: INSTANCE_ATTRIBUTES}

CONTROL_PARAMETERS = frozenset({"includefield", "fuzzymatching", "limit", "offset"})
FUZZY_WARNING = ('299 pacsnode: "The fuzzymatching parameter is not supported. Only literal '
                 'matching has been performed."')
RESULTS_PER_CHUNK = 64


def attribute_tag(attribute_id: str) -> int:
    """A tag from a keyword or 8 hex digits (PS3.18 8.3.4.1 attributeID); Problem 400
    when it is neither."""
    text = attribute_id.strip()
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        return int(text, 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise Problem(400, f"unknown attribute {attribute_id!r}: use a DICOM keyword "
                      "(PatientName) or a tag of 8 hexadecimal digits (00100010)")
    return int(tag)


def _vr(tag: int) -> str:
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        raise Problem(400, f"attribute {tag:08X} is not in the DICOM dictionary: it cannot "
                      "be matched") from None
    return vr.split(" or ")[0]


def _condition(tag: int, value: str) -> Condition:
    vr = _vr(tag)
    if vr == "UI":
        value = value.replace(",", "\\")  # UID list matching (8.3.4.1)
    try:
        return matching.parse(vr, value)
    except ValueError as exc:
        raise Problem(400, f"{keyword_for_tag(tag) or f'{tag:08X}'}={value!r}: {exc}") from None


class Query:
    """A QIDO-RS request's parameters, parsed."""

    def __init__(self, params: list[tuple[str, str]]) -> None:
        self.keys: dict[int, Condition] = {}
        self.include: set[int] = set()
        self.include_all = False
        self.fuzzy = False
        self.limit: int | None = None
        self.offset = 0
        plain: dict[int, list[str]] = {}
        items: dict[int, dict[int, list[str]]] = {}
        for name, value in params:
            lowered = name.lower()
            if lowered == "includefield":
                for part in value.split(","):
                    if part.strip().lower() == "all":
                        self.include_all = True
                    elif part.strip():
                        self.include.add(attribute_tag(part))
            elif lowered == "fuzzymatching":
                if value.lower() not in ("true", "false"):
                    raise Problem(400, f"fuzzymatching must be true or false, not {value!r}")
                self.fuzzy = value.lower() == "true"
            elif lowered in ("limit", "offset"):
                if not value.isdigit():
                    raise Problem(400, f"{lowered} must be a non-negative integer, "
                                  f"not {value!r}")
                setattr(self, lowered, int(value))
            else:
                path = [attribute_tag(p) for p in name.split(".")]
                if len(path) == 1:
                    plain.setdefault(path[0], []).append(value)
                elif len(path) == 2:
                    if _vr(path[0]) != "SQ":
                        raise Problem(400, f"{name}: {path[0]:08X} is not a sequence")
                    items.setdefault(path[0], {}).setdefault(path[1], []).append(value)
                else:
                    raise Problem(400, f"{name}: only one level of sequence nesting is "
                                  "supported")
        for tag, values in plain.items():
            self.keys[tag] = _condition(tag, "\\".join(values))
        for tag, nested in items.items():
            conditions = [(sub, _condition(sub, "\\".join(vals))) for sub, vals in nested.items()]
            self.keys[tag] = matching.parse("SQ", None, conditions)


def _absent(tag: int) -> dict[str, Any]:
    try:
        return {"vr": _vr(tag)}
    except Problem:
        return {"vr": "UN"}


def _result(match: Match, wanted: tuple[int, ...], query: Query, root: str) -> dict[str, Any]:
    """One result object: the level's required attributes, the match keys and the included
    fields from the index's DICOM JSON, and the Retrieve URL (PS3.18 10.6.3.3)."""
    attrs = match.attrs
    out: dict[str, Any] = {}
    if query.include_all:
        out.update((k, v) for k, v in attrs.items() if "BulkDataURI" not in v)
    for tag in (*wanted, *query.keys, *query.include):
        key = f"{tag:08X}"
        if key in out:
            continue
        value = attrs.get(key)
        out[key] = value if value is not None and "BulkDataURI" not in value else _absent(tag)
    study = _first(attrs, STUDY_UID)
    if match.level is Level.STUDY:
        url = urls.study_url(root, study)
    elif match.level is Level.SERIES:
        url = urls.series_url(root, study, _first(attrs, SERIES_UID))
    else:
        url = urls.instance_url(root, study, _first(attrs, SERIES_UID), _first(attrs, SOP_UID))
    out[f"{RETRIEVE_URL:08X}"] = {"vr": "UR", "Value": [url]}
    out[f"{INSTANCE_AVAILABILITY:08X}"] = {"vr": "CS", "Value": ["ONLINE"]}
    return dict(sorted(out.items()))


def _first(attrs: Mapping[str, Any], tag: int) -> str:
    values = (attrs.get(f"{tag:08X}") or {}).get("Value") or [""]
    return str(values[0])


def _stream(first: Match, results: Results, wanted: tuple[int, ...], query: Query,
            root: str) -> Iterator[bytes]:
    try:
        chunk = ["[", json.dumps(_result(first, wanted, query, root), ensure_ascii=False)]
        for match in results:
            chunk.append(",")
            chunk.append(json.dumps(_result(match, wanted, query, root), ensure_ascii=False))
            if len(chunk) >= RESULTS_PER_CHUNK:
                yield "".join(chunk).encode()
                chunk = []
        chunk.append("]")
        yield "".join(chunk).encode()
    finally:
        results.close()


def _results(first: Match, results: Results, wanted: tuple[int, ...], query: Query,
             root: str) -> Iterator[dict[str, Any]]:
    try:
        yield _result(first, wanted, query, root)
        for match in results:
            yield _result(match, wanted, query, root)
    finally:
        results.close()


def search(request: Request, level: Level, fixed: Mapping[int, str],
           wanted: tuple[int, ...]) -> Response:
    """Run one QIDO-RS search (the resource's own UIDs in ``fixed``)."""
    model = accept_dicom_model(request)
    query = Query(list(request.query_params.multi_items()))
    for tag, uid in fixed.items():
        query.keys[tag] = matching.parse("UI", uid)
    archive: Archive = request.app.state.archive
    results = archive.search(level, query.keys, limit=query.limit, offset=query.offset)
    headers: dict[str, str] = {}
    warnings = []
    if query.fuzzy:
        warnings.append(FUZZY_WARNING)
    if results.unmatchable:
        names = ", ".join(keyword_for_tag(t) or f"{t:08X}" for t in results.unmatchable)
        warnings.append(f'299 pacsnode: "The following attributes are not supported for '
                        f'matching at this level and were ignored: {names}"')
    if warnings:
        headers["Warning"] = ", ".join(warnings)
    first = next(iter(results), None)
    if first is None:
        results.close()
        return Response(status_code=204, headers=headers)
    if model == DICOM_XML:  # PS3.18 10.6.3: one XML part per result
        boundary = multipart.new_boundary()
        body = _results(first, results, wanted, query, urls.dicomweb(request))
        return StreamingResponse(dicom_xml.multipart_body(body, boundary), headers=headers,
                                 media_type=multipart.content_type(boundary, DICOM_XML))
    return StreamingResponse(_stream(first, results, wanted, query, urls.dicomweb(request)),
                             media_type=DICOM_JSON, headers=headers)


@router.get("/studies", summary="Search for studies (PS3.18 10.6)")
def studies(request: Request) -> Response:
    return search(request, Level.STUDY, {}, STUDY_ATTRIBUTES)


@router.get("/studies/{study}/series", summary="Search for a study's series")
def study_series(request: Request, study: str) -> Response:
    return search(request, Level.SERIES, {STUDY_UID: study}, SERIES_ATTRIBUTES)


@router.get("/series", summary="Search for series")
def all_series(request: Request) -> Response:
    return search(request, Level.SERIES, {}, STUDY_ATTRIBUTES + SERIES_ATTRIBUTES)


@router.get("/studies/{study}/series/{series}/instances",
            summary="Search for a series' instances")
def series_instances(request: Request, study: str, series: str) -> Response:
    return search(request, Level.IMAGE, {STUDY_UID: study, SERIES_UID: series},
                  INSTANCE_ATTRIBUTES)


@router.get("/studies/{study}/instances", summary="Search for a study's instances")
def study_instances(request: Request, study: str) -> Response:
    return search(request, Level.IMAGE, {STUDY_UID: study},
                  SERIES_ATTRIBUTES + INSTANCE_ATTRIBUTES)


@router.get("/instances", summary="Search for instances")
def all_instances(request: Request) -> Response:
    return search(request, Level.IMAGE, {},
                  STUDY_ATTRIBUTES + SERIES_ATTRIBUTES + INSTANCE_ATTRIBUTES)
