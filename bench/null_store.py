"""``pacsnode serve`` whose C-STORE handler only answers Success: the ceiling that pynetdicom
(with pacsnode's transport tuning, spooling and receiving processes) sets on ingest here.

Everything up to the handler runs as in pacsnode: the association, the PDUs, the data set
spooled to a file in the store's temporary directory. The handler then neither parses,
stores nor indexes anything; it appends one byte to ``<data dir>/null-store-count`` (so the
benchmark can check every instance arrived) and answers 0x0000. pynetdicom removes the
spool file afterwards.

Used by ``bench/ingest.py --targets pacsnode-null``; run by hand as ``python
bench/null_store.py serve --data-dir D ...`` (same options as ``pacsnode serve``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pydicom.dataset import Dataset

from pacsnode.dimse import storage_scp

COUNT_FILE = "null-store-count"
_count_fd: int | None = None


def _count(data_dir: str) -> None:
    global _count_fd
    if _count_fd is None:
        _count_fd = os.open(os.path.join(data_dir, COUNT_FILE),
                            os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_count_fd, b".")  # O_APPEND: one byte per instance, whatever the process


def on_store(self: storage_scp.StorageService, event: Any) -> Dataset:
    """Answer Success without looking at the data set."""
    _count(str(self.archive.settings.data_dir))
    rsp = Dataset()
    rsp.Status = 0x0000
    return rsp


# Module level, so that spawned receiving processes (which import the parent's main module
# as __mp_main__) get the same handler.
storage_scp.StorageService.on_store = on_store  # type: ignore[method-assign]

if __name__ == "__main__":
    from pacsnode.cli.main import main

    sys.exit(main())
