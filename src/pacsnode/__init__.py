"""pacsnode: a DICOM archive (PACS) you can script in Python.

>>> from pacsnode import Archive
>>> archive = Archive.open("pacsnode-data")          # doctest: +SKIP
>>> result = archive.ingest("image.dcm")             # doctest: +SKIP
"""

__version__ = "0.1.0"

from pacsnode.core.archive import Archive
from pacsnode.core.results import IngestResult, Outcome, RejectReason

__all__ = ["Archive", "IngestResult", "Outcome", "RejectReason", "__version__"]
