"""The HL7 order receiver of ``pacsnode serve``: one message in, one ACK out (HL7 v2.5.1
2.9.2 original acknowledgment mode; IHE RAD TF-2 RAD-4 and RAD-13 with pacsnode as the
Image Manager's worklist).

In order, a message is:

1. read (:func:`pacsnode.hl7.messages.parse`): no MSH or unusable delimiters → **AR**;
   any other parse problem (bad segment ID, unsupported or wrong MSH-18) → **AE**;
2. accepted (2.9.2.1 "accept validation"): MSH-9 must be ``ORM^O01`` or ``OMI^O23``
   (else AR, 200 or 201), MSH-12 one of :data:`VERSIONS` (else AR, 203), MSH-11 ``P``
   (production; else AR, 202), MSH-10 not empty (else AE, 101);
3. processed (:mod:`pacsnode.hl7.orders`): missing or bad content, an unknown or duplicate
   order → **AE** with the reason; success → **AA**;
4. an unexpected failure (the index unavailable, a bug) → **AR** (207), as 2.9.2.1 asks for
   failures unrelated to the message's content, logged with its traceback.

Every AE and AR is logged (warning) with the reason, the control ID and the peer.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from pacsnode.config import Settings
from pacsnode.core.worklist import WorklistError
from pacsnode.hl7 import ack, mllp, orders
from pacsnode.hl7.messages import (
    INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION_ID,
    ParseError,
    parse,
)

log = logging.getLogger("pacsnode.hl7")

MESSAGE_TYPES = {"ORM": ("O01",), "OMI": ("O23",)}
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6")
PROCESSING_IDS = ("P",)


class Receiver:
    """Turns one HL7 message into worklist changes and its ACK."""

    def __init__(self, engine: Engine, *, station_aet: str = "",
                 our_name: str = "PACSNODE") -> None:
        self.engine = engine
        self.station_aet = station_aet
        self.our_name = our_name

    def _nak(self, header: ack.Header, code: str, reason: str, error: str, location: str,
             peer: str) -> bytes:
        log.warning("HL7 %s from %s (message %r): %s", code, peer, header.control_id,
                    reason)
        return ack.build(header, code, reason, error_code=error, location=location,
                         our_name=self.our_name)

    def handle(self, raw: bytes, truncated: bool = False, peer: str = "") -> bytes:
        """The ACK (bytes, unframed) for the message ``raw``."""
        if truncated:
            return self._nak(ack.Header.guess(raw), ack.REJECT,
                             f"message larger than {mllp.MAX_MESSAGE_BYTES} bytes",
                             INTERNAL_ERROR, "", peer)
        try:
            msg = parse(raw)
        except ParseError as exc:
            code = ack.REJECT if exc.location in ("MSH", "MSH-2") else ack.ERROR
            return self._nak(ack.Header.guess(raw), code, str(exc), exc.code, exc.location,
                             peer)
        header = ack.Header.of(msg)
        kind, trigger = msg.message_type
        if kind not in MESSAGE_TYPES:
            return self._nak(header, ack.REJECT, f"unsupported message type {kind!r} "
                             "(ORM^O01 and OMI^O23 are)", UNSUPPORTED_MESSAGE_TYPE,
                             "MSH-9", peer)
        if trigger not in MESSAGE_TYPES[kind]:
            return self._nak(header, ack.REJECT, f"unsupported event {kind}^{trigger} "
                             f"(only {kind}^{MESSAGE_TYPES[kind][0]})",
                             UNSUPPORTED_EVENT_CODE, "MSH-9", peer)
        if msg.version not in VERSIONS:
            return self._nak(header, ack.REJECT, f"unsupported version {msg.version!r} "
                             f"({', '.join(VERSIONS)} are)", UNSUPPORTED_VERSION_ID,
                             "MSH-12", peer)
        if msg.processing_id not in PROCESSING_IDS:
            return self._nak(header, ack.REJECT, f"processing ID {msg.processing_id!r}: "
                             "only production messages (P) are processed",
                             UNSUPPORTED_PROCESSING_ID, "MSH-11", peer)
        if not msg.control_id:
            return self._nak(header, ack.ERROR, "no message control ID (MSH-10)",
                             REQUIRED_FIELD_MISSING, "MSH-10", peer)
        try:
            patient_id, found = orders.read(msg, self.station_aet)
            done = orders.apply(self.engine, patient_id, found)
        except orders.OrderError as exc:
            return self._nak(header, ack.ERROR, str(exc), exc.code, exc.location, peer)
        except WorklistError as exc:  # changed concurrently between check and change
            return self._nak(header, ack.ERROR, str(exc), INTERNAL_ERROR, "", peer)
        except Exception as exc:
            log.exception("HL7 message %r from %s could not be processed", msg.control_id,
                          peer)
            return self._nak(header, ack.REJECT, f"internal error: {type(exc).__name__}",
                             INTERNAL_ERROR, "", peer)
        log.info("HL7 %s^%s %r from %s: %s", kind, trigger, msg.control_id, peer, done)
        return ack.build(header, ack.ACCEPT, our_name=self.our_name)


def start(settings: Settings, engine: Engine) -> mllp.MllpServer:
    """Listen for MLLP on ``dicom_host:hl7_port`` and serve from a thread (OSError when
    the port cannot be bound)."""
    receiver = Receiver(engine, station_aet=settings.hl7_station_aet, our_name=settings.aet)
    server = mllp.MllpServer((settings.dicom_host, settings.hl7_port), receiver.handle,
                             timeout=settings.network_timeout)
    server.start()
    log.info("HL7 (MLLP) on %s:%d", settings.dicom_host, server.port)
    return server
