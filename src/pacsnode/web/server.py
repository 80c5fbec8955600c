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
from pacsnode.dimse.job_runner import JobRunner
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


def listen(host: str, port: int) -> socket.socket:
    """The listening socket. Its protocol is given explicitly as TCP: asyncio sets
    TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP, and ``create_server``'s
    sockets have 0 there — each response whose body is written after its headers then
    waited for a delayed ACK (40 ms on Linux)."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                              flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def start(settings: Settings, archive: Archive, jobs: JobRunner | None = None) -> WebServer:
    """Bind ``http_host:http_port`` (0: any free port) and serve the app from a thread."""
    sock = listen(settings.http_host, settings.http_port)
    config = uvicorn.Config(create_app(archive, settings, jobs), log_config=None,
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
