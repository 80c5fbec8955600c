"""Query/Retrieve only from declared peers (``--restrict-qr-to-peers``), PS3.8 9.3.4: other
calling AE titles are rejected (rejected-permanent, service-user, calling AE title not
recognised); storage and verification stay open to anyone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk
from tests.unit.dicomdata import make_dataset

pytestmark = pytest.mark.dcmtk


def _config(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "pacsnode.toml"
    path.write_text(f'[peers.viewer]\naet = "VIEWER"\nhost = "{host}"\nport = 104\n')
    return path


def _find(server: PacsnodeServer, calling: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([dcmtk("findscu"), "-S", "-aet", calling, "-aec", server.aet,
                           "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                           "127.0.0.1", str(server.port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=60)


def _store(server: PacsnodeServer, calling: str, tmp_path: Path) -> int:
    path = tmp_path / "one.dcm"
    make_dataset().save_as(path, enforce_file_format=True)
    return subprocess.run([dcmtk("storescu"), "-aet", calling, "-aec", server.aet,
                           "127.0.0.1", str(server.port), str(path)],
                          capture_output=True, env=DCMTK_ENV, timeout=60).returncode


def test_queries_only_from_declared_peers(pacsnode_server, tmp_path):
    server = pacsnode_server("--config", str(_config(tmp_path, "127.0.0.1")),
                             "--restrict-qr-to-peers")
    assert _find(server, "VIEWER").returncode == 0
    refused = _find(server, "STRANGER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    assert "calling AE title 'STRANGER' is not a declared peer" in server.log()
    # storage and verification are not restricted
    assert _store(server, "STRANGER", tmp_path) == 0
    echo = subprocess.run([dcmtk("echoscu"), "-aet", "STRANGER", "-aec", server.aet,
                           "127.0.0.1", str(server.port)], env=DCMTK_ENV, timeout=60)
    assert echo.returncode == 0


def test_peer_host_is_checked(pacsnode_server, tmp_path):
    server = pacsnode_server("--config", str(_config(tmp_path, "192.0.2.7")),
                             "--restrict-qr-to-peers", "--check-peer-host")
    refused = _find(server, "VIEWER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    assert "VIEWER must connect from 192.0.2.7, not 127.0.0.1" in server.log()


def test_anyone_may_query_by_default(pacsnode_server):
    server = pacsnode_server()
    assert _find(server, "STRANGER").returncode == 0
