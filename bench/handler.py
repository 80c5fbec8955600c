"""The C-STORE handler's own cost, measured in-process: no network, no pynetdicom.

Each file of a corpus directory (made by ``ingest.py``: ``$WORKDIR/corpus/...``) is
spooled into pacsnode's file layout in the store's temporary directory, as the C-STORE
receiver does (hash included), right before ``Archive.ingest_spooled`` is called on it, one
file after the other, as one association does: the file's pages are as freshly written as
a received one's when its fsync starts. Only the ``ingest_spooled`` calls are timed.
Reported: ms per instance (wall, and CPU of the whole process over the same calls).
``--profile FILE`` writes a cProfile of those calls.

    .venv/bin/python bench/handler.py /tmp/pacsnode-bench/corpus/tiny-n5000-seed0 \
        --limit 1000 --repeat 3

A fresh data directory is used per repeat; ``--db`` takes a PostgreSQL URL instead of the
embedded SQLite (the database must exist and be empty).
"""

from __future__ import annotations

import argparse
import cProfile
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pacsnode.config import Settings
from pacsnode.core import index_flush
from pacsnode.core.archive import Archive
from pacsnode.core.ingest import Spooled
from pacsnode.core.results import Outcome
from pacsnode.core.spool_file import Part10Spool


def spool(archive: Archive, path: Path) -> Spooled:
    """``path`` written into pacsnode's layout in the store's temporary directory."""
    part = Part10Spool(archive.store.temp_dir, source_aet="PACSNODE", sending_aet="STORESCU")
    part.write(path.read_bytes())
    part.close()
    item = part.spooled()
    if item is None:
        raise SystemExit(f"{path}: not a Part-10 file pacsnode can spool")
    return item


def run_once(files: list[Path], db: str | None, profile: str | None,
             index_sync: str) -> tuple[float, float]:
    """(wall ms, CPU ms) per instance of one ingest of ``files`` into a new archive."""
    data_dir = Path(tempfile.mkdtemp(prefix="pacsnode-handler-"))
    try:
        settings = Settings(data_dir=data_dir, db=db, index_sync=index_sync)
        archive = Archive(settings)
        flusher = index_flush.IndexFlusher(archive, owner=True)
        flusher.start()  # as ``pacsnode serve`` does
        prof = cProfile.Profile() if profile else None
        wall = cpu = 0.0
        try:
            for path in files:
                item = spool(archive, path)
                w0, c0 = time.perf_counter(), time.process_time()
                if prof:
                    prof.enable()
                result = archive.ingest_spooled(item, sending_aet="STORESCU")
                if prof:
                    prof.disable()
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                item.path.unlink(missing_ok=True)
                if result.outcome is not Outcome.STORED:
                    raise SystemExit(f"not stored: {result}")
            if prof and profile:
                prof.dump_stats(profile)
        finally:
            flusher.stop()
            archive.close()
        return wall * 1000 / len(files), cpu * 1000 / len(files)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path, help="a directory of DICOM files")
    parser.add_argument("--limit", type=int, default=1000, help="files to ingest")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="index URL (default: SQLite in the data directory)")
    parser.add_argument("--profile", help="write a cProfile of the last run here")
    parser.add_argument("--index-sync", choices=("periodic", "commit"), default="periodic",
                        help="as pacsnode serve's option (default: periodic)")
    args = parser.parse_args()
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file()
                   and not p.name.endswith(".json"))[:args.limit]
    if not files:
        raise SystemExit(f"no files under {args.corpus}")
    walls, cpus = [], []
    for i in range(args.repeat):
        wall, cpu = run_once(files, args.db,
                             args.profile if i == args.repeat - 1 else None,
                             args.index_sync)
        walls.append(wall)
        cpus.append(cpu)
        print(f"run {i + 1}: {wall:.3f} ms wall, {cpu:.3f} ms CPU per instance "
              f"({len(files)} files)", file=sys.stderr)
    print(f"median: {statistics.median(walls):.3f} ms wall, "
          f"{statistics.median(cpus):.3f} ms CPU per instance")


if __name__ == "__main__":
    main()
