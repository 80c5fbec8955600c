"""The C-STORE sub-operations of a C-MOVE or C-GET (PS3.4 C.4.2.3.1, C.4.3.3.1): stored
instances sent over one association, each in its stored transfer syntax when the peer
accepted it, else converted losslessly (:func:`pacsnode.core.transcode.convert`).

A sub-operation is written straight onto the socket: the C-STORE-RQ command set encoded
by :mod:`pacsnode.dimse.command_set` and the data set framed from the stored file by
:func:`pacsnode.dimse.direct_send.write_message`, using the identity the index already
holds (SOP Class/Instance UID, transfer syntax) instead of parsing each file's meta
information as pynetdicom's ``send_c_store`` does. The response still comes through
pynetdicom's DUL and DIMSE layers. When the sending thread is not the association's
reactor (C-MOVE), the reactor is parked once for the whole run
(:meth:`StoreSender.running`), not once per instance.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.uid import UID
from pynetdicom import _config
from pynetdicom.association import Association
from pynetdicom.dsutils import split_dataset
from pynetdicom.status import STATUS_FAILURE, STATUS_SUCCESS, STATUS_WARNING, code_to_category

from pacsnode.core.archive import Archive
from pacsnode.core.retrieve import StoredInstance
from pacsnode.core.transcode import choose_syntax, convert
from pacsnode.dimse import command_set, direct_send
from pacsnode.dimse.reactor import pause_reactor

log = logging.getLogger(__name__)

_config.STORE_SEND_CHUNKED_DATASET = True  # the fallback send_c_store(path) streams the file

_META_START = 128 + 4  # preamble and "DICM" (PS3.10 7.1)
_GROUP_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"  # (0002,0000) UL, explicit VR LE


def dataset_offset(path: Path) -> int:
    """Where the data set starts in the Part 10 file ``path``: after the preamble and the
    file meta information, whose length is its (0002,0000) File Meta Information Group
    Length (PS3.10 7.1) — read from the first 144 bytes, or by parsing the meta information
    when that element is not where pacsnode writes it."""
    with open(path, "rb") as fh:
        head = fh.read(_META_START + 12)
    if head[128:132] == b"DICM" and head[_META_START:_META_START + 8] == _GROUP_LENGTH:
        return _META_START + 12 + int(struct.unpack("<I", head[_META_START + 8:])[0])
    return int(split_dataset(path)[1])


def accepted_syntaxes(assoc: Association) -> dict[str, set[str]]:
    """The transfer syntaxes in which we may send each SOP class over ``assoc`` (accepted
    contexts in which we have the SCU role)."""
    out: dict[str, set[str]] = {}
    for cx in assoc.accepted_contexts:
        if cx.as_scu and cx.abstract_syntax and cx.transfer_syntax:
            out.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    return out


def _context_ids(assoc: Association) -> dict[tuple[str, str], int]:
    """(SOP class, transfer syntax) → the first accepted context ID for it with our SCU role."""
    out: dict[tuple[str, str], int] = {}
    for cx in assoc.accepted_contexts:
        if cx.as_scu and cx.abstract_syntax and cx.transfer_syntax and cx.context_id:
            out.setdefault((str(cx.abstract_syntax), str(cx.transfer_syntax[0])),
                           int(cx.context_id))
    return out


class StoreSender:
    """Sends stored instances with C-STORE over one established association."""

    def __init__(self, archive: Archive, assoc: Association, *, other_thread: bool,
                 priority: int, originator: tuple[str, int] | None = None) -> None:
        self.archive = archive
        self.assoc = assoc
        self.other_thread = other_thread
        self.originator = originator
        self.priority = priority
        self.accepted = accepted_syntaxes(assoc)
        self.contexts = _context_ids(assoc)
        self._msg_id = 0
        self.converted = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around a run of :meth:`send`: parks the association's reactor (PS3.8 allows one
        user of an association at a time; pynetdicom's reactor would otherwise take the
        responses) when sending from another thread, and lets it go at the end."""
        if self.other_thread:
            pause_reactor(self.assoc)
        try:
            yield
        finally:
            if self.other_thread:
                self.assoc._reactor_checkpoint.set()

    def _next_msg_id(self) -> int:
        self._msg_id = self._msg_id % 0xFFFF + 1
        return self._msg_id

    def send(self, item: StoredInstance) -> tuple[str, str]:
        """C-STORE one instance: the sub-operation's status category and, on failure, why."""
        if not self.assoc.is_established:
            return STATUS_FAILURE, "association for the C-STOREs lost"
        target = choose_syntax(item.transfer_syntax_uid,
                               self.accepted.get(item.sop_class_uid, set()))
        if target is None:
            return STATUS_FAILURE, f"no accepted presentation context for {item.sop_class_uid}"
        source = self.archive.store.path_of(item.storage_key)
        temp: Path | None = None
        stage = "C-STORE"
        try:
            if target != item.transfer_syntax_uid:
                stage = f"conversion to {UID(target).name}"
                fh, temp = self.archive.store.new_temp()
                with fh:
                    convert(source, target, fh)
                self.converted += 1
                stage = "C-STORE"
            code = self._store(item, temp or source, target)
        except FileNotFoundError:
            return STATUS_FAILURE, "stored file missing"
        except Exception as exc:  # pydicom and pynetdicom raise many kinds
            return STATUS_FAILURE, f"{stage} failed: {type(exc).__name__}: {exc}"[:160]
        finally:
            if temp is not None:
                self.archive.store.discard_temp(temp)
        if code is None:
            return STATUS_FAILURE, "no C-STORE response (timeout or abort)"
        category = code_to_category(code)
        if category in (STATUS_SUCCESS, STATUS_WARNING):
            return category, ""
        return STATUS_FAILURE, f"C-STORE status 0x{code:04X}"

    def _store(self, item: StoredInstance, path: Path, syntax: str) -> int | None:
        """Send the C-STORE-RQ for ``path`` and wait for its response: the response's
        status, or None when none came (the association is then aborted)."""
        offset = dataset_offset(path)
        msg_id = self._next_msg_id()
        originator_aet, originator_id = self.originator or (None, None)
        command = command_set.c_store_rq(msg_id, item.sop_class_uid, item.sop_instance_uid,
                                         self.priority, originator_aet, originator_id)
        context_id = self.contexts[(item.sop_class_uid, syntax)]
        dimse = self.assoc.dimse
        try:
            sent = direct_send.write_message(dimse, context_id, command,
                                             stored=(path, offset))
        except OSError:
            self.assoc.dul.event_queue.put("Evt17")  # transport connection closed (PS3.8 9.2)
            return None
        if not sent:
            status = self._store_by_pynetdicom(path, msg_id)
            return int(status.Status) if "Status" in status else None
        _, rsp = dimse.get_msg(block=True)
        if rsp is None:
            self.assoc._handle_no_response()
            return None
        if not rsp.is_valid_response or rsp.Status is None \
                or rsp.MessageIDBeingRespondedTo != msg_id:
            log.error("invalid C-STORE response from %s (message ID %s, expected %d)",
                      self.assoc.acceptor.ae_title, rsp.MessageIDBeingRespondedTo, msg_id)
            self.assoc.abort()
            return None
        return int(rsp.Status)

    def _store_by_pynetdicom(self, path: Path, msg_id: int) -> Any:
        """pynetdicom's own ``send_c_store``, for when the message cannot be written
        directly."""
        originator_aet, originator_id = self.originator or (None, None)
        status = self.assoc.send_c_store(path, msg_id=msg_id, priority=self.priority,
                                         originator_aet=originator_aet,
                                         originator_id=originator_id)
        if self.other_thread:  # send_c_store lets the reactor go at its end
            pause_reactor(self.assoc)
        return status
