"""The DIMSE services pacsnode offers, and the handlers that serve them: the one place that
says which service modules make up the DICOM listener."""

from __future__ import annotations

from typing import Any

from pacsnode.config import Settings
from pacsnode.core.archive import Archive
from pacsnode.dimse.find_scp import FindService
from pacsnode.dimse.storage_scp import StorageService

# Query/Retrieve SOP classes (PS3.4 C.6.1, C.6.2): FIND, MOVE and GET of both models.
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
QUERY_RETRIEVE_SOP_CLASSES = (PATIENT_ROOT_FIND, STUDY_ROOT_FIND, PATIENT_ROOT_MOVE,
                              STUDY_ROOT_MOVE, PATIENT_ROOT_GET, STUDY_ROOT_GET)


def handlers(archive: Archive, settings: Settings) -> list[Any]:
    """Every (event, handler) pair the listener binds."""
    return [
        *StorageService(archive).handlers(),
        *FindService(archive, settings.aet).handlers(),
    ]
