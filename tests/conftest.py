"""Fixtures shared by unit and integration tests.

* ``db_url``: parametrised over the two index backends. ``sqlite`` gives ``None`` (SQLite in
  the data directory); ``postgresql`` creates a fresh database on 127.0.0.1:5432 and drops it
  afterwards. Where PostgreSQL is unreachable the PostgreSQL cases skip — except in CI
  (``CI=true``), where they fail, since CI must run them.
* ``pacsnode_server``: a factory starting ``pacsnode serve`` as a subprocess on a free port.
* ``dcmtk``: the path of a DCMTK tool (``dcmtk("storescu")``) and ``DCMTK_ENV``
  (``TCP_NODELAY=1``, without which DCMTK waits ~40 ms on every small message).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("PACSNODE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc)


def require_postgres() -> None:
    """Skip the calling test (or fixture) where PostgreSQL is unreachable; in CI, fail."""
    problem = _pg_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL must be available in CI: {problem}")
        pytest.skip(f"PostgreSQL unavailable: {problem}")


@contextmanager
def pg_database(prefix: str = "pacsnode_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The index database for one test: None (SQLite in the data dir) or a fresh PostgreSQL
    database, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    require_postgres()
    with pg_database() as url:
        yield url


def dcmtk(tool: str) -> str:
    """The path of a DCMTK command-line tool (never pynetdicom's same-named apps that a
    virtualenv puts first on PATH)."""
    for directory in ("/usr/bin", "/usr/local/bin"):
        path = Path(directory) / tool
        if path.exists():
            return str(path)
    found = shutil.which(tool)
    if found is None or Path(found).parent == Path(sys.executable).parent:
        pytest.skip(f"DCMTK's {tool} is not installed (make test installs it)")
    return found


@dataclass
class PacsnodeServer:
    """A running ``pacsnode serve`` subprocess."""

    data_dir: Path
    db: str | None
    port: int
    aet: str = "PACSNODE"
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    http_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"

    def archive_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.db:
            args += ["--db", self.db]
        return args

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "pacsnode", "serve", *self.archive_args(),
               "--dicom-host", "127.0.0.1", "--dicom-port", str(self.port),
               "--aet", self.aet, "--http-host", "127.0.0.1", "--http-port",
               str(self.http_port), *self.extra]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pacsnode serve exited {self.proc.returncode}:\n"
                                   f"{self.log()}")
            if "pacsnode ready" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError(f"pacsnode serve not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()
        return self.proc.returncode

    @property
    def url(self) -> str:
        """The web front end's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        """The DICOMweb service root."""
        return f"{self.url}/dicom-web"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``pacsnode ARGS`` against this server's archive (``--data-dir``/``--db`` are
        appended after the subcommand)."""
        cmd = [sys.executable, "-m", "pacsnode", args[0], *self.archive_args(), *args[1:]]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def pacsnode_server(tmp_path: Path, db_url: str | None
                    ) -> Iterator[Callable[..., PacsnodeServer]]:
    """Factory: ``pacsnode_server(*extra_args)`` starts a server on the test's backend."""
    servers: list[PacsnodeServer] = []

    def start(*extra: str) -> PacsnodeServer:
        server = PacsnodeServer(data_dir=tmp_path / f"data{len(servers)}", db=db_url,
                                port=free_port(), extra=extra)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[PacsnodeServer]:
    """One ``pacsnode serve`` per index backend, shared by a module's tests (which must then
    leave what it stores unchanged)."""
    with ExitStack() as stack:
        db = None
        if request.param == "postgresql":
            require_postgres()
            db = stack.enter_context(pg_database())
        base = tmp_path_factory.mktemp("server")
        server = PacsnodeServer(data_dir=base / "data", db=db, port=free_port())
        server.start()
        stack.callback(server.stop)
        yield server
