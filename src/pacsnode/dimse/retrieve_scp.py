"""C-MOVE and C-GET SCP for the Patient Root and Study Root Query/Retrieve Information
Models (PS3.4 C.4.2, C.4.3, C.6.1, C.6.2), sending every instance as it is stored.

pynetdicom 3's own C-MOVE/C-GET SCP (``QueryRetrieveServiceClass._move_scp``/``_get_scp``)
sends only pydicom Datasets, which it encodes again: neither byte-exact nor fast. pacsnode
serves these requests itself: :func:`install` wraps ``QueryRetrieveServiceClass.SCP`` so
that a C-MOVE or C-GET request of one of the four models, on an association whose
``EVT_C_MOVE``/``EVT_C_GET`` handler is a :class:`RetrieveService` method, is served by
:meth:`RetrieveService.serve`; C-FIND and every other model stay with pynetdicom. The
responses follow pynetdicom's conventions (``dimse.send_msg``, ``is_cancelled``).

* **Identifier** (PS3.4 C.4.2.2.1, C.4.3.2.1): the Query/Retrieve Level and the unique key of
  that level are required (a level the model lacks, or a missing unique key: 0xA900); the
  unique keys of the levels above are used when present; other keys are ignored. UID keys
  may be lists of UIDs (C.2.2.2.2); Patient ID is matched as a single value, never as a
  wildcard. An identifier that cannot be decoded: 0xC000.
* **Instances** are read from the index in one snapshot (a count, the (SOP class, transfer
  syntax) pairs, then the instances streamed in batches): memory stays bounded whatever the
  number of instances. More than 65,535 (the sub-operation counts are US): 0xA701.
* **Sub-operations** send the stored file (pacsnode's file meta, then the data set exactly
  as received) streamed from disk, so the data set arrives byte-identical — when the peer
  accepted the instance's stored transfer syntax. Otherwise it is converted with pydicom to
  an accepted uncompressed syntax (Explicit, else Implicit VR Little Endian) — compressed
  pixel data decompressed (``Dataset.decompress``, same SOP Instance UID), big endian
  byte-swapped — through a temporary file; with no such context the sub-operation fails.
* **C-MOVE** (C.4.2): the destination AE title must be a known peer, from the TOML file or
  the index (:func:`pacsnode.core.peers.by_aet`), else 0xA801. One association to it,
  calling AE title ours, proposing per SOP class each stored transfer syntax and both
  uncompressed ones, each in a context of its own (fewer, grouped contexts when that
  exceeds 128); each C-STORE carries the Move Originator AE Title (the C-MOVE requestor's)
  and Message ID and the C-MOVE's Priority (PS3.7 9.1.1.1). An association that cannot be
  established: 0xA702 with every instance failed.
* **C-GET** (C.4.3): C-STOREs on the same association, in the storage contexts the requestor
  proposed with the SCP role (SCP/SCU Role Selection, PS3.7 D.3.3.4).
* **Responses**: a Pending response (0xFF00) after each sub-operation but the last, with the
  remaining, completed, failed and warning counts; then Success (0x0000), 0xB000 (some
  failures or warnings) or 0xA702 (every sub-operation failed), or 0xFE00 after a C-CANCEL
  (checked before each sub-operation), with the counts; the Failed SOP Instance UID List
  only when a sub-operation failed, never in a Pending response (PS3.4 C.4.2.1.5,
  C.4.3.1.4, C.4.2.3.1). No match: Success with zero counts.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import sqlalchemy.exc
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.dsutils import decode, encode
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.service_class import QueryRetrieveServiceClass
from pynetdicom.status import STATUS_FAILURE, STATUS_SUCCESS, STATUS_WARNING

from pacsnode.config import Peer, Settings
from pacsnode.core import peers
from pacsnode.core.archive import Archive
from pacsnode.core.retrieve import Selection, select_instances
from pacsnode.core.transcode import UNCOMPRESSED
from pacsnode.dimse import command_set, direct_send, statuses
from pacsnode.dimse.qr_models import MODELS, Refused, query_level
from pacsnode.dimse.reactor import pause_reactor
from pacsnode.dimse.requestor import requestor
from pacsnode.dimse.store_suboperations import StoreSender
from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition, Kind
from pacsnode.index.query_keys import UNIQUE_KEYS

log = logging.getLogger(__name__)

KEY_NAMES = {Level.PATIENT: "Patient ID", Level.STUDY: "Study Instance UID",
             Level.SERIES: "Series Instance UID", Level.IMAGE: "SOP Instance UID"}

# C-MOVE/C-GET statuses not in pacsnode.dimse.statuses (PS3.4 C.4.2.1.5, C.4.3.1.4)
UNABLE_TO_CALCULATE = 0xA701  # Refused: Out of Resources - Unable to calculate number of matches
SUBOPS_FAILED = 0xA702  # Refused: Out of Resources - Unable to perform sub-operations

MAX_SUBOPERATIONS = 0xFFFF  # the Number of ... Sub-operations are US (PS3.7 E.1)
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255
MAX_UI_LENGTH = 0xFFFE  # an explicit VR UI value has a 16-bit length (PS3.5 7.1.2)


# -- the identifier ------------------------------------------------------------------------


def _values(identifier: Dataset, tag: int) -> list[str]:
    """The non-empty values of ``tag`` in ``identifier`` (several for a list of UIDs)."""
    elem = identifier.get(tag)
    if elem is None or elem.value is None:
        return []
    value = elem.value
    items = [value] if isinstance(value, str | bytes) else list(value)
    out = []
    for item in items:
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        text = text.strip(" \x00")
        if text:
            out.append(text)
    return out


def parse_identifier(identifier: Dataset, model_uid: str) -> tuple[Level, dict[int, Condition]]:
    """The retrieve level and the index conditions selecting the instances to send
    (PS3.4 C.4.2.2.1, C.4.3.2.1: the unique keys of the level and the levels above)."""
    _, _, levels = MODELS[model_uid]
    level = query_level(identifier, model_uid)
    keys: dict[int, Condition] = {}
    for lv in levels[:levels.index(level) + 1]:
        tag = UNIQUE_KEYS[lv]
        values = _values(identifier, tag)
        if not values:
            if lv is level:
                raise Refused(statuses.IDENTIFIER_DOES_NOT_MATCH,
                                    f"a {level.value} retrieve needs a {KEY_NAMES[lv]}")
            continue  # a unique key above the level is optional here
        if lv is Level.PATIENT:  # single value matching, no wildcards (C.4.2.2.1)
            keys[tag] = Condition(Kind.SINGLE, "LO", values=tuple(values))
        else:
            keys[tag] = Condition(Kind.UID_LIST if len(values) > 1 else Kind.SINGLE, "UI",
                                  values=tuple(values))
    return level, keys


# -- presentation contexts -----------------------------------------------------------------


def _ordered(syntaxes: set[str]) -> list[str]:
    """Transfer syntaxes in a stable order, the uncompressed ones last."""
    return sorted(s for s in syntaxes if s not in UNCOMPRESSED) + \
        [s for s in UNCOMPRESSED if s in syntaxes]


def propose_contexts(syntaxes: dict[str, set[str]]
                     ) -> tuple[list[PresentationContext], list[str]]:
    """The presentation contexts a C-MOVE proposes to its destination (at most 128), and
    the SOP classes left without one (when there are more than 128 SOP classes).

    Each SOP class gets its stored transfer syntaxes and both uncompressed ones, one
    context each (so that the destination accepts or refuses each on its own); if that
    needs more than 128 contexts, the two uncompressed syntaxes share one context per SOP
    class; if still too many, each SOP class gets one context with all its syntaxes."""
    classes = sorted(syntaxes)
    plans: list[list[tuple[str, list[str]]]] = [
        [(c, [s]) for c in classes for s in _ordered(syntaxes[c] | set(UNCOMPRESSED))],
        [(c, [s]) for c in classes for s in _ordered(syntaxes[c] - set(UNCOMPRESSED))]
        + [(c, list(UNCOMPRESSED)) for c in classes],
        [(c, _ordered(syntaxes[c] | set(UNCOMPRESSED))) for c in classes],
    ]
    for plan in plans:
        if len(plan) <= MAX_CONTEXTS:
            return [build_context(c, s) for c, s in plan], []
    kept = plans[-1][:MAX_CONTEXTS]
    return [build_context(c, s) for c, s in kept], classes[MAX_CONTEXTS:]


# -- one retrieve --------------------------------------------------------------------------


@dataclass
class Counts:
    """Sub-operation counts of one retrieve (PS3.4 C.4.2.1.4.2 / C.4.3.1.3.2)."""

    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def record(self, uid: str, category: str, reason: str = "") -> None:
        self.remaining = max(0, self.remaining - 1)
        if category == STATUS_SUCCESS:
            self.completed += 1
        elif category == STATUS_WARNING:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(uid)
            self.reasons[reason or "failed"] += 1


class _Responder:
    """Sends the C-MOVE or C-GET responses of one request on the requestor's association."""

    def __init__(self, scp: QueryRetrieveServiceClass, req: C_MOVE | C_GET,
                 context: PresentationContext) -> None:
        self.scp = scp
        self.req = req
        self.cx_id = int(context.context_id or 0)
        self.syntax = UID(str(context.transfer_syntax[0]))

    def identifier(self) -> Dataset:
        """The request's Identifier, decoded in the context's transfer syntax."""
        if self.req.Identifier is None:
            raise ValueError("no Identifier")
        ds = decode(self.req.Identifier, self.syntax.is_implicit_VR,
                    self.syntax.is_little_endian, self.syntax.is_deflated)
        for _ in ds:  # pydicom decodes lazily: fail here, not later
            pass
        return ds

    def _failed_list(self, uids: list[str]) -> BytesIO:
        """The Identifier with the Failed SOP Instance UID List; in explicit VR the value has
        a 16-bit length, so the list is cut to what fits."""
        if not self.syntax.is_implicit_VR:
            total, kept = 0, list[str]()
            for uid in uids:
                total += len(uid) + (1 if kept else 0)
                if total > MAX_UI_LENGTH:
                    log.warning("Failed SOP Instance UID List cut to %d of %d UIDs (explicit "
                                "VR value length limit)", len(kept), len(uids))
                    break
                kept.append(uid)
            uids = kept
        ds = Dataset()
        ds.FailedSOPInstanceUIDList = uids
        data = encode(ds, self.syntax.is_implicit_VR, self.syntax.is_little_endian,
                      self.syntax.is_deflated)
        return BytesIO(data or b"")

    def send(self, status: int, counts: Counts | None = None, *, remaining: bool = False,
             failed_list: bool = False, comment: str = "") -> None:
        """One response: ``counts`` (the remaining count only if ``remaining``), the Failed
        SOP Instance UID List if ``failed_list`` and something failed, an Error Comment.
        Encoded by :mod:`pacsnode.dimse.command_set` and written directly; through
        pynetdicom's ``send_msg`` when that is not possible."""
        identifier = None
        if counts is not None and failed_list and counts.failed_uids:
            identifier = self._failed_list(counts.failed_uids)
        is_move = isinstance(self.req, C_MOVE)
        message_id = int(self.req.MessageID or 0)
        sop_class = str(self.req.AffectedSOPClassUID or "")
        command = command_set.retrieve_rsp(
            command_set.C_MOVE_RSP if is_move else command_set.C_GET_RSP, message_id,
            sop_class, status, data_set=identifier is not None,
            remaining=min(counts.remaining, MAX_SUBOPERATIONS)
            if counts is not None and remaining else None,
            completed=counts.completed if counts is not None else None,
            failed=counts.failed if counts is not None else None,
            warning=counts.warning if counts is not None else None,
            error_comment=comment or None)
        try:
            if direct_send.write_message(self.scp.dimse, self.cx_id, command,
                                         data=identifier.getvalue() if identifier else None):
                return
        except OSError:
            self.scp.dimse.dul.event_queue.put("Evt17")  # transport connection closed
            return
        rsp = C_MOVE() if is_move else C_GET()
        rsp.MessageIDBeingRespondedTo = message_id
        rsp.AffectedSOPClassUID = sop_class
        rsp.Status = status
        if comment:
            setattr(rsp, "ErrorComment", comment[:64])  # noqa: B010 (typed None upstream)
        if counts is not None:
            if remaining:
                rsp.NumberOfRemainingSuboperations = min(counts.remaining, MAX_SUBOPERATIONS)
            rsp.NumberOfCompletedSuboperations = counts.completed
            rsp.NumberOfFailedSuboperations = counts.failed
            rsp.NumberOfWarningSuboperations = counts.warning
            rsp.Identifier = identifier
        self.scp.dimse.send_msg(rsp, self.cx_id)


class _Retrieve:
    """Serving one C-MOVE or C-GET request."""

    def __init__(self, service: RetrieveService, scp: QueryRetrieveServiceClass,
                 req: C_MOVE | C_GET, context: PresentationContext) -> None:
        self.service = service
        self.scp = scp
        self.req = req
        self.model = str(context.abstract_syntax)
        self.op, self.model_name, _ = MODELS[self.model]
        self.out = _Responder(scp, req, context)
        self.who = requestor(scp.assoc)
        self.counts = Counts()
        self.started = time.monotonic()
        self.level = ""
        self.destination = ""
        # the request's Priority for the C-STOREs (0 MEDIUM, 1 HIGH, 2 LOW; PS3.7 9.1.1.1)
        self.priority = req.Priority if req.Priority in (0, 1, 2) else 0

    # -- helpers --

    def refuse(self, status: int, comment: str, why: str | None = None) -> None:
        log.warning("%s %s from %s refused (0x%04X): %s", self.op, self.model_name,
                    self.who, status, why or comment)
        self.out.send(status, comment=comment)

    def requestor_gone(self) -> bool:
        assoc = self.scp.assoc
        return (not assoc.is_established or assoc.acse.is_aborted()
                or assoc.acse.is_release_requested())

    def summary(self, status: int | None, outcome: str, converted: int = 0) -> None:
        """The one log line of a retrieve: who, level, destination, counts, outcome."""
        c = self.counts
        to = f" to {self.destination}" if self.destination else ""
        extra = f", {converted} converted" if converted else ""
        reasons = "; ".join(f"{n}x {why}" for why, n in c.reasons.most_common(3))
        final = f"0x{status:04X} {outcome}" if status is not None else outcome
        log.info("%s %s %s from %s%s: %d completed, %d failed, %d warning%s%s, %s in %.2f s",
                 self.op, self.model_name, self.level, self.who, to, c.completed, c.failed,
                 c.warning, extra, f" ({reasons})" if reasons else "", final,
                 time.monotonic() - self.started)

    # -- the request --

    def run(self) -> None:
        try:
            identifier = self.out.identifier()
            level, keys = parse_identifier(identifier, self.model)
        except Refused as exc:
            self.refuse(exc.status, exc.comment)
            return
        except Exception as exc:  # pydicom raises many types on undecodable data
            self.refuse(statuses.UNABLE_TO_PROCESS, "cannot decode the identifier",
                        f"identifier cannot be decoded: {exc}")
            return
        self.level = level.value
        try:
            peer: Peer | None = None
            if isinstance(self.req, C_MOVE):
                peer = self.destination_peer(str(self.req.MoveDestination or "").strip())
                if peer is None:
                    return
            with select_instances(self.service.archive.engine, keys) as selection:
                self.send_selection(selection, peer)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # before any sub-operation: the matches could not be counted (0xA701); during
            # them: the rest could not be performed (0xA702), with the counts so far
            log.error("%s from %s: index unavailable: %s", self.op, self.who, exc)
            c = self.counts
            status = SUBOPS_FAILED if c.completed or c.failed or c.warning else \
                UNABLE_TO_CALCULATE
            if not self.requestor_gone():
                self.out.send(status, c, failed_list=True, comment="index unavailable")
            self.summary(status, "index unavailable")

    def destination_peer(self, aet: str) -> Peer | None:
        """The peer the Move Destination names (TOML peers, then the index's); if none, the
        request is refused with 0xA801."""
        settings, engine = self.service.settings, self.service.archive.engine
        peer = peers.by_aet(settings, aet, engine)
        if peer is None:
            known = ", ".join(sorted({p.aet for p in peers.all_peers(settings, engine)}))
            self.refuse(statuses.MOVE_DESTINATION_UNKNOWN, f"move destination {aet!r} unknown",
                        f"move destination {aet!r} is not a known peer (known AE titles: "
                        f"{known or 'none'})")
            return None
        self.destination = f"{peer.aet}@{peer.host}:{peer.port}"
        return peer

    def send_selection(self, selection: Selection, peer: Peer | None) -> None:
        count = selection.count
        if count == 0:
            self.out.send(statuses.SUCCESS, self.counts)
            self.summary(statuses.SUCCESS, "no match")
            return
        if count > MAX_SUBOPERATIONS:
            self.refuse(UNABLE_TO_CALCULATE, f"{count} instances: at most 65535 per request")
            return
        self.counts.remaining = count
        if peer is None:  # C-GET: the requestor's association
            sender = StoreSender(self.service.archive, self.scp.assoc, other_thread=False,
                             priority=self.priority)
            self.send_all(selection, sender)
            return
        contexts, left_out = propose_contexts(selection.syntaxes)
        if left_out:
            log.warning("C-MOVE to %s: more than %d SOP classes, no presentation context for "
                        "%d of them", self.destination, MAX_CONTEXTS, len(left_out))
        try:
            store_assoc = self.service.associate(peer, contexts)
        except ConnectionError as exc:
            for item in selection.instances:
                self.counts.record(item.sop_instance_uid, STATUS_FAILURE, str(exc))
            self.out.send(SUBOPS_FAILED, self.counts, failed_list=True,
                          comment=str(exc)[:64])
            self.summary(SUBOPS_FAILED, "destination unreachable")
            return
        try:
            originator = (str(self.scp.assoc.requestor.ae_title), int(self.req.MessageID or 0))
            sender = StoreSender(self.service.archive, store_assoc, other_thread=True,
                             priority=self.priority, originator=originator)
            self.send_all(selection, sender)
        finally:
            if store_assoc.is_established:
                pause_reactor(store_assoc)
                store_assoc.release()
            elif store_assoc.is_alive():
                store_assoc.abort()

    def send_all(self, selection: Selection, sender: StoreSender) -> None:
        with sender.running():
            cancelled = self._send_each(selection, sender)
        if cancelled is None:
            return
        c = self.counts
        if cancelled:
            status, outcome = statuses.CANCEL, "cancelled"
            self.out.send(status, c, remaining=True, failed_list=True)
        else:
            if not c.failed and not c.warning:
                status, outcome = statuses.SUCCESS, "success"
            elif c.failed and not c.completed and not c.warning:
                status, outcome = SUBOPS_FAILED, "all sub-operations failed"
            else:
                status, outcome = statuses.SUBOPS_WARNING, "with failures or warnings"
            self.out.send(status, c, failed_list=True)
        self.summary(status, outcome, sender.converted)


    def _send_each(self, selection: Selection, sender: StoreSender) -> bool | None:
        """The sub-operations, with a Pending response after each but the last: True if a
        C-CANCEL stopped them, None if the requestor's association ended."""
        for item in selection.instances:
            if self.requestor_gone():
                self.summary(None, f"stopped with {self.counts.remaining} remaining: the "
                             "requestor's association ended", sender.converted)
                return None
            if self.scp.is_cancelled(int(self.req.MessageID or 0)):
                return True
            category, reason = sender.send(item)
            self.counts.record(item.sop_instance_uid, category, reason)
            if self.counts.remaining > 0:
                self.out.send(statuses.PENDING, self.counts, remaining=True)
        return False


# -- the service ---------------------------------------------------------------------------


class RetrieveService:
    """The C-MOVE and C-GET SCP bound to one archive (see the module documentation)."""

    def __init__(self, archive: Archive, settings: Settings) -> None:
        self.archive = archive
        self.settings = settings

    def handlers(self) -> list[tuple[Any, Any]]:
        """The (event, handler) pairs to bind; binding them routes C-MOVE and C-GET of the
        four models on the association to :meth:`serve` (:func:`install`)."""
        install()
        return [(evt.EVT_C_MOVE, self.on_move), (evt.EVT_C_GET, self.on_get)]

    def on_move(self, event: Any) -> Any:
        """Never called while :func:`install` is in effect (pynetdicom would then answer
        0xC511)."""
        raise RuntimeError("C-MOVE is served by pacsnode.dimse.retrieve_scp (not installed)")

    def on_get(self, event: Any) -> Any:
        """Never called while :func:`install` is in effect (pynetdicom would then answer
        0xC411)."""
        raise RuntimeError("C-GET is served by pacsnode.dimse.retrieve_scp (not installed)")

    def associate(self, peer: Peer, contexts: list[PresentationContext]) -> Association:
        """An association with a C-MOVE destination, our AE title calling."""
        ae = AE(ae_title=self.settings.aet)
        ae.acse_timeout = self.settings.acse_timeout
        ae.dimse_timeout = self.settings.dimse_timeout
        ae.network_timeout = self.settings.network_timeout
        ae.maximum_pdu_size = self.settings.max_pdu_size
        assoc = ae.associate(peer.host, peer.port, contexts=contexts, ae_title=peer.aet)
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "failed (no connection, or aborted)"
            raise ConnectionError(f"association with {peer.aet}@{peer.host}:{peer.port} {why}")
        return assoc

    def serve(self, scp: QueryRetrieveServiceClass, req: C_MOVE | C_GET,
              context: PresentationContext) -> None:
        """Serve one C-MOVE or C-GET request (PS3.4 C.4.2, C.4.3) to its final response."""
        try:
            _Retrieve(self, scp, req, context).run()
        except Exception:
            log.exception("%s from %s failed", type(req).__name__, requestor(scp.assoc))
            if scp.assoc.is_established:
                _Responder(scp, req, context).send(statuses.UNABLE_TO_PROCESS,
                                                   comment="internal error")


# -- the hook into pynetdicom ---------------------------------------------------------------


_ORIGINAL_SCP: Callable[..., None] = QueryRetrieveServiceClass.SCP


def _bound_service(assoc: Association, req: Any) -> RetrieveService | None:
    """The RetrieveService whose handler is bound to this request's event, if any."""
    event = evt.EVT_C_MOVE if isinstance(req, C_MOVE) else \
        evt.EVT_C_GET if isinstance(req, C_GET) else None
    if event is None:
        return None
    bound = assoc.get_handlers(event)
    handler = bound[0] if isinstance(bound, tuple) and bound else None
    service = getattr(handler, "__self__", None)
    return service if isinstance(service, RetrieveService) else None


def _scp(self: QueryRetrieveServiceClass, req: Any, context: PresentationContext) -> None:
    """``QueryRetrieveServiceClass.SCP``, with C-MOVE and C-GET of the Patient Root and Study
    Root models served by pacsnode."""
    service = _bound_service(self.assoc, req)
    model = MODELS.get(str(context.abstract_syntax))
    if service is not None and model is not None and \
            model[0] == ("C-MOVE" if isinstance(req, C_MOVE) else "C-GET"):
        service.serve(self, req, context)
        return
    _ORIGINAL_SCP(self, req, context)


def install() -> None:
    """Route C-MOVE/C-GET to :class:`RetrieveService` (idempotent)."""
    QueryRetrieveServiceClass.SCP = _scp  # type: ignore[method-assign]
