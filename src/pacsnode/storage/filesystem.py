"""Blobs as files under a root directory.

Durability (what a C-STORE success promises): the temporary file is fsynced, renamed to its
final name, and the directory holding it is fsynced, so that both the bytes and the name
survive a power cut. Directories created on the way are fsynced into their parents too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from pacsnode.storage.base import StorageError

BLOB_SUFFIX = ".dcm"
TEMP_DIR_NAME = "tmp"


_FSYNC_THREADS = 8
_fsync_pool: ThreadPoolExecutor | None = None
_fsync_pool_lock = threading.Lock()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pool() -> ThreadPoolExecutor:
    global _fsync_pool
    with _fsync_pool_lock:
        if _fsync_pool is None:
            _fsync_pool = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="pacsnode-fsync")
        return _fsync_pool


def _done() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


class Placed:
    """The outcome of :meth:`FileSystemStore.place_many`: which names were created, and the
    fsyncs of their directories, still running (they overlap with the caller's index
    work). :meth:`wait` before relying on the names, i.e. before the index commit."""

    def __init__(self, created: list[bool], dir_syncs: list[Future[None]],
                 keys: list[str]) -> None:
        self.created = created
        self._dir_syncs = dir_syncs
        self._keys = keys

    def wait(self) -> None:
        """Block until every new name is durable; :class:`StorageError` if one is not."""
        for future in self._dir_syncs:
            try:
                future.result()
            except OSError as exc:
                raise StorageError(exc.errno, f"cannot store blob(s) "
                                   f"{', '.join(self._keys[:3])}: {exc.strerror}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir_if_there(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # emptied and removed by a later delete
        _fsync_dir(path)


class FileSystemStore:
    """A :class:`~pacsnode.storage.base.BlobStore` on a local (or mounted) filesystem."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self.temp_dir = root / TEMP_DIR_NAME
        self._make_dirs(self.temp_dir)

    def path_of(self, key: str) -> Path:
        """The file holding ``key``; keys never escape the root."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid blob key {key!r}")
        return self.root / key

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents, fsyncing each new entry's parent."""
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            if self.fsync:
                _fsync_dir(path.parent)

    def new_temp(self) -> tuple[BinaryIO, Path]:
        fd, name = tempfile.mkstemp(suffix=".part", dir=self.temp_dir)
        return os.fdopen(fd, "wb"), Path(name)

    def start_sync(self, temp: Path) -> Future[None]:
        """Start making a finished temporary file's bytes durable (fsync) in the background,
        so that it overlaps with the caller's work; :meth:`place_many` waits for it."""
        return _pool().submit(_fsync_path, temp) if self.fsync else _done()

    def place(self, temp: Path, key: str) -> bool:
        """Make ``temp`` durable and give it the name ``key`` (a hard link, so ``temp`` stays
        until discarded). Returns False when ``key`` already exists: keys embed the content
        digest, so an existing file holds the same bytes and is left untouched."""
        placed = self.place_many([(temp, key)])
        placed.wait()
        return placed.created[0]

    def place_many(self, items: Sequence[tuple[Path, str]], *,
                   syncs: Sequence[Future[None]] | None = None) -> Placed:
        """:meth:`place` for several files: each is fsynced (concurrently, so the
        filesystem can commit them together; ``syncs``: the fsyncs already started with
        :meth:`start_sync`, one per item), linked to its key, then the fsync of each
        directory that got a new name is started — :meth:`Placed.wait` waits for those.
        On an error here the names given are removed again and :class:`StorageError` is
        raised."""
        targets = [(temp, self.path_of(key), key) for temp, key in items]
        linked: list[Path] = []
        try:
            if syncs is None:
                syncs = [self.start_sync(temp) for temp, _, _ in targets]
            for future in syncs:
                future.result()
            created: list[bool] = []
            directories: dict[Path, None] = {}
            for temp, target, _key in targets:
                self._make_dirs(target.parent)
                try:
                    os.link(temp, target)
                except FileExistsError:
                    created.append(False)
                    continue
                linked.append(target)
                created.append(True)
                directories.setdefault(target.parent)
            dir_syncs = ([_pool().submit(_fsync_dir, d) for d in directories] if self.fsync
                         else [])
            return Placed(created, dir_syncs, [key for _, _, key in targets])
        except OSError as exc:
            for target in linked:
                with contextlib.suppress(OSError):
                    target.unlink()
            keys = ", ".join(key for _, _, key in targets[:3])
            raise StorageError(exc.errno, f"cannot store blob(s) {keys}: {exc.strerror}"
                               ) from exc

    def discard_temp(self, temp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    def open(self, key: str) -> BinaryIO:
        return self.path_of(key).open("rb")

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def delete(self, key: str) -> None:
        self._unlink(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove the blobs ``keys``, then flush each directory that lost an entry, so that
        a power cut does not bring them back."""
        changed = dict.fromkeys(self._unlink(key) for key in keys)
        if self.fsync:
            for future in [_pool().submit(_fsync_dir_if_there, d) for d in changed]:
                future.result()

    def _unlink(self, key: str) -> Path:
        """Remove ``key``'s file and the directories it leaves empty (so deleted studies
        leave no litter); the directory that holds the last entry removed."""
        path = self.path_of(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parent = path.parent
        while parent != self.root and parent != self.temp_dir:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return parent

    def keys(self) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and TEMP_DIR_NAME in dirnames:
                dirnames.remove(TEMP_DIR_NAME)
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.endswith(BLOB_SUFFIX):
                    yield (rel / name).as_posix()

    def keys_placed_since(self, since: float) -> Iterator[tuple[float, str]]:
        """(change time, key) of the files linked into place at or after ``since`` (epoch
        seconds), as far as the file system tells: the study directories modified since
        then are listed, the others only looked at (one ``stat`` each)."""
        for top in _subdirs(self.root):
            if top.name == TEMP_DIR_NAME:
                continue
            for mid in _subdirs(Path(top.path)):
                for study_dir in _subdirs(Path(mid.path)):
                    if study_dir.stat().st_mtime < since:
                        continue
                    rel = f"{top.name}/{mid.name}/{study_dir.name}"
                    with os.scandir(study_dir.path) as entries:
                        for entry in entries:
                            if not entry.name.endswith(BLOB_SUFFIX):
                                continue
                            with contextlib.suppress(FileNotFoundError):
                                changed = entry.stat(follow_symlinks=False).st_ctime
                                if changed >= since:
                                    yield changed, f"{rel}/{entry.name}"

    def stale_temps(self, older_than_s: float) -> Iterator[Path]:
        cutoff = time.time() - older_than_s
        for entry in os.scandir(self.temp_dir):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                yield Path(entry.path)


def _subdirs(path: Path) -> list[os.DirEntry[str]]:
    """The subdirectories of ``path`` (none if it is gone)."""
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
