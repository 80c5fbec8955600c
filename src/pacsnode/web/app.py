"""The web front end: one ASGI app serving DICOMweb under ``/dicom-web`` (PS3.18) and the
REST API under ``/api``, documented by OpenAPI at ``/docs``. Every route calls the archive
core (:class:`pacsnode.core.archive.Archive`); none opens the index or the files on its own.
"""

from __future__ import annotations

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pacsnode import __version__
from pacsnode.config import Settings
from pacsnode.core.archive import Archive
from pacsnode.dimse.job_runner import JobRunner
from pacsnode.web import (
    api_archive,
    api_jobs,
    api_mpps,
    api_peers,
    api_resources,
    api_worklist,
    frames,
    problems,
    qido,
    rendered,
    rendered_study,
    stow,
    ui,
    wado,
    wado_uri,
)
from pacsnode.web.urls import DICOMWEB_ROOT


def create_app(archive: Archive, settings: Settings, jobs: JobRunner | None = None
               ) -> FastAPI:
    """The app for ``archive``; ``settings`` give CORS origins and the public base URL;
    ``jobs`` runs the background jobs the API queues (without it they wait in the index for
    a process that runs them)."""
    app = FastAPI(title="pacsnode", version=__version__, docs_url=None, redoc_url=None,
                  description="DICOMweb (QIDO-RS, WADO-RS, STOW-RS) and the REST API of a "
                  "pacsnode archive.")
    # The API page's assets come from the swagger-ui-bundle package, not from a CDN: a
    # PACS network often has no Internet access.
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="swagger-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="pacsnode API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")
    app.state.archive = archive
    app.state.settings = settings
    app.state.jobs = jobs
    problems.install(app)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        # Browser-hosted viewers (OHIF on another origin) read these headers of ours.
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["Content-Type", "Warning",
                                                                "Content-Location"])
    app.include_router(qido.router, prefix=DICOMWEB_ROOT, tags=["QIDO-RS"])
    app.include_router(wado.router, prefix=DICOMWEB_ROOT, tags=["WADO-RS"])
    app.include_router(stow.router, prefix=DICOMWEB_ROOT, tags=["STOW-RS"])
    app.include_router(frames.router, prefix=DICOMWEB_ROOT, tags=["WADO-RS"])
    app.include_router(rendered.router, prefix=DICOMWEB_ROOT, tags=["WADO-RS"])
    app.include_router(rendered_study.router, prefix=DICOMWEB_ROOT, tags=["WADO-RS"])
    app.include_router(wado_uri.router, tags=["WADO-URI"])
    app.include_router(api_resources.router)
    app.include_router(api_peers.router)
    app.include_router(api_jobs.router)
    app.include_router(api_archive.router)
    app.include_router(api_worklist.router)
    app.include_router(api_mpps.router)

    ui.install(app)  # the web UI at "/" (after the API, which keeps its paths)
    return app
