"""The web front end's HTTP server: uvicorn, in a thread of the ``pacsnode serve`` process
(next to the DICOM listener, on the same archive)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from pacsnode.config import Settings
from pacsnode.core.archive import Archive
from pacsnode.web.app import create_app

log = logging.getLogger("pacsnode.web")

START_TIMEOUT_S = 30.0


class WebServer:
    """A running uvicorn server; :meth:`stop` ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread,
                 sock: socket.socket) -> None:
        self._server = server
        self._thread = thread
        self._sock = sock
        self.port = int(sock.getsockname()[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish running requests (up to ``timeout``), close."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        self._sock.close()


def start(settings: Settings, archive: Archive) -> WebServer:
    """Bind ``http_host:http_port`` (0: any free port) and serve the app from a thread."""
    sock = socket.create_server((settings.http_host, settings.http_port), reuse_port=False)
    config = uvicorn.Config(create_app(archive, settings), log_config=None,
                            access_log=False, proxy_headers=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="pacsnode-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError(f"the HTTP server did not start on port {settings.http_port}")
    web = WebServer(server, thread, sock)
    log.info("HTTP on %s:%d (DICOMweb at /dicom-web, API docs at /docs)",
             settings.http_host, web.port)
    return web
