"""Socket behaviour pynetdicom 3 does not let us configure, set in one place.

* ``TCP_NODELAY`` on every association socket, as SCP and as SCU: without it each small
  DIMSE message waits for a delayed ACK (~40 ms), which caps throughput at a few dozen
  instances per second.
* Reading a PDU with ``recv_into`` a buffer of its announced size instead of pynetdicom's
  4 KiB ``recv`` loop (a 512 KiB data set was 128 Python iterations).
* A bound on the announced PDU length: a peer announcing a PDU larger than we accept (a
  4 GB PDU, garbage on the port) gets an A-ABORT (PS3.8 9.3.8, source service-provider,
  reason invalid-PDU-parameter-value) instead of the association buffering it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from pynetdicom.transport import AssociationSocket

log = logging.getLogger(__name__)

A_ABORT_INVALID_PDU_PARAMETER = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6])
# Room for PDU/PDV headers around the largest P-DATA value we announce; association
# requests with many contexts are far below this.
PDU_OVERHEAD = 64 * 1024
UNLIMITED_PDU_CAP = 256 * 1024 * 1024

_state: dict[str, Any] = {"limit": UNLIMITED_PDU_CAP, "installed": False}


class PduTooLarge(OSError):
    """The peer announced a PDU larger than pacsnode accepts."""


def _recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    sock = self.socket
    assert sock is not None
    if nr_bytes > _state["limit"]:
        log.warning("A-ABORT to %s: announced PDU length %d exceeds the %d bytes accepted",
                    getattr(self, "address", "?"), nr_bytes, _state["limit"])
        with contextlib.suppress(OSError):
            sock.sendall(A_ABORT_INVALID_PDU_PARAMETER)
        raise PduTooLarge(f"PDU length {nr_bytes} exceeds {_state['limit']}")
    buf = bytearray(nr_bytes)
    view = memoryview(buf)
    got = 0
    while got < nr_bytes:
        n = sock.recv_into(view[got:], nr_bytes - got)
        if n == 0:
            del view
            return buf[:got]
        got += n
    return buf


def _nodelay(sock: socket.socket | None) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def install(max_pdu_size: int) -> None:
    """Apply the tuning to pynetdicom (idempotent); ``max_pdu_size`` 0 means unlimited."""
    _state["limit"] = (max_pdu_size + PDU_OVERHEAD) if max_pdu_size else UNLIMITED_PDU_CAP
    if _state["installed"]:
        return
    original_init = AssociationSocket.__init__

    def _init(self: AssociationSocket, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _nodelay(self.socket)

    AssociationSocket.__init__ = _init  # type: ignore[method-assign]
    AssociationSocket.recv = _recv  # type: ignore[method-assign]
    _state["installed"] = True
