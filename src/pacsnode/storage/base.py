"""The small interface every blob store implements.

A blob is one stored DICOM file (pacsnode's file meta information followed by the data set
exactly as received). Keys are relative, '/'-separated names chosen by the core.
Writing is two-phase so that the index is committed only after the bytes are durable:
``new_temp()`` gives a writable temporary file inside the store, ``place()`` makes it
durable and gives it its key atomically, ``discard_temp()`` removes the temporary name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class StorageError(OSError):
    """The store could not complete an operation (disk full, permissions, I/O error)."""


class BlobStore(Protocol):
    """What the archive core needs from a blob store."""

    def new_temp(self) -> tuple[BinaryIO, Path]:
        """Open a new temporary file for writing, on the same volume as the blobs."""

    def place(self, temp: Path, key: str) -> bool:
        """Make ``temp`` durable and atomically give it the name ``key``; False if ``key``
        already exists (keys embed the content digest: the same bytes are there)."""

    def start_sync(self, temp: Path) -> Future[None]:
        """Start making a finished temporary file durable in the background."""

    def place_many(self, items: Sequence[tuple[Path, str]], *,
                   syncs: Sequence[Future[None]] | None = None) -> Any:
        """:meth:`place` for several (temp, key) pairs at once, all or nothing; returns
        which keys were created, and a ``wait()`` to call before the index commit."""

    def discard_temp(self, temp: Path) -> None:
        """Remove a temporary file that will not be committed."""

    def open(self, key: str) -> BinaryIO:
        """Open a stored blob for reading."""

    def size(self, key: str) -> int:
        """The size in bytes of a stored blob."""

    def exists(self, key: str) -> bool:
        """Whether a blob is stored at ``key``."""

    def delete(self, key: str) -> None:
        """Remove a blob no index row refers to (a power cut may bring it back, and
        ``check`` then finds it); removing a missing blob is not an error."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove blobs for good: once it returns, a power cut does not bring them back."""

    def keys(self) -> Iterator[str]:
        """Every stored blob's key (temporary files excluded)."""

    def stale_temps(self, older_than_s: float) -> Iterator[Path]:
        """Temporary files left behind (by a crash) for longer than ``older_than_s``."""
