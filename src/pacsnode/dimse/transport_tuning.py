"""Socket behaviour pynetdicom 3 does not let us configure, set in one place.

* ``TCP_NODELAY`` on every association socket, as SCP and as SCU: without it each small
  DIMSE message waits for a delayed ACK (~40 ms), which caps throughput at a few dozen
  instances per second.
* Reading a PDU with ``recv_into`` a buffer of its announced size instead of pynetdicom's
  4 KiB ``recv`` loop (a 512 KiB data set was 128 Python iterations).
* A bound on the announced PDU length: a peer announcing a PDU larger than we accept (a
  4 GB PDU, garbage on the port) gets an A-ABORT (PS3.8 9.3.8, source service-provider,
  reason invalid-PDU-parameter-value) instead of the association buffering it; a PDU of an
  unknown type (PS3.8 9.3.1: types 01H–07H) gets one A-ABORT (reason unrecognized-PDU) and
  the connection is closed, instead of one abort per 6 garbage bytes.
* The network timeout on accepted connections: pynetdicom sets it only on the sockets it
  creates itself, so a peer that sent half a PDU and then nothing held its thread forever.
* No deep copy of every supported presentation context for each association (~50 ms of CPU
  with 170 storage SOP classes × 45 transfer syntaxes); negotiation only reads them.
* pynetdicom's polling sleeps wake on events instead (see :mod:`pacsnode.dimse.wakeups`).
* An association's reactor thread cannot take the response a sender waits for (see
  :mod:`pacsnode.dimse.reactor`).
* pynetdicom validates every UID of every primitive by building a pydicom ``UID`` again;
  with ``ENFORCE_UID_CONFORMANCE`` off (its default) the check is only type and length,
  which :func:`_validate_ui` does directly.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import socket
import threading
from typing import Any

import pynetdicom.transport
from pynetdicom import _config
from pynetdicom.transport import AssociationSocket

from pacsnode.dimse import direct_send, reactor, wakeups

log = logging.getLogger(__name__)

A_ABORT_INVALID_PDU_PARAMETER = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6])
A_ABORT_UNRECOGNIZED_PDU = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 1])
PDU_TYPES = range(0x01, 0x08)
# Room for PDU/PDV headers around the largest P-DATA value we announce; association
# requests with many contexts are far below this.
PDU_OVERHEAD = 64 * 1024
UNLIMITED_PDU_CAP = 256 * 1024 * 1024

_state: dict[str, Any] = {"limit": UNLIMITED_PDU_CAP, "installed": False}


_aborting = threading.local()


class PduRefused(OSError):
    """The peer sent a PDU pacsnode refuses (too large, unknown type); it was aborted."""


class _QuietAbortFilter(logging.Filter):
    """Drop pynetdicom's 'connection closed before the entire PDU' error and traceback for
    a connection pacsnode aborted itself (pacsnode has already logged why)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_aborting, "active", False)


def _peer(self: AssociationSocket) -> str:
    try:
        requestor = self.assoc.requestor
        return f"{requestor.address}:{requestor.port}"
    except Exception:
        return "?"


def _refuse(self: AssociationSocket, pdu: bytes, why: str) -> PduRefused:
    log.warning("A-ABORT to %s: %s", _peer(self), why)
    assert self.socket is not None
    with contextlib.suppress(OSError):
        self.socket.sendall(pdu)
        self.socket.shutdown(socket.SHUT_RDWR)
    self._pacsnode_refused = True  # type: ignore[attr-defined]
    _aborting.active = True
    return PduRefused(why)


def _recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    sock = self.socket
    assert sock is not None
    if getattr(self, "_pacsnode_refused", False):
        raise PduRefused("connection already aborted")
    # pynetdicom reads each PDU as a 6-byte header, then its body; remember which is next.
    expect_header = getattr(self, "_pacsnode_expect_header", True)
    self._pacsnode_expect_header = not expect_header  # type: ignore[attr-defined]
    if not expect_header and nr_bytes > _state["limit"]:
        raise _refuse(self, A_ABORT_INVALID_PDU_PARAMETER,
                      f"announced PDU length {nr_bytes} exceeds the {_state['limit']} bytes "
                      "accepted")
    buf = bytearray(nr_bytes)
    view = memoryview(buf)
    got = 0
    while got < nr_bytes:
        n = sock.recv_into(view[got:], nr_bytes - got)
        if n == 0:
            del view
            return buf[:got]
        got += n
    if expect_header and nr_bytes == 6 and buf[0] not in PDU_TYPES:
        raise _refuse(self, A_ABORT_UNRECOGNIZED_PDU,
                      f"unrecognized PDU type 0x{buf[0]:02X} (not DICOM?)")
    return buf


def _nodelay(sock: socket.socket | None) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _validate_ui(value: Any) -> tuple[bool, str]:
    """pynetdicom's UI validation without enforced conformance (same answers)."""
    if not isinstance(value, str):
        return False, "must be pydicom.uid.UID"
    if not value:
        return False, "must not be an empty str"
    if len(value) > 64:
        return False, "must not exceed 64 characters"
    return True, ""


def _shallow_copy(value: Any, memo: Any = None) -> Any:
    return copy.copy(value)


def install(max_pdu_size: int) -> None:
    """Apply the tuning to pynetdicom (idempotent); ``max_pdu_size`` 0 means unlimited."""
    _state["limit"] = (max_pdu_size + PDU_OVERHEAD) if max_pdu_size else UNLIMITED_PDU_CAP
    if _state["installed"]:
        return
    original_init = AssociationSocket.__init__

    def _init(self: AssociationSocket, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _nodelay(self.socket)
        timeout = getattr(self.assoc, "network_timeout", None)
        if self.socket is not None and self.socket.gettimeout() is None and timeout:
            self.socket.settimeout(timeout)
        wakeups.attach(self)
        if self.assoc is not None:
            reactor.adopt(self.assoc)

    AssociationSocket.__init__ = _init  # type: ignore[method-assign]
    AssociationSocket.recv = _recv  # type: ignore[method-assign]
    # Used by pynetdicom's RequestHandler only, to give each association its own list of
    # the server's supported contexts; a shallow copy is enough.
    pynetdicom.transport.deepcopy = _shallow_copy  # type: ignore[assignment]
    logging.getLogger("pynetdicom").addFilter(_QuietAbortFilter())
    direct_send.install()
    reactor.install()
    wakeups.install()
    if not _config.ENFORCE_UID_CONFORMANCE:
        _config.VALIDATORS["UI"] = _validate_ui
    _state["installed"] = True
