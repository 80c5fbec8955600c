"""Expanding the paths given on the command line into files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and every file below each folder (sorted, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        yield Path(dirpath) / name
        else:
            yield path
