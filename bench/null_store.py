"""``pacsnode serve`` whose C-STORE handler only answers Success: the ceiling that pynetdicom
(with pacsnode's transport tuning, spooling and receiving processes) sets on ingest here.

Everything up to the handler runs as in pacsnode: the association, the PDUs, the data set
spooled to a file in the store's temporary directory. The handler then neither parses,
stores nor indexes anything; it appends one byte to ``<data dir>/null-store-count`` (so the
benchmark can check every instance arrived) and answers 0x0000. pynetdicom removes the
spool file afterwards.

Used by ``bench/ingest.py --targets pacsnode-null``; run by hand as ``python
bench/null_store.py serve --data-dir D ...`` (same options as ``pacsnode serve``). Its
receiving processes are this script too (``null_store.py worker ...``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pacsnode.process_setup import skip_unused_modules

skip_unused_modules()  # as pacsnode's own entry points do, before pydicom is imported

from pydicom.dataset import Dataset  # noqa: E402

from pacsnode.dimse import storage_scp, workers  # noqa: E402

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


storage_scp.StorageService.on_store = on_store  # type: ignore[method-assign]
workers.WORKER_COMMAND = [sys.executable, os.path.abspath(__file__), "worker"]

if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        from pacsnode.dimse import worker_process

        worker_process.main(sys.argv[2:])
    else:
        from pacsnode.cli.main import main

        sys.exit(main())
