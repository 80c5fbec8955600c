"""Spool files: a data set written straight into the file layout pacsnode keeps (preamble,
pacsnode's file meta, the data set bytes as received), hashed as it is written, in the
store's temporary directory — so the core places it without copying it
(:meth:`pacsnode.core.archive.Archive.ingest_spooled`).

* :class:`SpoolFile` takes pacsnode's header, then the data set (the C-STORE receiver,
  :mod:`pacsnode.dimse.spool`, writes pynetdicom's fragments into it).
* :class:`Part10Spool` takes a whole Part-10 file as a byte stream (a STOW-RS part): it
  reads the sender's file meta information (PS3.10 7.1) from the stream, writes pacsnode's
  instead, and passes the data set through. A stream that is not a Part-10 file with a File
  Meta Information Group Length is written as it is, for the copying ingest path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import os
import struct
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pydicom

from pacsnode.core.dicom_file import file_header, meta_uids
from pacsnode.core.ingest import Spooled

_GROUP_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"  # (0002,0000) UL, explicit VR little endian
_META_START = 132  # preamble and "DICM"
LARGE_FRAGMENT = 64 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # start write-out of dirty pages, do not wait (linux/fs.h)


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start_writeback(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: errors are ignored

    return start_writeback


_start_writeback = _load_sync_file_range()

#: :meth:`pacsnode.core.ingest.Ingestor.start_spooled`: (path, data offset, hashed) ->
#: the fsync and the hash (None if hashed), started
StartSpooled = Callable[[Path, int, bool], "tuple[Future[None], Future[str] | None]"]


class SpoolFile:
    """The file-like object pynetdicom spools a C-STORE data set into (see module doc).

    pynetdicom writes the preamble and 'DICM', then calls ``write_file_meta_info`` (replaced
    by :func:`_write_meta`, which calls :meth:`begin`), then writes each data set fragment and
    calls ``.file.flush()``. Writes before :meth:`begin` are ignored: pacsnode's header
    carries its own preamble and prefix.
    """

    def __init__(self, directory: Path) -> None:
        self.path = _new_name(directory)
        self.name = str(self.path)
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._hash: Any = hashlib.sha256()  # None once a large fragment came
        self.data_offset: int | None = None
        self.foreign = False  # pynetdicom's own file meta was written: not in our layout
        self.size = 0
        self.file = self  # pynetdicom calls ``._data_set_file.file.flush()``
        self._started: tuple[Future[None], Future[str] | None] | None = None

    def begin(self, header: bytes) -> None:
        """Write pacsnode's preamble and file meta; what follows is the data set."""
        self._write_all(header)
        self.data_offset = len(header)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.data_offset is None:
            return len(data)
        start = self.size
        large = len(data) >= LARGE_FRAGMENT
        if large:
            self._hash = None  # hashed by the core, off this thread
        elif self._hash is not None:
            self._hash.update(data)
        self._write_all(data)
        if large and _start_writeback is not None and self._fd is not None:
            _start_writeback(self._fd, start, len(data))
        return len(data)

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._fd is None:
            raise ValueError("write to a closed spool file")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def flush(self) -> None:
        """Nothing to do: every write goes straight to the file descriptor."""

    def complete(self, start: StartSpooled) -> None:
        """The whole data set is written: ``start`` its fsync (and hash) now (once)."""
        if self.data_offset is None or self.foreign or self._started is not None:
            return
        self._started = start(self.path, self.data_offset, self._hash is not None)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def spooled(self) -> Spooled | None:
        """The spooled file for the core, or None if pacsnode's header was never written."""
        if self.data_offset is None or self.foreign:
            return None
        sync, digesting = self._started if self._started is not None else (None, None)
        return Spooled(path=self.path,
                       digest=self._hash.hexdigest() if self._hash is not None else "",
                       data_offset=self.data_offset, size=self.size, sync=sync,
                       digesting=digesting)


_counter = 0
_counter_lock = threading.Lock()


def _new_name(directory: Path) -> Path:
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return directory / f"spool-{os.getpid()}-{threading.get_ident()}-{n}.part"




class Part10Spool:
    """A Part-10 byte stream written as a :class:`SpoolFile` (see the module doc). Used as a
    binary file: ``write`` then ``close``; then :meth:`spooled` (None: use :attr:`path` with
    the copying ingest)."""

    def __init__(self, directory: Path, *, source_aet: str, sending_aet: str = "") -> None:
        self._spool = SpoolFile(directory)
        self.path = self._spool.path
        self._source_aet = source_aet
        self._sending_aet = sending_aet
        self._head = bytearray()
        self._resolved = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._resolved:
            return self._spool.write(data) if not self._spool.foreign else \
                self._raw(data)
        self._head += data
        self._resolve(final=False)
        return len(data)

    def _raw(self, data: bytes | bytearray | memoryview) -> int:
        self._spool._write_all(data)
        return len(data)

    def _resolve(self, final: bool) -> None:
        """Once the file meta information is complete: pacsnode's header, then the rest."""
        head = self._head
        if len(head) < _META_START + 12 and not final:
            return
        if head[128:132] != b"DICM" or head[_META_START:_META_START + 8] != _GROUP_LENGTH:
            self._fallback()
            return
        end = _META_START + 12 + struct.unpack("<I", head[_META_START + 8:_META_START + 12])[0]
        if len(head) < end:
            if final:
                self._fallback()
            return
        try:
            uids = meta_uids(bytes(head[:end]))
            if uids is None:  # not laid out as PS3.10 says: let pydicom try
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    meta = pydicom.dcmread(io.BytesIO(bytes(head[:end]))).file_meta
                uids = (str(meta.MediaStorageSOPClassUID),
                        str(meta.MediaStorageSOPInstanceUID), str(meta.TransferSyntaxUID))
            header = file_header(sop_class_uid=uids[0], sop_instance_uid=uids[1],
                                 transfer_syntax=uids[2], source_aet=self._source_aet,
                                 sending_aet=self._sending_aet)
        except Exception:  # pydicom raises many kinds on malformed meta information
            self._fallback()
            return
        self._resolved = True
        self._spool.begin(header)
        self._spool.write(head[end:])
        self._head = bytearray()

    def _fallback(self) -> None:
        self._resolved = True
        self._spool.foreign = True
        self._raw(self._head)
        self._head = bytearray()

    def flush(self) -> None:
        """Nothing to do: writes go straight to the file descriptor."""

    def close(self) -> None:
        if not self._resolved:
            self._resolve(final=True)
            if not self._resolved:
                self._fallback()
        self._spool.close()

    def spooled(self) -> Spooled | None:
        """The spooled file in pacsnode's layout, or None if the stream was not a Part-10
        file it could convert."""
        return self._spool.spooled()
