"""The DIMSE services pacsnode offers, and the handlers that serve them: the one place that
says which service modules make up the DICOM listener."""

from __future__ import annotations

from typing import Any

from pacsnode.config import Peer, Settings
from pacsnode.core import peers
from pacsnode.core.archive import Archive
from pacsnode.dimse import access, qr_models
from pacsnode.dimse.find_scp import FindService
from pacsnode.dimse.retrieve_scp import RetrieveService
from pacsnode.dimse.storage_scp import StorageService

# Query/Retrieve SOP classes (PS3.4 C.6.1, C.6.2): FIND, MOVE and GET of both models.
QUERY_RETRIEVE_SOP_CLASSES = qr_models.QUERY_RETRIEVE_SOP_CLASSES


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
        *FindService(archive, settings.aet).handlers(),
        *RetrieveService(archive, settings).handlers(),  # C-MOVE, C-GET (PS3.4 C.4.2, C.4.3)
    ]
