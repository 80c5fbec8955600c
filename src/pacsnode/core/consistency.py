"""``pacsnode check``: index against files, and the repairs a crash can call for.

Memory stays bounded at any archive size: index rows are streamed, and files found on disk
are looked up in the index in batches.

What a crash can leave, given the ingest order (file durable → index commit → old file
deleted) and the delete order (index rows removed and the files recorded as pending
deletion → files removed → record dropped), and what ``repair`` does about it:

* a file recorded as pending deletion: a delete was interrupted. It is removed (``serve``
  does this as it starts, too).
* an *orphan file* whose SOP Instance UID is not indexed: a complete instance whose index
  commit was lost (power cut). It is adopted (indexed).
* an orphan whose SOP Instance UID is indexed under another file: superseded by a replace
  or never committed. It is removed.
* stale temporary files: removed.

A serving node on SQLite flushes its ingest commits about once a second
(:mod:`pacsnode.core.index_flush`); after a power cut, :func:`recover_placed_since` indexes
the files placed since the last flush, whose commits may be lost, at the next start.

Problems a crash cannot cause are reported; ``repair`` drops the index row of an instance
whose file is gone (it can never be retrieved) and leaves size/hash mismatches alone
for a human to look at.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
import sqlalchemy as sa

from pacsnode.index import pending_deletes, writer
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import instance, series, study

if TYPE_CHECKING:
    from pacsnode.core.archive import Archive
    from pacsnode.core.results import IngestResult

log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 3600.0
BATCH = 500


@dataclass(frozen=True)
class Problem:
    """One inconsistency found, and what repair did about it ('' when not repaired)."""

    kind: str
    key: str
    sop_instance_uid: str = ""
    detail: str = ""
    action: str = ""


@dataclass
class CheckReport:
    """The result of :meth:`pacsnode.Archive.check`."""

    instances: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is left that needs attention."""
        return all(p.action for p in self.problems)


def _rows(archive: Archive) -> Iterator[dict[str, Any]]:
    query = (sa.select(instance.c.pk, instance.c.sop_instance_uid, instance.c.storage_key,
                       instance.c.file_size, instance.c.data_offset, instance.c.digest,
                       instance.c.series_fk, series.c.study_fk, study.c.patient_fk)
             .join(series, series.c.pk == instance.c.series_fk)
             .join(study, study.c.pk == series.c.study_fk)
             .order_by(instance.c.pk))
    last = 0
    while True:  # keyset pagination: bounded memory, no long-lived cursor
        with read_transaction(archive.engine) as conn:
            page = [dict(r) for r in conn.execute(
                query.where(instance.c.pk > last).limit(BATCH)).mappings()]
        if not page:
            return
        yield from page
        last = page[-1]["pk"]


def _digest(archive: Archive, key: str, offset: int) -> str:
    h = hashlib.sha256()
    with archive.store.open(key) as fh:
        fh.seek(offset)
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _check_rows(archive: Archive, report: CheckReport, repair: bool, verify: bool,
                tick: Callable[[], None]) -> None:
    gone: list[dict[str, Any]] = []
    for row in _rows(archive):
        report.instances += 1
        tick()
        key, uid = row["storage_key"], row["sop_instance_uid"]
        try:
            size = archive.store.size(key)
        except FileNotFoundError:
            gone.append(row)
            report.problems.append(Problem("missing file", key, uid,
                                           action="index row dropped" if repair else ""))
            continue
        if size != row["file_size"]:
            report.problems.append(Problem("size mismatch", key, uid,
                                           f"index says {row['file_size']}, file has {size}"))
        elif verify and _digest(archive, key, row["data_offset"]) != row["digest"]:
            report.problems.append(Problem("hash mismatch", key, uid))
    if repair and gone:
        with write_transaction(archive.engine) as conn:
            writer.remove_instances(conn, gone)


def _indexed_keys(archive: Archive, keys: list[str]) -> set[str]:
    with read_transaction(archive.engine) as conn:
        return set(conn.execute(sa.select(instance.c.storage_key)
                                .where(instance.c.storage_key.in_(keys))).scalars())


def _is_indexed_uid(archive: Archive, uid: str) -> bool:
    with read_transaction(archive.engine) as conn:
        return writer.find_instance(conn, uid) is not None


def _file_ids(path: Path) -> tuple[str, str]:
    """The SOP Instance UID and sending AE title in a stored file's meta information."""
    meta = pydicom.filereader.read_file_meta_info(path)
    return (str(meta.MediaStorageSOPInstanceUID),
            str(meta.get("SendingApplicationEntityTitle", "") or ""))


def _adopt(archive: Archive, key: str, uid: str, sending: str) -> IngestResult:
    """Ingest the unindexed file ``key`` as if received again; the copy is removed if what
    ends up indexed is another file (the same data set under its own key, or, by the
    duplicate policy, the instance already indexed)."""
    result = archive.ingest(archive.store.path_of(key), sending_aet=sending)
    if result.ok:
        with read_transaction(archive.engine) as conn:
            row = writer.find_instance(conn, uid)
        if row is not None and row["storage_key"] != key:
            archive.store.delete(key)
    return result


def _handle_orphan(archive: Archive, key: str, repair: bool) -> Problem:
    path = archive.store.path_of(key)
    try:
        uid, sending = _file_ids(path)
    except Exception as exc:
        action = ""
        if repair:
            quarantine = archive.settings.data_dir / "quarantine"
            quarantine.mkdir(exist_ok=True)
            shutil.move(path, quarantine / path.name)
            action = f"moved to {quarantine}"
        return Problem("unreadable orphan file", key, detail=str(exc), action=action)
    if _is_indexed_uid(archive, uid):
        if repair:
            archive.store.delete(key)
        return Problem("orphan file", key, uid, "superseded: the index has another file",
                       action="removed" if repair else "")
    if not repair:
        return Problem("orphan file", key, uid, "complete instance not in the index")
    result = _adopt(archive, key, uid, sending)
    return Problem("orphan file", key, uid, "complete instance not in the index",
                   action=f"adopted ({result.outcome.value})" if result.ok
                   else f"rejected: {result.detail}")


def _check_pending_deletes(archive: Archive, report: CheckReport, repair: bool) -> set[str]:
    """Report (and with ``repair`` remove) the files of interrupted deletes; the keys of
    those still there."""
    left = {key for key in pending_deletes.unindexed(archive.engine, archive.pending_deletes())
            if archive.store.exists(key)}
    if repair:
        archive.finish_deletes()
    for key in sorted(left):
        report.problems.append(Problem("interrupted delete", key,
                                       detail="the instance was deleted; its file was not",
                                       action="removed" if repair else ""))
    return set() if repair else left


def _check_files(archive: Archive, report: CheckReport, repair: bool,
                 tick: Callable[[], None], pending: set[str]) -> None:
    def flush(batch: list[str]) -> None:
        known = _indexed_keys(archive, batch)
        for key in batch:
            if key not in known and key not in pending:
                report.problems.append(_handle_orphan(archive, key, repair))

    batch: list[str] = []
    for key in archive.store.keys():  # noqa: SIM118 - a store method, not a dict
        report.files += 1
        tick()
        batch.append(key)
        if len(batch) >= BATCH:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    for temp in archive.store.stale_temps(STALE_TEMP_SECONDS):
        if repair:
            archive.store.discard_temp(temp)
        report.problems.append(Problem("stale temporary file", temp.name,
                                       action="removed" if repair else ""))


def check(archive: Archive, *, repair: bool = False, verify_hashes: bool = False,
          progress: Any = None) -> CheckReport:
    """Run both passes (index → files, files → index); ``progress`` (optional) gets
    ``update(1)`` per instance row and per file."""
    report = CheckReport()

    def tick() -> None:
        if progress is not None:
            progress.update(1)

    pending = _check_pending_deletes(archive, report, repair)
    _check_rows(archive, report, repair, verify_hashes, tick)
    _check_files(archive, report, repair, tick, pending)
    for problem in report.problems:
        log.warning("check: %s %s %s %s", problem.kind, problem.key, problem.detail,
                    problem.action)
    return report


def recover_placed_since(archive: Archive, since: float) -> list[Problem]:
    """Index the files placed at or after ``since`` that the index does not know: their
    data sets were acknowledged, but the index commit was not flushed before a power cut
    (:mod:`pacsnode.core.index_flush`). Files are taken in the order they were placed, so
    that of two files of one SOP Instance UID the later one wins, as it did when received
    (under the ``replace`` policy; the others decide as at ingest)."""
    placed = sorted(archive.store.keys_placed_since(since))
    problems: list[Problem] = []
    for start in range(0, len(placed), BATCH):
        batch = placed[start:start + BATCH]
        known = _indexed_keys(archive, [key for _, key in batch])
        for changed, key in batch:
            if key not in known:
                problems.append(_recover_file(archive, key, changed))
    for problem in problems:
        log.warning("recovery: %s %s %s %s", problem.kind, problem.key, problem.detail,
                    problem.action)
    return problems


def _recover_file(archive: Archive, key: str, changed: float) -> Problem:
    try:
        uid, sending = _file_ids(archive.store.path_of(key))
    except Exception as exc:  # left for ``pacsnode check`` and a human
        return Problem("unreadable orphan file", key, detail=str(exc))
    with read_transaction(archive.engine) as conn:
        row = writer.find_instance(conn, uid)
    if row is not None:
        try:
            indexed_changed = archive.store.path_of(row["storage_key"]).stat().st_ctime
        except FileNotFoundError:
            indexed_changed = None  # its file was replaced by this one, or lost
        if indexed_changed is not None and indexed_changed >= changed:
            archive.store.delete(key)
            return Problem("orphan file", key, uid, "superseded: the index has a later file",
                           action="removed")
    result = _adopt(archive, key, uid, sending)
    return Problem("unflushed index entry", key, uid,
                   "placed before an unclean stop, its index commit was lost",
                   action=f"indexed ({result.outcome.value})" if result.ok
                   else f"rejected: {result.detail}")
