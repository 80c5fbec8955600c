"""Several receiving processes on one DICOM port.

pynetdicom runs each association in a thread, so one process uses one core at most (the
GIL). With N receiving processes the ``serve`` process binds and listens, is receiving
process 0 itself, and starts N-1 workers; each accepts associations from the shared
listening socket (non-blocking: every process's selector wakes, the first to call accept()
wins, so a busy one naturally takes fewer) and runs its own archive connection.

A worker is a new Python process (:mod:`pacsnode.dimse.worker_process`), not a fork: the
parent has threads, and a fork of a threaded process can inherit a lock held by another
thread. It is started with :mod:`subprocess`, not :mod:`multiprocessing`, which would add a
resource-tracker process (about 12 MiB) and import the parent's main module (the whole
command line) into each worker. The listening socket and the connection counts are passed
as inherited file descriptors, the settings as a pickle on the worker's standard input. The
parent restarts a worker that dies and stops them all on SIGTERM/SIGINT.

``max_associations`` holds for the node as a whole: each receiving process counts its open
connections in its own slot of an array shared with the others
(:class:`ConnectionCounts`), and its AE's limit is the configured one minus the other
processes' associations.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from pacsnode.config import Settings

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0

# How a worker is started; its arguments follow (see pacsnode.dimse.worker_process).
WORKER_COMMAND = [sys.executable, "-m", "pacsnode.dimse.worker_process"]


class ConnectionCounts:
    """Open connections per receiving process, in a shared memory mapping of a file that
    every process maps (-1: a process not accepting yet).

    Each slot has one writer, the process it counts (the parent writes a slot only while
    its worker is not running), so a lock between threads of that process is enough; the
    others only read, and a stale read costs at most one unevenly placed association."""

    SLOT = 4  # bytes of one int32

    def __init__(self, fd: int, count: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, count * self.SLOT)
        self._slots = memoryview(self._map).cast("i")
        self._lock = threading.Lock()

    @classmethod
    def create(cls, count: int) -> ConnectionCounts:
        """A new array of ``count`` zeros, in an unlinked temporary file whose descriptor
        workers inherit (:attr:`fd`)."""
        with tempfile.TemporaryFile() as file:
            fd = os.dup(file.fileno())
        os.ftruncate(fd, count * cls.SLOT)
        return cls(fd, count)

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, index: int) -> int:
        return int(self._slots[index])

    def __setitem__(self, index: int, value: int) -> None:
        self._slots[index] = value

    def __iter__(self) -> Any:
        return iter(self._slots.tolist())

    def get_lock(self) -> threading.Lock:
        """The lock this process's threads take to change their slot."""
        return self._lock


class SharedSocketServer(ThreadedAssociationServer):
    """A pynetdicom association server that accepts on a socket created by the parent."""

    listen_socket: socket.socket | None = None

    def server_bind(self) -> None:
        assert self.listen_socket is not None
        if self.socket is not None:
            self.socket.close()
        self.socket = self.listen_socket
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Already listening (the parent called listen())."""

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept, unless another receiving process has fewer connections (least-connections
        balancing: it will take this one); count the connection at once if accepted."""
        slots, index = PooledAE.slots, PooledAE.index
        if slots is not None:
            mine = slots[index]
            # A slot of -1 is a worker not accepting yet (starting, or being restarted).
            if any(0 <= n < mine for i, n in enumerate(slots) if i != index):
                time.sleep(0.001)  # let the less busy process accept; do not spin
                raise BlockingIOError("left to a less busy receiving process")
        conn, address = super().get_request()  # BlockingIOError if another process won
        conn.setblocking(True)
        if slots is not None:
            with slots.get_lock():
                slots[index] += 1
        return conn, address

    def server_close(self) -> None:
        """Leave the shared socket open: it belongs to the parent."""

    def shutdown(self) -> None:
        """Stop serving. (pynetdicom's version also unregisters the server from its AE,
        which only ``AE.start_server`` registers it with.)"""
        with contextlib.suppress(ValueError):
            super().shutdown()


class PooledAE(AE):
    """An AE whose association limit (PS3.8 local-limit-exceeded) counts the associations
    of every receiving process, not only its own."""

    slots: ConnectionCounts | None = None  # open connections per receiving process
    index = 0

    @property
    def configured_limit(self) -> int:
        """The node-wide limit as configured."""
        return int(self._maximum_associations)

    def _limit_here(self) -> int:
        if self.slots is None:
            return self.configured_limit
        others = sum(max(0, n) for i, n in enumerate(self.slots) if i != self.index)
        return self.configured_limit - others

    def _set_limit(self, value: int) -> None:
        setter = AE.__dict__["maximum_associations"].fset
        setter(self, value)

    # pynetdicom compares its own open associations with this on each A-ASSOCIATE-RQ.
    maximum_associations = property(_limit_here, _set_limit)


def _count_connections(slots: ConnectionCounts, index: int) -> list[tuple[Any, Any]]:
    """The handler that uncounts a closed connection from this process's slot."""

    def closed(_event: Any) -> None:
        with slots.get_lock():
            slots[index] = max(0, slots[index] - 1)

    # Connections are counted when accepted (SharedSocketServer.get_request).
    return [(evt.EVT_CONN_CLOSE, closed)]


def listen(settings: Settings) -> socket.socket:
    """Bind and listen on the DICOM port, for the workers to share."""
    family = socket.AF_INET6 if ":" in settings.dicom_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.dicom_host, settings.dicom_port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def serve_shared(settings: Settings, archive: Any, sock: socket.socket,
                 slots: ConnectionCounts, index: int) -> SharedSocketServer:
    """An association server for receiving process ``index`` on the shared socket (not yet
    serving: call ``serve_forever``)."""
    from pacsnode.dimse import services, spool
    from pacsnode.dimse.server import build_ae

    spool.install(archive.store.temp_dir, settings.aet, archive.ingestor.start_spooled)
    services.install_access_policy(archive, settings)
    PooledAE.slots, PooledAE.index = slots, index
    ae = build_ae(settings, ae_class=PooledAE)
    SharedSocketServer.listen_socket = sock
    handlers: list[Any] = [*services.handlers(archive, settings),
                           *_count_connections(slots, index)]
    server = ae.make_server(sock.getsockname()[:2], evt_handlers=handlers,
                            server_class=SharedSocketServer)
    assert isinstance(server, SharedSocketServer)
    return server


def run_worker(settings: Settings, sock: socket.socket, index: int,
               slots: ConnectionCounts) -> None:
    """A worker process's life: its own archive and association server, until SIGTERM."""
    from pacsnode import logs
    from pacsnode.core import index_flush
    from pacsnode.core.archive import Archive

    logs.setup(settings.log_level, settings.log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    archive = Archive(settings, migrate_schema=False)
    flusher = index_flush.IndexFlusher(archive, owner=False)
    flusher.start()
    server = serve_shared(settings, archive, sock, slots, index)
    with slots.get_lock():
        slots[index] = 0  # accepting from now on
    stopping = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=_stop_when_orphaned, args=(stopping, stop), daemon=True,
                     name="pacsnode-parent-watch").start()
    log.debug("worker %d (pid %d) accepting", index, os.getpid())
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        flusher.stop()
        archive.close()


def _stop_when_orphaned(stopping: threading.Event, stop: Any,
                        interval: float = 1.0) -> None:
    """Stop this worker if ``serve`` dies without stopping it (SIGKILL, a crash): an
    orphan would keep the DICOM port, and a new ``serve`` could not bind it."""
    parent = os.getppid()
    while not stopping.wait(interval):
        if os.getppid() != parent:
            log.error("the serve process (pid %d) is gone; this worker stops", parent)
            stop(signal.SIGTERM, None)
            return


class WorkerPool:
    """The parent's side: start, watch and stop the worker processes."""

    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        """``count`` receiving processes in all: this one (index 0) and ``count - 1``
        workers."""
        self.settings = settings
        self.sock = sock
        self.count = count
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.slots = ConnectionCounts.create(count)
        self._settings_pickle = pickle.dumps(settings)
        self._stopping = threading.Event()

    def _spawn(self, index: int) -> None:
        with self.slots.get_lock():
            self.slots[index] = -1  # not accepting until it says so; a dead one's are gone
        sock_fd, slots_fd = self.sock.fileno(), self.slots.fd
        proc = subprocess.Popen(
            [*WORKER_COMMAND, str(index), str(self.count), str(sock_fd), str(slots_fd)],
            stdin=subprocess.PIPE, pass_fds=(sock_fd, slots_fd))
        assert proc.stdin is not None
        # A worker that died at once is restarted by watch(); its closed pipe is no error.
        with contextlib.suppress(BrokenPipeError), proc.stdin:
            proc.stdin.write(self._settings_pickle)
        self._procs[index] = proc

    def start(self) -> None:
        """Start workers 1 to count-1 (the caller is receiving process 0)."""
        for index in range(1, self.count):
            self._spawn(index)
        log.info("%d receiving processes: %s", self.count,
                 ", ".join(str(p) for p in (os.getpid(), *(p.pid for p in
                                                          self._procs.values()))))

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every worker accepts (so that early associations are spread over
        all processes); False if one did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.slots[i] >= 0 for i in range(1, self.count)):
                return True
            if any(p.poll() is not None for p in self._procs.values()):
                return False
            time.sleep(0.02)
        return False

    def watch(self, stop: threading.Event) -> None:
        """Restart workers that die until ``stop`` is set."""
        while not stop.wait(0.5):
            for index, proc in list(self._procs.items()):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.error("receiving process %d (pid %s) exited with %s; restarting",
                              index, proc.pid, proc.returncode)
                    time.sleep(RESTART_DELAY_S)
                    self._spawn(index)

    def shutdown(self, timeout: float = 20.0) -> None:
        """SIGTERM every worker, wait, then SIGKILL what is left."""
        self._stopping.set()
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.sock.close()
