"""The C-STORE spool: a received data set goes straight into the file pacsnode keeps.

With ``STORE_RECV_CHUNKED_DATASET`` pynetdicom writes each incoming data set to a temporary
file (preamble, 'DICM', its own file meta information, then the data set fragments as they
arrive) and hands the handler its path. The core used to copy that data set behind
pacsnode's own file meta into a second temporary file, hashing it on the way: for a 512 KB
CT image the copy was about a quarter of the ingest time.

Here the spool file *is* the file the core places in the store:

* it is created in the store's temporary directory;
* instead of pynetdicom's file meta, pacsnode's own is written (:func:`file_header`, from the
  request's Affected SOP Class/Instance UIDs, the presentation context's transfer syntax and
  the association's AE titles — the core rejects a data set whose UIDs differ from the
  request's, so what is kept always agrees with its data set);
* the data set fragments are hashed (SHA-256) as they are written, in the association's
  network thread, while the peer is still sending.

The handler then gives the core a :class:`~pacsnode.core.ingest.Spooled` file: header parse,
checks, fsync, link into place, index — no copy. pynetdicom unlinks the spool name after the
handler returns; the placed file is a hard link, so it stays.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pynetdicom.dimse_messages
from pydicom.dataset import FileMetaDataset

from pacsnode.core.dicom_file import file_header
from pacsnode.core.spool_file import SpoolFile, StartSpooled

__all__ = ["SpoolFile", "install"]

_original_write_meta = pynetdicom.dimse_messages.write_file_meta_info
_original_decode_msg = pynetdicom.dimse_messages.DIMSEMessage.decode_msg
_original_temp_file = pynetdicom.dimse_messages.NamedTemporaryFile


class _Spooler:
    """Where spool files go, whose AE title goes in their file meta, and what starts a
    complete one's fsync and hash."""

    directory: Path | None = None
    aet: str = ""
    start: StartSpooled | None = None


def _temp_file(*args: Any, **kwargs: Any) -> Any:
    if _Spooler.directory is None:
        return _original_temp_file(*args, **kwargs)
    return SpoolFile(_Spooler.directory)


def _write_meta(fp: Any, file_meta: FileMetaDataset, *args: Any, **kwargs: Any) -> None:
    if not isinstance(fp, SpoolFile):
        _original_write_meta(fp, file_meta, *args, **kwargs)
        return
    # Runs in the association's DUL thread (pynetdicom's DULServiceProvider), which knows
    # its association and so the peer's AE title: the requestor's on an association we
    # accepted, the acceptor's on one we requested (instances arriving on our C-GET).
    assoc = getattr(threading.current_thread(), "assoc", None)
    peer = getattr(assoc, "acceptor" if getattr(assoc, "is_requestor", False) else "requestor",
                   None)
    sending = str(getattr(peer, "ae_title", "") or "").strip()
    try:
        header = file_header(
            sop_class_uid=str(file_meta.MediaStorageSOPClassUID),
            sop_instance_uid=str(file_meta.MediaStorageSOPInstanceUID),
            transfer_syntax=str(file_meta.TransferSyntaxUID),
            source_aet=_Spooler.aet,
            sending_aet=sending,
        )
    except (UnicodeError, ValueError):
        # A request UID pacsnode cannot write (the core will reject the data set): keep
        # pynetdicom's file as it would have been, and let the handler take the copy path.
        fp.foreign = True
        fp.begin(b"\x00" * 128 + b"DICM")
        _original_write_meta(fp, file_meta, *args, **kwargs)  # type: ignore[arg-type]
        return
    fp.begin(header)


def _decode_msg(self: Any, primitive: Any, assoc: Any = None) -> bool:
    complete: bool = _original_decode_msg(self, primitive, assoc)
    spool = self._data_set_file
    if complete and isinstance(spool, SpoolFile) and _Spooler.start is not None:
        spool.complete(_Spooler.start)  # still in the network thread, before dispatch
    return complete


def install(directory: Path, aet: str, start: StartSpooled | None = None) -> None:
    """Spool received data sets into ``directory`` with pacsnode's file meta (idempotent).
    Anything else in pynetdicom that makes a temporary file puts it there too, on the
    store's volume. ``start`` (:meth:`pacsnode.core.ingest.Ingestor.start_spooled`) is
    called as a data set's last fragment is written."""
    tempfile.tempdir = str(directory)
    _Spooler.directory = directory
    _Spooler.aet = aet
    _Spooler.start = start
    pynetdicom.dimse_messages.DIMSEMessage.decode_msg = _decode_msg  # type: ignore[method-assign]
    pynetdicom.dimse_messages.NamedTemporaryFile = _temp_file
    pynetdicom.dimse_messages.write_file_meta_info = _write_meta
