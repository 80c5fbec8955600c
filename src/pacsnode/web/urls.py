"""The URLs pacsnode writes into its answers (Retrieve URL, BulkDataURI, Location)."""

from __future__ import annotations

from fastapi import Request

DICOMWEB_ROOT = "/dicom-web"


def base_url(request: Request) -> str:
    """The origin clients reach us at: the ``public_url`` setting when set (behind a reverse
    proxy), else the request's scheme and host with the port we listen on when the Host
    header has none (some clients, dicomweb-client among them, send Host without the port)."""
    public = str(request.app.state.settings.public_url or "").rstrip("/")
    if public:
        return public
    host = request.headers.get("host", "")
    if not host:
        server = request.scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    elif ":" not in host.rsplit("]", 1)[-1]:
        server = request.scope.get("server")
        if server and server[1] not in (80, 443):
            host = f"{host}:{server[1]}"
    return f"{request.url.scheme}://{host}"


def dicomweb(request: Request) -> str:
    """The DICOMweb service root, e.g. ``http://host:8042/dicom-web``."""
    return base_url(request) + DICOMWEB_ROOT


def study_url(root: str, study: str) -> str:
    return f"{root}/studies/{study}"


def series_url(root: str, study: str, series: str) -> str:
    return f"{root}/studies/{study}/series/{series}"


def instance_url(root: str, study: str, series: str, instance: str) -> str:
    return f"{root}/studies/{study}/series/{series}/instances/{instance}"
