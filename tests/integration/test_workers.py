"""Several receiving processes on one DICOM port (``--workers``, pacsnode.dimse.workers):
they share the listening socket, balance connections between them, a dead one is replaced,
and a stop leaves none behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.corpus import run_storescu

WORKER_MODULE = "pacsnode.dimse.worker_process"


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    return [p for p in parent.children() if WORKER_MODULE in p.cmdline()]


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _has_connection(process: psutil.Process, port: int) -> bool:
    return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
               for c in process.net_connections(kind="tcp"))


def test_receiving_processes_share_the_port_and_a_dead_one_is_replaced(
        tmp_path: Path) -> None:
    server = PacsnodeServer(data_dir=tmp_path / "data", db=None, port=free_port(),
                            extra=("--workers", "3", "--log-level", "debug"))
    server.start()
    assert server.proc is not None
    parent = psutil.Process(server.proc.pid)
    try:
        workers = _workers(parent)
        # two workers beside serve itself, and no helper process
        assert len(workers) == 2 and len(parent.children(recursive=True)) == 2

        original = {p.pid for p in workers}
        workers[0].kill()
        assert _wait_for(lambda: "exited with -9; restarting" in server.log())
        assert _wait_for(lambda: len(_workers(parent)) == 2
                         and workers[0].pid not in {p.pid for p in _workers(parent)})
        workers = _workers(parent)
        replacement = next(p for p in workers if p.pid not in original)
        assert _wait_for(lambda: f"(pid {replacement.pid}) accepting" in server.log())
        # the replacement takes its share: three idle connections, one per process
        connections = [socket.create_connection(("127.0.0.1", server.port))
                       for _ in range(3)]
        try:
            every = (parent, *workers)
            assert _wait_for(lambda: all(_has_connection(p, server.port) for p in every),
                             timeout=10), [(p.pid, _has_connection(p, server.port)) for p in every]
        finally:
            for conn in connections:
                conn.close()

        files = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1,
                                series_per_study=1, instances_per_series=4, seed=20261127)
        run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files,
                           tmp_path / "scu", called_aet=server.aet)
        assert run.returncode == 0 and set(run.responses.values()) == {"Success"}
    finally:
        code = server.stop()
    assert code == 0
    assert _wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                     for p in workers), timeout=5)


def test_workers_stop_when_serve_dies(tmp_path: Path) -> None:
    server = PacsnodeServer(data_dir=tmp_path / "data", db=None, port=free_port(),
                            extra=("--workers", "2"))
    server.start()
    assert server.proc is not None
    parent = psutil.Process(server.proc.pid)
    try:
        workers = _workers(parent)
        assert len(workers) == 1
        parent.kill()  # serve alone, not its process group
        server.proc.wait()
        assert _wait_for(lambda: not workers[0].is_running(), timeout=15)
        assert "serve process (pid" in server.log() and "is gone" in server.log()
        # the port is free again: a new server binds it
        again = PacsnodeServer(data_dir=server.data_dir, db=None, port=server.port,
                               extra=server.extra)
        again.start()
        again.stop()
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()
