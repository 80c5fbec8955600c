"""A minimal DICOM upper-layer client built from raw PDUs (PS3.8 9.3), for sending what a
well-behaved toolkit never would: garbage, truncated or oversized PDUs, half a message, a
data set that is not what its command says.

Only what the bad-input tests need: association request/accept/release, C-ECHO and C-STORE
requests with arbitrary data set bytes, and reading PDUs with a deadline.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.9.7433.1.99"

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07
A_RELEASE_RQ_PDU = bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])
A_ABORT_PDU = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0])


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def a_associate_rq(contexts: Sequence[tuple[int, str, Sequence[str]]], *,
                   called: str = "PACSNODE", calling: str = "RAWSCU",
                   max_pdu: int = 0) -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing ``contexts`` as (id, abstract syntax, [syntaxes])."""
    body = bytearray(struct.pack(">HH", 1, 0))
    body += called.encode("ascii").ljust(16)[:16] + calling.encode("ascii").ljust(16)[:16]
    body += b"\x00" * 32
    body += _item(0x10, _uid(APPLICATION_CONTEXT))
    for context_id, abstract, syntaxes in contexts:
        sub = _item(0x30, _uid(abstract)) + b"".join(_item(0x40, _uid(ts)) for ts in syntaxes)
        body += _item(0x20, bytes([context_id, 0, 0, 0]) + sub)
    user = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, _uid(IMPLEMENTATION_UID))
    body += _item(0x50, user)
    return struct.pack(">BBI", A_ASSOCIATE_RQ, 0, len(body)) + bytes(body)


def p_data_tf(pdvs: Iterable[tuple[int, int, bytes]]) -> bytes:
    """A P-DATA-TF PDU of (context id, message control header, fragment) PDV items."""
    items = b"".join(struct.pack(">IBB", len(data) + 2, cx, ctrl) + data
                     for cx, ctrl, data in pdvs)
    return struct.pack(">BBI", P_DATA_TF, 0, len(items)) + items


def encode_dataset(ds: Dataset, *, implicit: bool = False) -> bytes:
    """A data set's encoding, little endian, implicit or explicit VR."""
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = implicit
    write_dataset(buf, ds)
    return buf.getvalue()


def encode_command(ds: Dataset) -> bytes:
    """A DIMSE command set, implicit VR little endian, with its group length (PS3.7 6.3.1)."""
    body = encode_dataset(ds, implicit=True)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def c_store_rq(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = sop_class
    cmd.CommandField = 0x0001
    cmd.MessageID = message_id
    cmd.Priority = 0
    cmd.CommandDataSetType = 0x0000
    cmd.AffectedSOPInstanceUID = sop_instance
    return encode_command(cmd)


def c_echo_rq(message_id: int) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = VERIFICATION
    cmd.CommandField = 0x0030
    cmd.MessageID = message_id
    cmd.CommandDataSetType = 0x0101
    return encode_command(cmd)


def decode_command(raw: bytes) -> Dataset:
    return read_dataset(io.BytesIO(raw), is_implicit_VR=True, is_little_endian=True)


def recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    """``n`` bytes, or fewer if the peer closed the connection first."""
    out = bytearray()
    while len(out) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(n - len(out))
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_pdu(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes] | None:
    """The next PDU as (type, whole PDU bytes); None if the peer closed the connection.
    Raises TimeoutError if nothing complete arrives within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    head = recv_exact(sock, 6, deadline)
    if len(head) < 6:
        if not head:
            return None
        raise ConnectionError(f"connection closed inside a PDU header: {head!r}")
    pdu_type, _, length = struct.unpack(">BBI", head)
    if length > 64 * 1024 * 1024:
        raise ConnectionError(f"peer announced a {length}-byte PDU")
    body = recv_exact(sock, length, deadline)
    if len(body) < length:
        raise ConnectionError("connection closed inside a PDU")
    return pdu_type, head + body


def wait_closed(sock: socket.socket, timeout: float) -> bytes:
    """Read until the peer closes the connection (EOF or reset); returns what arrived
    meanwhile. Raises TimeoutError if it is still open after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"connection still open after {timeout}s (got {bytes(got)!r})")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(got)
        except TimeoutError:
            continue
        if not chunk:
            return bytes(got)
        got += chunk


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class RawAssociation:
    """An association made of raw PDUs. ``accepted`` maps context id -> transfer syntax."""

    sock: socket.socket
    max_pdu: int
    accepted: dict[int, str] = field(default_factory=dict)
    message_id: int = 0

    @classmethod
    def open(cls, port: int, contexts: Sequence[tuple[int, str, Sequence[str]]], *,
             called: str = "PACSNODE", calling: str = "RAWSCU",
             timeout: float = 10.0) -> RawAssociation:
        sock = connect(port)
        try:
            sock.sendall(a_associate_rq(contexts, called=called, calling=calling))
            pdu = read_pdu(sock, timeout)
            if pdu is None or pdu[0] != A_ASSOCIATE_AC:
                raise ConnectionError(f"association not accepted: {pdu!r}")
        except BaseException:
            sock.close()
            raise
        assoc = cls(sock=sock, max_pdu=0)
        assoc._parse_ac(pdu[1])
        return assoc

    def _parse_ac(self, pdu: bytes) -> None:
        pos = 6 + 68
        while pos < len(pdu):
            item_type, _, length = struct.unpack(">BBH", pdu[pos:pos + 4])
            value = pdu[pos + 4:pos + 4 + length]
            if item_type == 0x21 and value[2] == 0:  # accepted presentation context
                ts_len = struct.unpack(">H", value[6:8])[0]
                self.accepted[value[0]] = value[8:8 + ts_len].rstrip(b"\x00").decode()
            elif item_type == 0x50:
                sub = 0
                while sub < len(value):
                    sub_type, _, sub_len = struct.unpack(">BBH", value[sub:sub + 4])
                    if sub_type == 0x51:
                        self.max_pdu = struct.unpack(">I", value[sub + 4:sub + 8])[0]
                    sub += 4 + sub_len
            pos += 4 + length

    @property
    def fragment(self) -> int:
        """The largest PDV fragment the acceptor takes (its max PDU minus PDV headers)."""
        limit = self.max_pdu or 1024 * 1024
        return min(limit, 1024 * 1024) - 6

    def data_pdus(self, context_id: int, data: bytes) -> list[bytes]:
        """The P-DATA-TF PDUs carrying ``data`` as a data set (last one flagged last)."""
        size = self.fragment
        chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        return [p_data_tf([(context_id, 0x02 if i == len(chunks) - 1 else 0x00, chunk)])
                for i, chunk in enumerate(chunks)]

    def send_store_command(self, context_id: int, sop_class: str, sop_instance: str) -> None:
        self.message_id += 1
        command = c_store_rq(self.message_id, sop_class, sop_instance)
        self.sock.sendall(p_data_tf([(context_id, 0x03, command)]))

    def read_response(self, timeout: float = 10.0) -> Dataset:
        """The next DIMSE response's command set; raises ConnectionError on abort/close."""
        command = bytearray()
        while True:
            pdu = read_pdu(self.sock, timeout)
            if pdu is None or pdu[0] != P_DATA_TF:
                raise ConnectionError(f"expected P-DATA-TF, got {pdu!r}")
            body, pos = pdu[1], 6
            last = False
            while pos < len(body):
                length = struct.unpack(">I", body[pos:pos + 4])[0]
                ctrl = body[pos + 5]
                command += body[pos + 6:pos + 4 + length]
                last = last or bool(ctrl & 0x01 and ctrl & 0x02)
                pos += 4 + length
            if last:
                return decode_command(bytes(command))

    def store(self, context_id: int, sop_class: str, sop_instance: str, data: bytes,
              timeout: float = 10.0) -> Dataset:
        """Send a C-STORE-RQ with ``data`` as its data set; return the response command."""
        self.send_store_command(context_id, sop_class, sop_instance)
        for pdu in self.data_pdus(context_id, data):
            self.sock.sendall(pdu)
        return self.read_response(timeout)

    def echo(self, context_id: int, timeout: float = 10.0) -> Dataset:
        self.message_id += 1
        self.sock.sendall(p_data_tf([(context_id, 0x03, c_echo_rq(self.message_id))]))
        return self.read_response(timeout)

    def release(self, timeout: float = 10.0) -> None:
        self.sock.sendall(A_RELEASE_RQ_PDU)
        pdu = read_pdu(self.sock, timeout)
        if pdu is None or pdu[0] != A_RELEASE_RP:
            raise ConnectionError(f"expected A-RELEASE-RP, got {pdu!r}")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
