"""pacsnode as a Query/Retrieve SCU: C-FIND, C-MOVE and C-GET to another node, Patient Root or
Study Root Query/Retrieve Information Model (PS3.4 C.4.1, C.4.2, C.4.3, C.6.1, C.6.2).

* :func:`find` sends one C-FIND and collects the Pending responses' Identifiers (PS3.4
  C.4.1.1.4: 0xFF00 / 0xFF01 carry a match, Success ends the list).
* :func:`move` asks the peer to C-STORE the matching instances to a third AE (the move
  destination, by default ourselves: the running ``pacsnode serve`` receives them) and
  reports the Pending responses' sub-operation counts as they come (PS3.4 C.4.2.1.6).
* :func:`get` receives the instances on the same association (PS3.4 C.4.3): pacsnode is the
  Storage SCP for the sub-operations, which needs SCP/SCU Role Selection Negotiation for
  every storage SOP class proposed (PS3.7 D.3.3.4; PS3.4 C.4.3.1.2). A request carries at most
  128 presentation contexts (PS3.8 9.3.2.2: odd IDs 1–255), one of them the C-GET model, so
  :func:`get_contexts` proposes the common storage SOP classes only; for the commonest
  image classes it proposes one context per transfer syntax, so that the peer finds a
  context in the syntax each instance is stored in and can send it without converting.
  Received data sets are spooled straight into the archive's file layout
  (:mod:`pacsnode.dimse.spool`) and ingested as the server ingests them.

Every socket gets TCP_NODELAY (:mod:`pacsnode.dimse.transport_tuning`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset
from pynetdicom import _config, evt
from pynetdicom.association import Association
from pynetdicom.presentation import build_role

from pacsnode.config import Peer
from pacsnode.core.archive import Archive
from pacsnode.core.results import IngestResult, Outcome
from pacsnode.dimse import qr_models, scu, spool, statuses, transport_tuning
from pacsnode.dimse.scu import AssociationFailed
from pacsnode.dimse.spool import SpoolFile

log = logging.getLogger(__name__)

# The Query/Retrieve Information Models (PS3.4 C.6.1, C.6.2) by the names the commands use:
# model -> {"find"|"move"|"get": SOP class UID}, and the levels of each model.
MODELS: dict[str, dict[str, str]] = {}
for _uid, (_service, _name, _levels) in qr_models.MODELS.items():
    MODELS.setdefault(_name.split()[0].lower(), {})[_service[2:].lower()] = _uid
MODEL_LEVELS = {"patient": tuple(lv.value for lv in qr_models.PATIENT_ROOT_LEVELS),
                "study": tuple(lv.value for lv in qr_models.STUDY_ROOT_LEVELS)}

PENDING = (0xFF00, 0xFF01)
MEDIUM = 0x0000  # Priority (0000,0700): 0000H MEDIUM, 0001H HIGH, 0002H LOW (PS3.7 E.1)
CANCEL = 0xFE00
MAX_CONTEXTS = scu.MAX_CONTEXTS

# The commonest image SOP classes: one presentation context per transfer syntax below.
IMAGE_CLASSES = (
    dcm_uid.CTImageStorage,
    dcm_uid.MRImageStorage,
    dcm_uid.ComputedRadiographyImageStorage,
    dcm_uid.DigitalXRayImageStorageForPresentation,
    dcm_uid.DigitalMammographyXRayImageStorageForPresentation,
    dcm_uid.UltrasoundImageStorage,
    dcm_uid.UltrasoundMultiFrameImageStorage,
    dcm_uid.SecondaryCaptureImageStorage,
    dcm_uid.XRayAngiographicImageStorage,
    dcm_uid.NuclearMedicineImageStorage,
    dcm_uid.PositronEmissionTomographyImageStorage,
    dcm_uid.EnhancedCTImageStorage,
    dcm_uid.EnhancedMRImageStorage,
)
IMAGE_SYNTAXES = (
    dcm_uid.ExplicitVRLittleEndian,
    dcm_uid.ImplicitVRLittleEndian,
    dcm_uid.JPEGBaseline8Bit,
    dcm_uid.JPEGLosslessSV1,
    dcm_uid.JPEG2000Lossless,
    dcm_uid.JPEG2000,
)
# Other common storage SOP classes: one context each, proposing these syntaxes (the peer
# picks one, and converts an instance stored otherwise if it can).
OTHER_CLASSES = (
    dcm_uid.DigitalXRayImageStorageForProcessing,
    dcm_uid.DigitalMammographyXRayImageStorageForProcessing,
    dcm_uid.BreastTomosynthesisImageStorage,
    dcm_uid.XRayRadiofluoroscopicImageStorage,
    dcm_uid.EnhancedXAImageStorage,
    dcm_uid.EnhancedPETImageStorage,
    dcm_uid.LegacyConvertedEnhancedCTImageStorage,
    dcm_uid.LegacyConvertedEnhancedMRImageStorage,
    dcm_uid.LegacyConvertedEnhancedPETImageStorage,
    dcm_uid.EnhancedUSVolumeStorage,
    dcm_uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    dcm_uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    dcm_uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    dcm_uid.MultiFrameSingleBitSecondaryCaptureImageStorage,
    dcm_uid.VLEndoscopicImageStorage,
    dcm_uid.VLPhotographicImageStorage,
    dcm_uid.VLMicroscopicImageStorage,
    dcm_uid.VLWholeSlideMicroscopyImageStorage,
    dcm_uid.OphthalmicPhotography8BitImageStorage,
    dcm_uid.OphthalmicTomographyImageStorage,
    dcm_uid.DigitalIntraOralXRayImageStorageForPresentation,
    dcm_uid.XRay3DAngiographicImageStorage,
    dcm_uid.RTImageStorage,
    dcm_uid.RTDoseStorage,
    dcm_uid.RTStructureSetStorage,
    dcm_uid.RTPlanStorage,
    dcm_uid.RTIonPlanStorage,
    dcm_uid.RTBeamsTreatmentRecordStorage,
    dcm_uid.SegmentationStorage,
    dcm_uid.SpatialRegistrationStorage,
    dcm_uid.DeformableSpatialRegistrationStorage,
    dcm_uid.RawDataStorage,
    dcm_uid.GrayscaleSoftcopyPresentationStateStorage,
    dcm_uid.ColorSoftcopyPresentationStateStorage,
    dcm_uid.KeyObjectSelectionDocumentStorage,
    dcm_uid.BasicTextSRStorage,
    dcm_uid.EnhancedSRStorage,
    dcm_uid.ComprehensiveSRStorage,
    dcm_uid.Comprehensive3DSRStorage,
    dcm_uid.XRayRadiationDoseSRStorage,
    dcm_uid.MammographyCADSRStorage,
    dcm_uid.EncapsulatedPDFStorage,
    dcm_uid.EncapsulatedCDAStorage,
    dcm_uid.TwelveLeadECGWaveformStorage,
    dcm_uid.GeneralECGWaveformStorage,
    dcm_uid.VideoEndoscopicImageStorage,
)
OTHER_SYNTAXES = (
    dcm_uid.ExplicitVRLittleEndian,
    dcm_uid.ImplicitVRLittleEndian,
    dcm_uid.JPEGBaseline8Bit,
    dcm_uid.JPEGLosslessSV1,
    dcm_uid.JPEGLSLossless,
    dcm_uid.JPEG2000Lossless,
    dcm_uid.JPEG2000,
    dcm_uid.RLELossless,
    dcm_uid.MPEG4HP41,
    dcm_uid.DeflatedExplicitVRLittleEndian,
    dcm_uid.ExplicitVRBigEndian,
)


class QueryFailed(RuntimeError):
    """The peer answered the request with a failure status (the message says which)."""

    def __init__(self, status: int, comment: str = "") -> None:
        super().__init__(f"status 0x{status:04X}" + (f": {comment}" if comment else ""))
        self.status = status
        self.comment = comment


@dataclass(frozen=True)
class FindResult:
    """The matches of one C-FIND, and its final status (Success, or Cancel)."""

    matches: list[Dataset]
    status: int
    warnings: int = 0  # Pending responses with 0xFF01 (an optional key not supported)


@dataclass(frozen=True)
class SubOperations:
    """The sub-operation counts of a C-MOVE or C-GET response (PS3.4 C.4.2.1.6,
    C.4.3.1.6); a count the response did not carry is None."""

    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None

    @property
    def done(self) -> int:
        return (self.completed or 0) + (self.failed or 0) + (self.warning or 0)

    @property
    def total(self) -> int | None:
        return None if self.remaining is None else self.remaining + self.done

    @classmethod
    def of(cls, status: Dataset) -> SubOperations:
        def count(keyword: str) -> int | None:
            value = status.get(keyword)
            return None if value is None or value == "" else int(value)

        return cls(count("NumberOfRemainingSuboperations"),
                   count("NumberOfCompletedSuboperations"),
                   count("NumberOfFailedSuboperations"),
                   count("NumberOfWarningSuboperations"))


@dataclass
class RetrieveResult:
    """How a C-MOVE or C-GET ended: the final status, the sub-operation counts, the Failed
    SOP Instance UID List (0008,0058), and for C-GET what the local archive made of each
    instance received."""

    status: int | None = None
    comment: str = ""
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)  # Outcome value -> count
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (SOP Instance UID, why)

    @property
    def ok(self) -> bool:
        """Success with no failed or warning sub-operations."""
        return self.status == statuses.SUCCESS and not self.failed and not self.warning


# Meanings of the statuses a Q/R SCP answers (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4; PS3.7 C).
_STATUS_TEXT = {
    0x0000: "Success",
    0xFE00: "Cancel: sub-operations terminated",
    0xB000: "Warning: sub-operations complete, one or more failures or warnings",
    0xA700: "Refused: out of resources",
    0xA701: "Refused: out of resources, unable to calculate number of matches",
    0xA702: "Refused: out of resources, unable to perform sub-operations",
    0xA801: "Refused: move destination unknown",
    0xA900: "Failure: identifier does not match SOP class",
    0x0122: "Failure: SOP class not supported",
    0x0124: "Failure: not authorised",
}


def describe_status(code: int | None) -> str:
    """``0xA801 (Refused: move destination unknown)``: a status code with its meaning."""
    if code is None:
        return "no final status"
    text = _STATUS_TEXT.get(code)
    if text is None:
        text = ("Failure: unable to process" if 0xC000 <= code <= 0xCFFF else
                "Warning" if 0xB000 <= code <= 0xBFFF or code == 0x0001 else
                "Pending" if code in PENDING else "Failure")
    return f"0x{code:04X} ({text})"


def _model(model: str, service: str) -> str:
    try:
        return MODELS[model][service]
    except KeyError:
        raise ValueError(f"unknown information model {model!r}: "
                         f"{' or '.join(MODELS)}") from None


def _status_of(status: Dataset) -> int:
    if "Status" not in status:
        raise AssociationFailed("no response from the peer (timeout or association aborted)")
    return int(status.Status)


def _comment(status: Dataset) -> str:
    return str(status.get("ErrorComment", "") or "").strip()


def _associate(ae: Any, peer: Peer, **kwargs: Any) -> Association:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.aet, **kwargs)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else \
            "could not connect"
        raise AssociationFailed(f"association with {peer.aet}@{peer.host}:{peer.port} {why}")
    return assoc


def _release(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()


def find(peer: Peer, identifier: Dataset, *, model: str = "study",
         calling_aet: str = "PACSNODE", timeout: float = 60.0,
         on_match: Callable[[Dataset], None] | None = None) -> FindResult:
    """C-FIND ``identifier`` at ``peer`` (PS3.4 C.4.1): the Identifier's Query/Retrieve
    Level and keys are sent as given. Raises :class:`QueryFailed` on a failure status and
    :class:`AssociationFailed` when the peer cannot be reached or stops answering."""
    sop_class = _model(model, "find")
    ae = scu._ae(calling_aet, timeout)
    ae.add_requested_context(sop_class)
    assoc = _associate(ae, peer)
    matches: list[Dataset] = []
    warnings = 0
    try:
        for status, match in assoc.send_c_find(identifier, sop_class, priority=MEDIUM):
            code = _status_of(status)
            if code in PENDING:
                if code == 0xFF01:
                    warnings += 1
                if match is not None:
                    matches.append(match)
                    if on_match is not None:
                        on_match(match)
                continue
            if code in (statuses.SUCCESS, CANCEL):
                return FindResult(matches, code, warnings)
            raise QueryFailed(code, _comment(status))
        raise AssociationFailed("the C-FIND ended without a final response")
    finally:
        _release(assoc)


def _retrieve_loop(responses: Iterable[tuple[Dataset, Dataset | None]],
                   on_progress: Callable[[SubOperations], None] | None,
                   result: RetrieveResult) -> RetrieveResult:
    """Follow the Pending responses of a C-MOVE or C-GET up to the final one."""
    last = SubOperations()
    for status, identifier in responses:
        code = _status_of(status)
        counts = SubOperations.of(status)
        if code in PENDING:
            last = counts
            if on_progress is not None:
                on_progress(counts)
            continue
        result.status = code
        result.comment = _comment(status)
        # Counts are conditional in a final response (PS3.4 C.4.2.1.6): fall back on the
        # last Pending response's.
        result.completed = (counts.completed if counts.completed is not None
                            else last.completed or 0)
        result.failed = counts.failed if counts.failed is not None else last.failed or 0
        result.warning = counts.warning if counts.warning is not None else last.warning or 0
        if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
            value = identifier.FailedSOPInstanceUIDList
            uids = [value] if isinstance(value, str) else list(value or [])
            result.failed_uids = [str(u) for u in uids if str(u)]
        if on_progress is not None:
            on_progress(SubOperations(0, result.completed, result.failed, result.warning))
        return result
    raise AssociationFailed("the retrieve ended without a final response")


def move(peer: Peer, identifier: Dataset, destination: str, *, model: str = "study",
         calling_aet: str = "PACSNODE", timeout: float = 60.0,
         on_progress: Callable[[SubOperations], None] | None = None) -> RetrieveResult:
    """C-MOVE ``identifier`` from ``peer`` to the AE titled ``destination`` (PS3.4 C.4.2),
    which the peer must know by that AE title. A failure status is reported in the result
    (with its Failed SOP Instance UID List), not raised."""
    sop_class = _model(model, "move")
    ae = scu._ae(calling_aet, timeout)
    ae.add_requested_context(sop_class)
    assoc = _associate(ae, peer)
    try:
        return _retrieve_loop(assoc.send_c_move(identifier, destination, sop_class,
                                                priority=MEDIUM),
                              on_progress, RetrieveResult())
    finally:
        _release(assoc)


def get_contexts(model: str = "study") -> list[tuple[str, list[str]]]:
    """The presentation contexts a C-GET proposes: the model's GET SOP class, then the
    storage SOP classes (one context per transfer syntax for :data:`IMAGE_CLASSES`, one
    context for each of :data:`OTHER_CLASSES`) — at most 128 in all (PS3.8 9.3.2.2)."""
    contexts: list[tuple[str, list[str]]] = [(_model(model, "get"), [
        dcm_uid.ExplicitVRLittleEndian, dcm_uid.ImplicitVRLittleEndian])]
    for sop_class in IMAGE_CLASSES:
        contexts += [(sop_class, [syntax]) for syntax in IMAGE_SYNTAXES]
    contexts += [(sop_class, list(OTHER_SYNTAXES)) for sop_class in OTHER_CLASSES]
    if len(contexts) > MAX_CONTEXTS:
        raise AssertionError(f"{len(contexts)} presentation contexts; at most {MAX_CONTEXTS}")
    return contexts


class _Receiver:
    """The C-STORE SCP side of a C-GET association: ingest each received data set."""

    def __init__(self, archive: Archive, peer: Peer, result: RetrieveResult,
                 on_stored: Callable[[IngestResult], None] | None) -> None:
        self.archive = archive
        self.peer = peer
        self.result = result
        self.on_stored = on_stored

    def on_store(self, event: Any) -> Dataset:
        """C-STORE sub-operation (PS3.4 B.2): answer only once the instance is durable."""
        req = event.request
        spool_file = getattr(req, "_dataset_file", None)
        try:
            spooled = spool_file.spooled() if isinstance(spool_file, SpoolFile) else None
            expect = dict(sending_aet=self.peer.aet,
                          expect_sop_class=str(req.AffectedSOPClassUID),
                          expect_sop_instance=str(req.AffectedSOPInstanceUID))
            if spooled is not None:
                outcome = self.archive.ingest_spooled(spooled, **expect)
            else:
                outcome = self.archive.ingest(event.dataset_path, **expect)
        except Exception as exc:  # never let a bug take the association down silently
            log.exception("C-STORE sub-operation from %s: unexpected failure", self.peer.aet)
            self.result.received[Outcome.REJECTED.value] += 1
            self.result.rejected.append((str(req.AffectedSOPInstanceUID),
                                         f"internal error: {exc}"))
            return statuses.with_comment(statuses.PROCESSING_FAILURE,
                                         f"internal error: {type(exc).__name__}")
        finally:
            # The association's own C-STORE SCP (used for C-GET) leaves the spool file;
            # the archive has linked it into place by now.
            _discard(spool_file)
        self.result.received[outcome.outcome.value] += 1
        if not outcome.ok:
            self.result.rejected.append((str(req.AffectedSOPInstanceUID),
                                         f"{outcome.reason}: {outcome.detail}"))
        if self.on_stored is not None:
            self.on_stored(outcome)
        status = statuses.store_status(outcome)
        if status != statuses.SUCCESS:
            return statuses.with_comment(status, outcome.detail)
        rsp = Dataset()
        rsp.Status = status
        return rsp


def _discard(spool_file: Any) -> None:
    if spool_file is None:
        return
    with contextlib.suppress(OSError):
        spool_file.close()
    name = getattr(spool_file, "name", None)
    if name:
        with contextlib.suppress(OSError):
            os.unlink(name)


def get(peer: Peer, identifier: Dataset, archive: Archive, *, model: str = "study",
        calling_aet: str | None = None, timeout: float = 60.0,
        on_progress: Callable[[SubOperations], None] | None = None,
        on_stored: Callable[[IngestResult], None] | None = None) -> RetrieveResult:
    """C-GET ``identifier`` from ``peer`` (PS3.4 C.4.3) into ``archive``: the instances
    come back as C-STORE sub-operations on the same association, pacsnode taking the
    Storage SCP role for every storage SOP class it proposes (SCP/SCU Role Selection,
    PS3.7 D.3.3.4). Each instance is ingested before its C-STORE response is sent."""
    settings = archive.settings
    calling_aet = calling_aet or settings.aet
    _config.STORE_RECV_CHUNKED_DATASET = True  # bounded memory: spool to disk as it comes
    spool.install(archive.store.temp_dir, calling_aet, archive.ingestor.start_spooled)
    ae = scu._ae(calling_aet, timeout)
    transport_tuning.install(settings.max_pdu_size)
    contexts = get_contexts(model)
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    roles = [build_role(sop_class, scp_role=True)
             for sop_class in dict.fromkeys(c for c, _ in contexts[1:])]
    result = RetrieveResult()
    receiver = _Receiver(archive, peer, result, on_stored)
    assoc = _associate(ae, peer, ext_neg=roles, max_pdu=settings.max_pdu_size,
                       evt_handlers=[(evt.EVT_C_STORE, receiver.on_store)])
    try:
        return _retrieve_loop(assoc.send_c_get(identifier, _model(model, "get"),
                                               priority=MEDIUM),
                              on_progress, result)
    finally:
        _release(assoc)
        # A connection lost mid-transfer leaves the half-received data set's spool file.
        message = getattr(getattr(assoc, "dimse", None), "message", None)
        _discard(getattr(message, "_data_set_file", None))


def retrieve_identifier(study_uid: str, series_uid: str | None = None, *,
                        patient_id: str | None = None) -> Dataset:
    """The Identifier of a C-MOVE or C-GET of one study or one series (PS3.4 C.4.2.2.1,
    C.6.2.1.2: the unique keys of the level and of the levels above). ``patient_id`` is the
    Patient ID the Patient Root model needs."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    return ds
