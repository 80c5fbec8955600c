"""WADO-RS rendered studies and series (PS3.18 10.4.1.1.3, Table 10.4.1-3: Rendered Study
``/studies/{study}/rendered`` and Rendered Series ``/studies/{study}/series/{series}/
rendered``): every image instance of the study or series, rendered as an instance's
rendered resource is (:mod:`pacsnode.web.rendered`, :mod:`pacsnode.web.rendering`), in one
``multipart/related`` response (PS3.18 8.6.1.2, 10.4.3.3).

* Media types (PS3.18 8.7.4): ``multipart/related; type="image/jpeg"`` (the default, also
  for ``*/*``, ``image/*``, ``multipart/*`` or a ``multipart/related`` without ``type``),
  ``type="image/png"`` or ``type="image/gif"``; the bare ``image/jpeg``, ``image/png`` and
  ``image/gif`` are answered with that multipart too (some clients, dicomweb-client among
  them, ask for a rendered series so). Another media type: 406.
* One part per instance that has pixel data (known from the index; instances without, such
  as structured reports or presentation states, are left out), in the order every WADO-RS
  retrieval uses (the order the instances were first stored). Each part is what the
  instance's own ``…/rendered`` answers: a multi-frame instance is its first frame in JPEG
  or PNG, an animation of its frames in GIF. Each part has ``Content-Type``,
  ``Content-Length`` and ``Content-Location`` (the instance's rendered resource).
* The query parameters of PS3.18 8.3.5.1 (``window``, ``viewport``, ``quality``) apply to
  each image; a malformed one: 400.
* Unknown study or series: 404; one with no image instance: 406. The first image is
  rendered before the response starts, so that its errors have their status (400, 406);
  a later instance that cannot be rendered ends the stream without its closing delimiter
  (the error is logged), as a failed part of a WADO-RS retrieve does.
* Memory: one stored instance and one encoded image at a time; the list of the instances
  (UIDs and file paths) is read from the index before the response starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pacsnode.core.archive import Archive
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.web import multipart, rendering, urls
from pacsnode.web.media import MULTIPART_RELATED, not_acceptable, parse_accept
from pacsnode.web.problems import Problem
from pacsnode.web.rendered import has_pixel_data

log = logging.getLogger("pacsnode.web")
router = APIRouter()

STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
ANY_IMAGE = ("", "*", "*/*", "image/*")


def rendered_type_for(accept: str | None) -> str | None:
    """The media type of the parts for an Accept header (first acceptable range by
    quality value, PS3.18 8.7.4); None when no rendered type is acceptable."""
    for media in parse_accept(accept):
        if media.type == MULTIPART_RELATED:
            part_type = media.params.get("type", "").lower()
        elif media.type in ("*/*", "*", "multipart/*"):
            part_type = ""
        else:
            part_type = media.type
        if part_type in ANY_IMAGE:
            return "image/jpeg"
        if part_type in rendering.SUPPORTED:
            return part_type
    return None


@dataclass(frozen=True)
class Target:
    """One instance to render: its UIDs and stored file."""

    series: str
    instance: str
    path: Path


def _first(attrs: Mapping[str, Any], tag: int) -> str:
    return str(((attrs.get(f"{tag:08X}") or {}).get("Value") or [""])[0])


def targets(archive: Archive, study: str, series: str | None) -> list[Target]:
    """The image instances of a study or series in retrieval order; 404 when there is no
    instance at all, 406 when none has pixel data."""
    keys = {STUDY_UID: matching.parse("UI", study)}
    if series is not None:
        keys[SERIES_UID] = matching.parse("UI", series)
    what = f"series {series} of study {study}" if series is not None else f"study {study}"
    found: list[Target] = []
    seen = 0
    results = archive.search(Level.IMAGE, keys)
    try:
        for match in results:
            seen += 1
            if has_pixel_data(match.attrs):
                found.append(Target(_first(match.attrs, SERIES_UID),
                                    str(match.file["sop_instance_uid"]),
                                    archive.store.path_of(str(match.file["storage_key"]))))
    finally:
        results.close()
    if not seen:
        raise Problem(404, f"no {what} in this archive")
    if not found:
        raise Problem(406, f"no instance of {what} has pixel data: it cannot be rendered "
                      "as images")
    return found


def render(target: Target, options: rendering.RenderOptions) -> bytes:
    """One instance as its rendered resource (:func:`rendering.render_instance`)."""
    return rendering.render_instance(pydicom.dcmread(target.path), options)


def _render_first(target: Target, options: rendering.RenderOptions) -> bytes:
    """As :func:`render`, errors as the instance's own rendered resource answers them."""
    try:
        return render(target, options)
    except IndexError as exc:
        raise Problem(404, str(exc)) from None
    except ValueError as exc:
        raise Problem(400, f"cannot render instance {target.instance}: {exc}") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise Problem(406, f"cannot decode the pixel data of instance {target.instance} "
                      f"for rendering: {exc}") from None


def _part(boundary: str, media_type: str, location: str, image: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Length: {len(image)}\r\n"
            f"Content-Location: {location}\r\n\r\n").encode() + image + b"\r\n"


def _body(first: bytes, chosen: list[Target], options: rendering.RenderOptions, root: str,
          study: str, boundary: str) -> Iterator[bytes]:
    for n, target in enumerate(chosen):
        if n == 0:
            image = first
        else:
            try:
                image = render(target, options)
            except Exception as exc:  # a part cannot be undone once the stream has started
                log.error("WADO-RS rendered: instance %s could not be rendered: %s",
                          target.instance, exc)
                raise
        location = urls.instance_url(root, study, target.series, target.instance)
        yield _part(boundary, options.media_type, f"{location}/rendered", image)
    yield f"--{boundary}--\r\n".encode()


def rendered(request: Request, study: str, series: str | None) -> Response:
    """A Rendered Study or Rendered Series (PS3.18 10.4.1.1.3)."""
    media_type = rendered_type_for(request.headers.get("accept"))
    if media_type is None:
        raise not_acceptable(request, ", ".join(
            f'{MULTIPART_RELATED}; type="{t}"' for t in rendering.SUPPORTED))
    try:
        options = rendering.parse_options(media_type, dict(request.query_params.items()))
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    chosen = targets(request.app.state.archive, study, series)
    first = _render_first(chosen[0], options)
    boundary = multipart.new_boundary()
    return StreamingResponse(
        _body(first, chosen, options, urls.dicomweb(request), study, boundary),
        media_type=multipart.content_type(boundary, media_type))


@router.get("/studies/{study}/rendered",
            summary="A study's images rendered as JPEG, PNG or GIF (PS3.18 10.4.1.1.3)")
def rendered_study(request: Request, study: str) -> Response:
    return rendered(request, study, None)


@router.get("/studies/{study}/series/{series}/rendered",
            summary="A series' images rendered as JPEG, PNG or GIF (PS3.18 10.4.1.1.3)")
def rendered_series(request: Request, study: str, series: str) -> Response:
    return rendered(request, study, series)
