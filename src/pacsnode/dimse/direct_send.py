"""Sending DIMSE messages straight onto the socket, from the thread that sends them.

pynetdicom 3 sends a DIMSE message as one P-DATA primitive per PDU: each goes through the
DUL thread's queue, its state machine and one ``socket.send`` — about a tenth of a
millisecond of Python per PDU. A 512 KB CT image sent to a peer whose maximum PDU is 16 KB
(DCMTK's default) is 33 PDUs: C-MOVE and C-GET ran at a quarter of Orthanc's speed.

C-FIND Pending responses queued the same way, one per match, and kept the DUL thread
too busy to read a C-CANCEL.

This module frames the P-DATA-TF PDUs of every DIMSE message itself (PS3.8 9.3.5: PDU type
04H, PDV items of at most the peer's maximum length, message control header with the
command/last-fragment bits) and writes them with a few large ``sendall`` calls from the
sending thread; a C-STORE request whose data set is a stored file (``send_c_store(path)``
with ``STORE_SEND_CHUNKED_DATASET``) is framed straight from the file. A slow peer blocks
the sender, which is the backpressure a stream of responses needs. Order on the wire is
kept: the DUL thread's queue is drained first, and the DUL's own sends and these take the
same per-socket lock. P-DATA does not change the state
of the association (PS3.8 9.2, state Sta6), so nothing in the state machine is skipped.
Association control (A-ASSOCIATE, A-RELEASE, A-ABORT) still goes through pynetdicom.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

from pynetdicom import evt
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE, DIMSEServiceProvider
from pynetdicom.dimse_messages import _DATASET_KEYWORDS
from pynetdicom.dsutils import encode
from pynetdicom.transport import AssociationSocket

from pacsnode.dimse import command_set

WRITE_CHUNK = 1024 * 1024  # bytes handed to the kernel per sendall
_DRAIN_TIMEOUT_S = 30.0

_original_send_msg = DIMSEServiceProvider.send_msg
_original_socket_send = AssociationSocket.send
_locks_guard = threading.Lock()


def _lock_of(sock: AssociationSocket) -> threading.Lock:
    lock = getattr(sock, "_pacsnode_send_lock", None)
    if lock is None:
        with _locks_guard:
            lock = getattr(sock, "_pacsnode_send_lock", None)
            if lock is None:
                lock = threading.Lock()
                sock._pacsnode_send_lock = lock  # type: ignore[attr-defined]
    return lock


def _locked_socket_send(self: AssociationSocket, bytestream: bytes) -> None:
    with _lock_of(self):
        _original_socket_send(self, bytestream)


def pdu(context_id: int, control: int, data: bytes | memoryview) -> bytes:
    """One P-DATA-TF PDU holding one PDV item (PS3.8 9.3.5, 9.3.5.1, E.2)."""
    item_length = len(data) + 2  # context ID and message control header
    return b"".join((b"\x04\x00", struct.pack(">II", item_length + 4, item_length),
                     bytes((context_id, control)), data))


def _drain(dul: Any) -> bool:
    """Wait until the DUL thread has nothing queued to send; False if it does not drain."""
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    while not (dul.to_provider_queue.empty() and dul.event_queue.empty()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0001)
    return True


def _message(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> Any:
    """The DIMSE message of ``primitive``, as pynetdicom's ``send_msg`` builds it."""
    if primitive.MessageIDBeingRespondedTo is None:
        message = _RQ_TO_MESSAGE[primitive.__class__]()
    else:
        message = _RSP_TO_MESSAGE[primitive.__class__]()
    message.primitive_to_message(primitive)
    message.context_id = context_id
    return message


def _fragments(context_id: int, data: bytes | memoryview, fragment: int, control: int,
               last: bool = True) -> bytearray:
    """``data`` as P-DATA-TF PDUs of at most ``fragment`` value bytes; ``control`` is the
    message control header (PS3.8 E.2) whose last-fragment bit (02H) is set on the final
    PDV when ``last``."""
    out = bytearray()
    view = memoryview(data)
    for start in range(0, max(len(view), 1), fragment):
        final = last and start + fragment >= len(view)
        out += pdu(context_id, control | (0x02 if final else 0), view[start:start + fragment])
    return out


def write_message(dimse: DIMSEServiceProvider, context_id: int, command: bytes, *,
                  data: bytes | None = None, stored: tuple[Any, int] | None = None) -> bool:
    """Frame and write one DIMSE message: its encoded ``command`` set, then its data set,
    either ``data`` or the bytes of the file ``stored`` = (path, offset) from ``offset`` to
    its end. False if it cannot be sent this way (association not established, DUL queue
    not draining); OSError if the connection fails."""
    assoc, dul = dimse.assoc, dimse.dul
    sock = getattr(dul, "socket", None)
    raw = getattr(sock, "socket", None)
    if sock is None or raw is None or not assoc.is_established or not _drain(dul):
        return False
    max_pdu = int(dimse.maximum_pdu_size or 0)
    fragment = max_pdu - 6 if max_pdu else WRITE_CHUNK
    out = _fragments(context_id, command, fragment, 0x01)
    if data:
        out += _fragments(context_id, data, fragment, 0x00)
    with _lock_of(sock):
        if stored is not None:
            path, offset = stored
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(WRITE_CHUNK)
                while chunk:
                    after = fh.read(WRITE_CHUNK)
                    out += _fragments(context_id, chunk, fragment, 0x00, last=not after)
                    if len(out) >= WRITE_CHUNK:
                        raw.sendall(out)
                        out = bytearray()
                    chunk = after
        if out:
            raw.sendall(out)
    return True


def _fast_parts(primitive: Any) -> tuple[bytes, bytes | None, Any] | None:
    """(command set, data set, stored file) of a C-service primitive encoded by
    :func:`pacsnode.dimse.command_set.of_primitive`, or None."""
    keyword = _DATASET_KEYWORDS.get(command_set.message_name(primitive))
    data_io = getattr(primitive, keyword, None) if keyword else None
    stored = getattr(primitive, "_dataset_path", None)
    command = command_set.of_primitive(primitive, data_io is not None or bool(stored))
    if command is None:
        return None
    return command, data_io.getvalue() if data_io is not None else None, stored


def _send_direct(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> bool:
    """Frame and write ``primitive``'s message; False if it has to go pynetdicom's way.
    The command set is encoded by :mod:`pacsnode.dimse.command_set` unless something
    listens to ``EVT_DIMSE_SENT`` (which wants pynetdicom's message object)."""
    if not self.assoc.is_established:
        return False
    fast = None if self.assoc.get_handlers(evt.EVT_DIMSE_SENT) else _fast_parts(primitive)
    if fast is not None:
        command, data, stored = fast
        return write_message(self, context_id, command, data=data, stored=stored)
    message = _message(self, primitive, context_id)
    stored = message._data_set_path  # a file-backed C-STORE request: framed from the file
    data = message.data_set.getvalue() if message.data_set is not None else None
    encoded = encode(message.command_set, True, True)  # PS3.7 6.3.1: always implicit LE
    if encoded is None or not write_message(self, context_id, encoded, data=data,
                                            stored=stored):
        return False
    evt.trigger(self.assoc, evt.EVT_DIMSE_SENT, {"message": message})
    return True


def _send_msg(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> None:
    try:
        if _send_direct(self, primitive, context_id):
            return
    except OSError:
        self.dul.event_queue.put("Evt17")  # transport connection closed (PS3.8 9.2)
        return
    _original_send_msg(self, primitive, context_id)


def install() -> None:
    """Send file-backed C-STORE requests directly (idempotent)."""
    AssociationSocket.send = _locked_socket_send  # type: ignore[method-assign]
    DIMSEServiceProvider.send_msg = _send_msg  # type: ignore[method-assign]
