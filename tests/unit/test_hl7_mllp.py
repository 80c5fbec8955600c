"""MLLP framing and the threaded server (:mod:`pacsnode.hl7.mllp`; HL7 v2.5.1 Appendix C.4):
several messages per connection, junk between blocks, messages split across packets, a lone
FS, oversized messages (bounded memory), TCP_NODELAY, idle timeout, clean stop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pacsnode.hl7 import mllp
from tests.hl7_messages import send


def collect(chunks: list[bytes], max_bytes: int = mllp.MAX_MESSAGE_BYTES
            ) -> list[tuple[bytes, bool]]:
    a, b = socket.socketpair()
    with a, b:
        def writer() -> None:
            for chunk in chunks:
                a.sendall(chunk)
                time.sleep(0.001)
            a.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=writer)
        thread.start()
        out = list(mllp.read_messages(b, max_bytes))
        thread.join()
    return out


def test_frame() -> None:
    assert mllp.frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_several_messages_junk_and_splits() -> None:
    chunks = [b"junk\x0bMSH|1\x1c", b"\x0d\r\n\x0bMSH", b"|2\x1c\x0d\x0bMSH|3\x1c\x0d",
              b"\x0bMSH|4\x1c"]  # the last one with a lone FS
    assert collect(chunks) == [(b"MSH|1", False), (b"MSH|2", False), (b"MSH|3", False),
                               (b"MSH|4", False)]


def test_unfinished_message_is_dropped_at_close() -> None:
    assert collect([b"\x0bMSH|1\x1c\x0d\x0bMSH|2 never ends"]) == [(b"MSH|1", False)]


def test_oversized_message_keeps_its_start_only() -> None:
    big = b"MSH|BIG|" + b"x" * 50_000
    out = collect([b"\x0b", *[big[i:i + 7000] for i in range(0, len(big), 7000)],
                   b"\x1c\x0d\x0bMSH|next\x1c\x0d"], max_bytes=10_000)
    assert len(out) == 2
    start, truncated = out[0]
    assert truncated and big.startswith(start) and len(start) == mllp.HEADER_BYTES
    assert out[1] == (b"MSH|next", False)


@pytest.fixture
def server() -> Iterator[mllp.MllpServer]:
    def handler(message: bytes, truncated: bool, peer: str) -> bytes:
        if message == b"boom":
            raise OSError("handler failed")
        return b"ACK:" + message + (b":T" if truncated else b"")

    srv = mllp.MllpServer(("127.0.0.1", 0), handler, timeout=1.0, max_bytes=1000)
    srv.start()
    yield srv
    srv.stop()


def test_server_answers_each_message(server: mllp.MllpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert send(sock, b"one") == b"ACK:one"
        assert send(sock, b"two") == b"ACK:two"
        # larger than max_bytes: the handler gets its start, flagged
        assert send(sock, b"y" * 5000) == b"ACK:" + b"y" * mllp.HEADER_BYTES + b":T"
        assert send(sock, b"four") == b"ACK:four"
        sock.sendall(mllp.frame(b"boom"))  # a failing handler ends this connection only
        assert sock.recv(100) == b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as other:
        assert send(other, b"three") == b"ACK:three"


def test_idle_connection_is_closed(server: mllp.MllpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"\x0bhalf a message")
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server after its 1 s timeout
        assert 0.5 < time.monotonic() - started < 4


def test_stop_closes_open_connections() -> None:
    srv = mllp.MllpServer(("127.0.0.1", 0), lambda m, t, p: b"ok", timeout=30.0)
    srv.start()
    port = srv.port
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with sock:
        assert send(sock, b"m") == b"ok"
        started = time.monotonic()
        srv.stop()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
