"""MLLP, the Minimal Lower Layer Protocol (HL7 v2.5.1 Appendix C "Lower layer protocols",
C.4 MLLP release 2 framing): each message travels as ``<VT> message <FS><CR>`` (0x0B …
0x1C 0x0D) over TCP, and the answer to it likewise on the same connection.

:class:`MllpServer` is a threaded TCP server: one thread per connection, several messages
per connection, each answered before the next is read (HL7 original acknowledgment mode).
Choices (conformance statement §6e):

* bytes before a start block are dropped; a message ends at FS (a CR right after it is
  consumed; a lone FS is accepted);
* a message larger than :data:`MAX_MESSAGE_BYTES` is not kept: its first
  :data:`HEADER_BYTES` are, to answer it, and the rest up to its FS is dropped — memory
  stays bounded whatever a peer sends;
* TCP_NODELAY on every connection (each answer is one small segment), and a read timeout:
  a connection idle for ``timeout`` seconds is closed;
* :meth:`MllpServer.stop` stops accepting and closes the open connections.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger("pacsnode.hl7")

START_BLOCK, END_BLOCK, CARRIAGE_RETURN = b"\x0b", b"\x1c", b"\x0d"
MAX_MESSAGE_BYTES = 1024 * 1024
HEADER_BYTES = 4096
RECV_BYTES = 65536

# (message bytes, whether the message was too large and only its start is given, peer)
Handler = Callable[[bytes, bool, str], bytes]


def frame(payload: bytes) -> bytes:
    """``payload`` in an MLLP block."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


def read_messages(sock: socket.socket, max_bytes: int = MAX_MESSAGE_BYTES
                  ) -> Iterator[tuple[bytes, bool]]:
    """The messages arriving on ``sock`` as (bytes, truncated) until the peer closes the
    connection; ``socket.timeout`` (an ``OSError``) when it stays silent too long."""
    buffer = bytearray()
    in_message = False
    truncated = False
    while True:
        if not in_message:
            start = buffer.find(START_BLOCK)
            if start < 0:
                buffer.clear()  # junk between messages
            else:
                del buffer[:start + 1]
                in_message, truncated = True, False
        if in_message:
            end = buffer.find(END_BLOCK)
            if end >= 0:
                truncated = truncated or end > max_bytes
                message = bytes(buffer[:min(end, HEADER_BYTES) if truncated else end])
                del buffer[:end + 1]
                if buffer[:1] == CARRIAGE_RETURN:
                    del buffer[:1]
                in_message = False
                yield message, truncated
                continue
            if len(buffer) > max_bytes or (truncated and len(buffer) > HEADER_BYTES):
                truncated = True
                del buffer[HEADER_BYTES:]
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            return
        buffer += chunk


class MllpServer(socketserver.ThreadingTCPServer):
    """MLLP over TCP: every message received is passed to ``handler``, whose answer is sent
    back framed."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Handler, *, timeout: float = 60.0,
                 max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.handler = handler
        self.read_timeout = timeout
        self.max_bytes = max_bytes
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, _Connection)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.5},
                                        name="pacsnode-hl7", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close the listening socket and every open connection."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5.0)
        self.server_close()
        with self._lock:
            connections = list(self._open)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)


class _Connection(socketserver.BaseRequestHandler):
    """One TCP connection: read messages, answer each."""

    server: MllpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        self.server.opened(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.server.read_timeout)
            for message, truncated in read_messages(sock, self.server.max_bytes):
                sock.sendall(frame(self.server.handler(message, truncated, peer)))
        except TimeoutError:
            log.info("HL7 connection from %s idle for %.0f s: closed", peer,
                     self.server.read_timeout)
        except OSError as exc:
            log.info("HL7 connection from %s ended: %s", peer, exc)
        finally:
            self.server.closed(sock)
