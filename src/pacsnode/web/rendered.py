"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3, 10.4.1.3; query parameters
of 8.3.5.1: ``window``, ``viewport``, ``quality``): consumer images made by
:mod:`pacsnode.web.rendering` from the stored instance.

* Media types: ``image/jpeg`` (the default, and for ``*/*``), ``image/png``, ``image/gif``
  (a multi-frame instance as an animated GIF); another: 406. A bad parameter value: 400.
* A rendered instance is its first frame (or every frame, for GIF); a rendered frame list
  takes one frame, or several only as GIF.
* Thumbnails (PS3.18 10.4.1.1.4, 10.4.3.3.4: one representative image of the origin
  server's choice): an instance's middle frame; a series' middle image instance by Instance
  Number; a study's first series that has image instances. Instances without pixel data
  (known from the index) are passed over; a series or study with none: 406.
* Rendered studies and series: :mod:`pacsnode.web.rendered_study`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pacsnode.core.archive import Archive
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.web import rendering
from pacsnode.web.frames import frame_count, parse_frame_list, read_header, stored_file
from pacsnode.web.media import not_acceptable, parse_accept
from pacsnode.web.problems import Problem

router = APIRouter()

STUDY_UID, SERIES_UID, INSTANCE_NUMBER = 0x0020000D, 0x0020000E, 0x00200013
THUMBNAIL_SIZE = 128
PIXEL_DATA_KEYS = ("7FE00010", "7FE00008", "7FE00009")  # Pixel Data, Float, Double Float


def has_pixel_data(attrs: Mapping[str, Any]) -> bool:
    """Whether an instance's index JSON has pixel data (kept as a BulkDataURI)."""
    return any(key in attrs for key in PIXEL_DATA_KEYS)


def _media_type(request: Request) -> str:
    for media in parse_accept(request.headers.get("accept")):
        if media.type in ("*/*", "*", "image/*"):
            return "image/jpeg"
        if media.type in rendering.SUPPORTED:
            return media.type
    raise not_acceptable(request, ", ".join(rendering.SUPPORTED))


def _options(request: Request) -> rendering.RenderOptions:
    params = {k: v for k, v in request.query_params.items()}
    try:
        return rendering.parse_options(_media_type(request), params)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None


def _render(call: Any, *args: Any) -> bytes:
    try:
        return bytes(call(*args))
    except IndexError as exc:
        raise Problem(404, str(exc)) from None
    except ValueError as exc:
        raise Problem(400, f"cannot render: {exc}") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise Problem(406, f"cannot decode this pixel data for rendering: {exc}") from None


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered",
            summary="An instance rendered as JPEG, PNG or GIF (PS3.18 10.4.1.1.3)")
def rendered_instance(request: Request, study: str, series: str, instance: str) -> Response:
    options = _options(request)
    stored = stored_file(request.app.state.archive, study, series, instance)
    ds = pydicom.dcmread(stored.path)
    return Response(_render(rendering.render_instance, ds, options),
                    media_type=options.media_type)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frame_list}/"
            "rendered", summary="Frames rendered as JPEG, PNG or GIF")
def rendered_frames(request: Request, study: str, series: str, instance: str,
                    frame_list: str) -> Response:
    options = _options(request)
    stored = stored_file(request.app.state.archive, study, series, instance)
    indexes = parse_frame_list(frame_list, frame_count(read_header(stored.path)))
    if len(indexes) > 1:
        raise Problem(400, "one frame at a time can be rendered as an image; for several "
                      "frames ask for the instance as image/gif")
    ds = pydicom.dcmread(stored.path)
    return Response(_render(rendering.render_frame, ds, indexes[0], options),
                    media_type=options.media_type)


def _thumbnail(request: Request, study: str, series: str, instance: str) -> Response:
    media_type = _media_type(request)
    stored = stored_file(request.app.state.archive, study, series, instance)
    ds = pydicom.dcmread(stored.path)
    return Response(_render(rendering.render_thumbnail, ds, THUMBNAIL_SIZE, media_type),
                    media_type=media_type)


def _number(attrs: dict[str, Any]) -> int:
    try:
        return int((attrs.get(f"{INSTANCE_NUMBER:08X}") or {}).get("Value", [0])[0])
    except (TypeError, ValueError):
        return 0


def _middle_instance(archive: Archive, study: str, series: str | None) -> tuple[str, str]:
    """(series, instance) of the middle instance of a series, or of a study's first
    series."""
    keys = {STUDY_UID: matching.parse("UI", study)}
    if series is not None:
        keys[SERIES_UID] = matching.parse("UI", series)
    results = archive.search(Level.IMAGE, keys)
    found: dict[str, list[tuple[int, str]]] = {}
    seen = 0
    try:
        for match in results:
            seen += 1
            if not has_pixel_data(match.attrs):
                continue  # SR, KO, PR…: no image to show
            series_uid = str((match.attrs.get(f"{SERIES_UID:08X}") or {}).get("Value",
                                                                               [""])[0])
            found.setdefault(series_uid, []).append(
                (_number(match.attrs), str(match.file["sop_instance_uid"])))
    finally:
        results.close()
    what = f"series {series} of study {study}" if series else f"study {study}"
    if not seen:
        raise Problem(404, f"no {what} in this archive")
    if not found:
        raise Problem(406, f"no instance of {what} has pixel data: no thumbnail")
    first = next(iter(found))
    instances = sorted(found[first])
    return first, instances[len(instances) // 2][1]


@router.get("/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            summary="An instance's thumbnail (PS3.18 10.4.1.3)")
def instance_thumbnail(request: Request, study: str, series: str, instance: str
                       ) -> Response:
    return _thumbnail(request, study, series, instance)


@router.get("/studies/{study}/series/{series}/thumbnail", summary="A series' thumbnail")
def series_thumbnail(request: Request, study: str, series: str) -> Response:
    _, instance = _middle_instance(request.app.state.archive, study, series)
    return _thumbnail(request, study, series, instance)


@router.get("/studies/{study}/thumbnail", summary="A study's thumbnail")
def study_thumbnail(request: Request, study: str) -> Response:
    series, instance = _middle_instance(request.app.state.archive, study, None)
    return _thumbnail(request, study, series, instance)
