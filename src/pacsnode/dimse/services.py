"""The DIMSE services pacsnode offers, and the handlers that serve them: the one place that
says which service modules make up the DICOM listener."""

from __future__ import annotations

from typing import Any

from pacsnode.config import Peer, Settings
from pacsnode.core import peers
from pacsnode.core.archive import Archive
from pacsnode.dimse import access, mpps_scp, mwl_scp, qr_models
from pacsnode.dimse.commitment_scp import NActionService, StorageCommitmentService
from pacsnode.dimse.find_scp import FindService
from pacsnode.dimse.retrieve_scp import RetrieveService
from pacsnode.dimse.storage_scp import StorageService

# Query/Retrieve SOP classes (PS3.4 C.6.1, C.6.2): FIND, MOVE and GET of both models.
QUERY_RETRIEVE_SOP_CLASSES = qr_models.QUERY_RETRIEVE_SOP_CLASSES
# Modality Worklist Information Model – FIND (PS3.4 K.6.1).
WORKLIST_SOP_CLASSES = mwl_scp.WORKLIST_SOP_CLASSES
# Modality Performed Procedure Step SOP Class – N-CREATE, N-SET (PS3.4 F.7).
MPPS_SOP_CLASSES = mpps_scp.MPPS_SOP_CLASSES

# Storage Commitment Push Model SOP Class – N-ACTION, N-EVENT-REPORT (PS3.4 J.3).
STORAGE_COMMITMENT_SOP_CLASS = "1.2.840.10008.1.20.1"


def install_access_policy(archive: Archive, settings: Settings) -> None:
    """Restrict Query/Retrieve associations to declared peers if configured (PS3.8 9.3.4)."""
    lookup = None
    if settings.restrict_qr_to_peers:
        def lookup(aet: str) -> Peer | None:
            return peers.by_aet(settings, aet, archive.engine)
    access.install(lookup, check_host=settings.check_peer_host)


def handlers(archive: Archive, settings: Settings) -> list[Any]:
    """Every (event, handler) pair the listener binds."""
    return [
        *StorageService(archive).handlers(),
        # C-FIND: Modality Worklist (PS3.4 K.4.1) served there, Query/Retrieve (C.4.1) passed on
        *mwl_scp.WorklistService(archive, settings.aet).handlers(
            FindService(archive, settings.aet)),
        *RetrieveService(archive, settings).handlers(),  # C-MOVE, C-GET (PS3.4 C.4.2, C.4.3)
        # N-ACTION, by SOP class: Storage Commitment Push Model (PS3.4 J.3.2)
        *NActionService().register(STORAGE_COMMITMENT_SOP_CLASS, StorageCommitmentService(
            archive, settings).on_n_action).handlers(),
        *mpps_scp.PerformedProcedureStepService(archive).handlers(),  # MPPS (PS3.4 F.7)
    ]
