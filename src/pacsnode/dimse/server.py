"""The DICOM listener: one pynetdicom application entity serving Verification and every
storage SOP class pynetdicom or pydicom knows, in every transfer syntax pydicom knows, with timeouts
so that idle or half-open connections never hold up anyone else (PS3.8 9.1.4 ARTIM)."""

from __future__ import annotations

import logging

from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, _config
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationServer

from pacsnode.config import Settings
from pacsnode.core.archive import Archive
from pacsnode.dimse import negotiation, services, spool, transport_tuning

log = logging.getLogger(__name__)

# pynetdicom logs every PDU at INFO/DEBUG; that belongs to debugging, not to a PACS log.
_config.LOG_HANDLER_LEVEL = "none"
# Spool received data sets to disk instead of memory (bounded memory for any size).
_config.STORE_RECV_CHUNKED_DATASET = True


# Standard transfer syntaxes pydicom 3.0 does not list, whose data sets are encoded in
# explicit VR little endian (so the header parser reads them as it is): Encapsulated
# Uncompressed, JPIP Referenced, JPEG XL (three), Deflated Image Frame Compression.
EXTRA_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1.98",
    "1.2.840.10008.1.2.4.94",
    "1.2.840.10008.1.2.4.110",
    "1.2.840.10008.1.2.4.111",
    "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.8.1",
)


MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR: media only (PS3.10), not sent
# "Storage" in their name, but not storage SOP classes: Storage Commitment Push and Pull
# (retired) Model, served with N-ACTION/N-EVENT-REPORT (PS3.4 J), never with C-STORE.
NOT_STORAGE = frozenset({MEDIA_STORAGE_DIRECTORY, "1.2.840.10008.1.20.1",
                         "1.2.840.10008.1.20.2"})


def _extra_storage_classes() -> dict[str, str]:
    """Storage SOP classes in pydicom's UID dictionary that pynetdicom does not list
    (retired ones such as US Image Storage (Retired), which old archives still hold, and
    newer ones), by UID, with their keyword."""
    from pydicom._uid_dict import UID_dictionary

    known = {str(cx.abstract_syntax) for cx in AllStoragePresentationContexts}
    return {uid: entry[4] for uid, entry in UID_dictionary.items()
            if entry[1] == "SOP Class" and "Storage" in entry[0] and uid not in known
            and uid not in NOT_STORAGE and entry[4].isidentifier()}


def storage_sop_classes() -> list[str]:
    """Every storage SOP class pacsnode accepts: pynetdicom's and the extra ones."""
    known = {str(cx.abstract_syntax) for cx in AllStoragePresentationContexts}
    return sorted(known | set(_extra_storage_classes()))


def _register_extra_storage_classes() -> None:
    """Tell pynetdicom the extra classes are served by its Storage service class
    (otherwise it aborts the association on a C-STORE of one)."""
    from pynetdicom.sop_class import register_uid, uid_to_service_class

    for uid, keyword in _extra_storage_classes().items():
        if uid_to_service_class(uid) is not StorageServiceClass:
            register_uid(uid, keyword, StorageServiceClass)


def build_ae(settings: Settings, ae_class: type[AE] = AE) -> AE:
    """The application entity with pacsnode's contexts, limits and timeouts."""
    transport_tuning.install(settings.max_pdu_size)
    negotiation.install()
    _register_extra_storage_classes()
    ae = ae_class(ae_title=settings.aet)
    ae.maximum_associations = settings.max_associations
    ae.maximum_pdu_size = settings.max_pdu_size
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    ae.require_called_aet = settings.require_called_aet
    syntaxes = [*AllTransferSyntaxes, *EXTRA_TRANSFER_SYNTAXES]
    ae.add_supported_context(Verification, syntaxes)
    for sop_class in storage_sop_classes():
        # Both roles: a C-GET requestor proposes to be the storage SCP on its association
        # (SCP/SCU Role Selection, PS3.7 D.3.3.4), and pacsnode then sends as SCU.
        ae.add_supported_context(sop_class, syntaxes, scu_role=True, scp_role=True)
    for sop_class in services.QUERY_RETRIEVE_SOP_CLASSES:
        ae.add_supported_context(sop_class, syntaxes)
    for sop_class in services.WORKLIST_SOP_CLASSES:  # Modality Worklist FIND (PS3.4 K)
        ae.add_supported_context(sop_class, syntaxes)
    for sop_class in services.MPPS_SOP_CLASSES:  # MPPS N-CREATE/N-SET (PS3.4 F.7)
        ae.add_supported_context(sop_class, syntaxes)
    # Storage Commitment Push Model (PS3.4 J): a requestor proposing role selection may be
    # the SCU, never the SCP (pacsnode is the SCP; PS3.7 D.3.3.4).
    ae.add_supported_context(services.STORAGE_COMMITMENT_SOP_CLASS, syntaxes, scu_role=True,
                             scp_role=False)
    return ae


def start(settings: Settings, archive: Archive) -> AssociationServer:
    """Start listening (non-blocking); returns the server to ``shutdown()`` later."""
    spool.install(archive.store.temp_dir, settings.aet, archive.ingestor.start_spooled)
    services.install_access_policy(archive, settings)
    ae = build_ae(settings)
    handlers = services.handlers(archive, settings)
    server = ae.start_server((settings.dicom_host, settings.dicom_port), block=False,
                             evt_handlers=handlers)
    assert server is not None  # block=False always returns the server
    host, port = server.server_address[:2]
    log.info("DICOM listener %s on %s:%s (%d storage SOP classes)", settings.aet, host, port,
             len(storage_sop_classes()))
    return server
