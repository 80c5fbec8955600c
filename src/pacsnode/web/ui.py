"""The web UI: a single-page application (plain JavaScript modules and CSS, no build step)
served from the package's ``ui/`` folder — ``/`` gives ``index.html``, ``/ui/…`` its
assets. The pages are a client of pacsnode's own DICOMweb (``/dicom-web``) and REST API
(``/api``); nothing here reads the archive. Every asset is served by pacsnode itself, so
the UI works on a network without Internet access.

The one generated asset is ``/ui/dictionary.json``: the names of the standard DICOM
attributes (from pydicom's data dictionary), which the tag browser shows next to each tag.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydicom.datadict import DicomDictionary
from starlette.types import Scope

UI_DIR = Path(__file__).with_name("ui")
# The browser revalidates every asset (ETag / Last-Modified from StaticFiles), so an
# upgraded pacsnode never runs old JavaScript modules against a new API.
NO_CACHE = {"Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    """The UI's files, each answered with ``Cache-Control: no-cache``."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(NO_CACHE)
        return response


@functools.cache
def dictionary_json() -> bytes:
    """``{"00100010": "Patient's Name", …}`` for every standard attribute (repeating-group
    entries such as ``60xx3000`` are not in pydicom's main dictionary and are left out)."""
    names = {f"{tag:08X}": entry[2] for tag, entry in DicomDictionary.items()
             if entry[2]}
    return json.dumps(names, separators=(",", ":"), sort_keys=True).encode()


def install(app: FastAPI) -> None:
    """Serve the UI on ``app``: ``/`` and ``/ui/…`` (after the API routes, which keep
    their paths)."""

    @app.get("/ui/dictionary.json", include_in_schema=False)
    def dictionary() -> Response:
        return Response(dictionary_json(), media_type="application/json",
                        headers={"Cache-Control": "max-age=86400"})

    app.mount("/ui", _Assets(directory=UI_DIR), name="ui")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(UI_DIR / "index.html", media_type="text/html",
                            headers=NO_CACHE)
