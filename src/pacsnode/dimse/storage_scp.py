"""C-STORE SCP (PS3.4 Annex B) and Verification SCP (PS3.4 Annex A) handlers.

The received data set is spooled to a file by pynetdicom (``STORE_RECV_CHUNKED_DATASET``),
in the store's temporary directory, so memory stays bounded whatever its size. The spool
file is already in pacsnode's layout (:mod:`pacsnode.dimse.spool`): the core reads only its
header and links it into place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.pdu import A_RELEASE_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE

from pacsnode.core.archive import Archive
from pacsnode.dimse import statuses
from pacsnode.dimse.requestor import requestor
from pacsnode.dimse.spool import SpoolFile

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (source, reason) -> why, for the log (PS3.8 9.3.4).
_REJECT_REASONS = {
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


class StorageService:
    """Handlers bound to one archive; keeps per-association counts for the log."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._counts: dict[int, Counter[str]] = {}
        self._endings: dict[int, str] = {}
        self._lock = threading.Lock()

    def handlers(self) -> list[tuple[Any, Any]]:
        """The (event, handler) pairs to bind to the server."""
        return [
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_PDU_RECV, self.on_pdu_received),
            (evt.EVT_ACSE_SENT, self.on_acse_sent),
            (evt.EVT_RELEASED, self.on_finished),
            (evt.EVT_ABORTED, self.on_finished),
            (evt.EVT_CONN_CLOSE, self.on_closed),
        ]

    def on_echo(self, event: Any) -> int:
        """C-ECHO: always Success (PS3.4 A.4)."""
        log.debug("C-ECHO from %s", requestor(event.assoc))
        return statuses.SUCCESS

    def on_store(self, event: Any) -> Dataset:
        """C-STORE: ingest the spooled data set; answer only after it is durable."""
        req = event.request
        peer = event.assoc.requestor.ae_title
        spool = getattr(req, "_dataset_file", None)
        spooled = spool.spooled() if isinstance(spool, SpoolFile) else None
        expect = dict(sending_aet=peer, expect_sop_class=str(req.AffectedSOPClassUID),
                      expect_sop_instance=str(req.AffectedSOPInstanceUID))
        try:
            if spooled is not None:
                result = self.archive.ingest_spooled(spooled, **expect)
            else:
                result = self.archive.ingest(event.dataset_path, **expect)
            status = statuses.store_status(result)
        except Exception as exc:  # never let a bug take the association down silently
            log.exception("C-STORE from %s: unexpected failure", requestor(event.assoc))
            rsp = Dataset()
            rsp.Status = statuses.PROCESSING_FAILURE
            rsp.ErrorComment = f"internal error: {type(exc).__name__}"[:64]
            return rsp
        with self._lock:
            self._counts.setdefault(id(event.assoc), Counter())[result.outcome.value] += 1
        rsp = Dataset()
        rsp.Status = status
        if status != statuses.SUCCESS:
            rsp.ErrorComment = result.detail[:64]
            log.warning("C-STORE from %s refused (0x%04X) %s: %s", requestor(event.assoc), status,
                        req.AffectedSOPInstanceUID, result.detail)
        else:
            log.debug("C-STORE from %s: %s %s", requestor(event.assoc), result.outcome.value,
                      result.sop_instance_uid)
        return rsp

    def on_established(self, event: Any) -> None:
        log.info("association from %s to %s established", requestor(event.assoc),
                 event.assoc.acceptor.ae_title)

    def on_acse_sent(self, event: Any) -> None:
        """Log why an association request was rejected (A-ASSOCIATE-RJ)."""
        primitive = event.primitive
        if not isinstance(primitive, A_ASSOCIATE) or primitive.result not in (1, 2):
            return
        key = (int(primitive.result_source or 0), int(primitive.diagnostic or 0))
        why = _REJECT_REASONS.get(key, "no reason given")
        if key == (3, 2):
            ae = event.assoc.ae
            limit = getattr(ae, "configured_limit", ae.maximum_associations)
            why += f": at most {limit} simultaneous associations"
        log.warning("association from %s rejected (%s): %s", requestor(event.assoc),
                    "permanent" if primitive.result == 1 else "transient", why)

    def on_pdu_received(self, event: Any) -> None:
        """Note a release request as it arrives (the peer may close the connection right
        after our A-RELEASE-RP, before the association thread reports the release)."""
        if isinstance(event.pdu, A_RELEASE_RQ):
            with self._lock:
                self._endings[id(event.assoc)] = "released"

    def on_finished(self, event: Any) -> None:
        """Remember how the association ended; the summary is logged on connection close."""
        how = "released" if event.event is evt.EVT_RELEASED else "aborted"
        with self._lock:
            self._endings[id(event.assoc)] = how

    def on_closed(self, event: Any) -> None:
        """Log the association's summary. A connection that dropped mid-transfer leaves
        pynetdicom's spool file behind: remove it, so nothing of a half-received instance
        is kept."""
        with self._lock:
            counts = self._counts.pop(id(event.assoc), Counter())
            how = self._endings.pop(id(event.assoc), "closed")
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no instances"
        log.info("association from %s %s: %s", requestor(event.assoc), how, summary)
        message = getattr(getattr(event.assoc, "dimse", None), "message", None)
        spool = getattr(message, "_data_set_file", None)
        if spool is not None:
            with contextlib.suppress(OSError):
                spool.close()
                os.unlink(spool.name)
            log.warning("connection from %s closed mid-transfer; partial data set discarded",
                        requestor(event.assoc))
