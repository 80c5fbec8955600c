"""What one durable write costs on this machine, whatever writes it: a file of SIZE bytes is
written, fsynced, renamed into place and its directory fsynced (what pacsnode does before
it answers a C-STORE), COUNT times in a row; the median and spread are printed.

    .venv/bin/python bench/durable_write.py --size 526000 --count 300 --dir /tmp

The figure bounds what any archive that promises durable storage can reach over one
association on this disk, pacsnode or Orthanc (``SyncStorageArea``, on by default).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(size: int, count: int, where: str) -> tuple[list[float], list[float]]:
    """Milliseconds per write: (write only, write + fsync + rename + directory fsync)."""
    root = tempfile.mkdtemp(dir=where)
    data = os.urandom(size)
    plain, durable = [], []
    try:
        for i in range(count):
            temp = os.path.join(root, f".{i}.part")
            start = time.perf_counter()
            with open(temp, "wb") as fh:
                fh.write(data)
            written = time.perf_counter()
            _fsync(temp)
            os.rename(temp, os.path.join(root, f"{i}.dcm"))
            _fsync(root)
            done = time.perf_counter()
            plain.append((written - start) * 1000)
            durable.append((done - start) * 1000)
    finally:
        shutil.rmtree(root)
    return plain, durable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=526_000, help="bytes per file")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where to write (the disk pacsnode's data directory is on)")
    args = parser.parse_args()
    plain, durable = measure(args.size, args.count, args.dir)
    ranked = sorted(durable)
    print(f"{args.size} bytes x {args.count} in {args.dir}: write {statistics.median(plain):.2f}"
          f" ms; durable write {statistics.median(durable):.2f} ms (median; p10 "
          f"{ranked[len(ranked) // 10]:.2f}, p90 {ranked[9 * len(ranked) // 10]:.2f})")


if __name__ == "__main__":
    main()
