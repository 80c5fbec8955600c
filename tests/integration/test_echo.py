"""C-ECHO (PS3.4 A): DCMTK's echoscu and pacsnode's own client against pacsnode serve."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import DCMTK_ENV, dcmtk


def test_echoscu_gets_success(pacsnode_server):
    server = pacsnode_server()
    result = subprocess.run([dcmtk("echoscu"), "-aec", server.aet, "127.0.0.1",
                             str(server.port)], env=DCMTK_ENV, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 5
    while "from ECHOSCU" not in server.log() or "released" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_pacsnode_echo_command(pacsnode_server):
    server = pacsnode_server()
    ok = server.cli("echo", "127.0.0.1", str(server.port), "-c", server.aet)
    assert "success" in ok.stdout
    closed = server.cli("echo", "127.0.0.1", "1", check=False)
    assert closed.returncode != 0
    assert "could not connect" in closed.stderr or "aborted" in closed.stderr
