"""pacsnode: a DICOM archive (PACS) you can script in Python.

>>> from pacsnode import Archive
>>> archive = Archive.open("pacsnode-data")          # doctest: +SKIP
>>> result = archive.ingest("image.dcm")             # doctest: +SKIP

The public names are imported when first used (PEP 562), so that importing a submodule
(``pacsnode.config``, the command line's entry point) does not import pydicom: pacsnode's own
processes decide first which modules they never need (:mod:`pacsnode.process_setup`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pacsnode.core.archive import Archive
    from pacsnode.core.results import IngestResult, Outcome, RejectReason

__all__ = ["Archive", "IngestResult", "Outcome", "RejectReason", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Archive":
        from pacsnode.core.archive import Archive

        return Archive
    if name in ("IngestResult", "Outcome", "RejectReason"):
        from pacsnode.core import results

        return getattr(results, name)
    raise AttributeError(f"module 'pacsnode' has no attribute {name!r}")
