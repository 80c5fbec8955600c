"""WADO-URI (PS3.18 9): ``GET /wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``.

* ``contentType=application/dicom``: the instance as one Part-10 file, in
  ``transferSyntax`` when given (``*`` or the stored syntax: as stored; an uncompressed
  little endian one: converted; another: 406), else Explicit VR Little Endian, converted
  when stored otherwise (as WADO-RS does).
* ``image/jpeg`` (the default, 9.1.2.1.5), ``image/png``, ``image/gif``: rendered
  (:mod:`pacsnode.web.rendering`) with ``frameNumber`` (1-based), ``rows``/``columns`` (the
  viewport), ``windowCenter``/``windowWidth`` and ``imageQuality``.
* A request type other than WADO, a missing UID, or an unsupported content type: 400 or
  406; an unknown object: 404.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from pacsnode.core.archive import Archive
from pacsnode.core.transcode import UNCOMPRESSED, convert
from pacsnode.web import rendering
from pacsnode.web.frames import stored_file
from pacsnode.web.media import DICOM, EXPLICIT_VR_LE
from pacsnode.web.problems import Problem

router = APIRouter()


def _dicom(archive: Archive, path: Path, stored_syntax: str, wanted: str) -> Response:
    target = stored_syntax if wanted in ("*", stored_syntax) else wanted or EXPLICIT_VR_LE
    if target == stored_syntax:
        return FileResponse(path, media_type=DICOM)
    if target not in UNCOMPRESSED:
        raise Problem(406, f"transferSyntax {target} cannot be produced from the stored "
                      f"{stored_syntax}: ask for it as stored (*) or uncompressed")
    fh, temp = archive.store.new_temp()
    with fh:
        convert(path, target, fh)
    return FileResponse(temp, media_type=DICOM,
                        background=BackgroundTask(archive.store.discard_temp, temp))


@router.get("/wado", summary="WADO-URI (PS3.18 9)")
def wado_uri(request: Request) -> Response:
    q = request.query_params
    if q.get("requestType") != "WADO":
        raise Problem(400, "requestType=WADO is required (PS3.18 9.1.2.1.1)")
    study, series, instance = q.get("studyUID"), q.get("seriesUID"), q.get("objectUID")
    if not (study and series and instance):
        raise Problem(400, "studyUID, seriesUID and objectUID are required")
    content_type = (q.get("contentType") or "image/jpeg").split(",")[0].strip().lower()
    archive: Archive = request.app.state.archive
    stored = stored_file(archive, study, series, instance)
    if content_type == DICOM:
        return _dicom(archive, stored.path, stored.syntax, q.get("transferSyntax", ""))
    if content_type not in rendering.SUPPORTED:
        raise Problem(406, f"contentType {content_type} is not offered: "
                      f"{DICOM}, {', '.join(rendering.SUPPORTED)}")
    params: dict[str, str] = {}
    if q.get("windowCenter") and q.get("windowWidth"):
        params["window"] = f"{q['windowCenter']},{q['windowWidth']}"
    if q.get("rows") or q.get("columns"):
        columns, rows = q.get("columns") or q.get("rows"), q.get("rows") or q.get("columns")
        params["viewport"] = f"{columns},{rows}"
    if q.get("imageQuality"):
        params["quality"] = q["imageQuality"]
    try:
        options = rendering.parse_options(content_type, params)
        frame = int(q.get("frameNumber") or 1) - 1
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    ds = pydicom.dcmread(stored.path)
    try:
        image = rendering.render_frame(ds, frame, options)
    except IndexError as exc:
        raise Problem(404, str(exc)) from None
    except ValueError as exc:
        raise Problem(400, f"cannot render: {exc}") from None
    return Response(image, media_type=content_type)
