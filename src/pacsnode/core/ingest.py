"""Ingest: check a data set, store it byte for byte, index it — in the order that makes a
success durable and a crash harmless.

1. Parse the header only (stop before pixel data; large values are not read) and check the
   minimum an archive needs: SOP Class/Instance, Study and Series Instance UIDs.
2. Copy the data set's encoded bytes, unchanged, behind pacsnode's own file meta information
   into a temporary file in the store, hashing them on the way. (A receiver that already
   wrote the data set in that layout into the store's temporary directory, hashing it as
   it arrived, hands over a :class:`Spooled` file instead, and nothing is copied.)
3. fsync the file, link it to its key (the key embeds the hash), fsync the directory.
4. In one index transaction: if the SOP Instance UID is indexed with the same hash, it is
   already present and nothing changes; otherwise apply the duplicate policy and commit
   the rows (replacing the old instance's rows under the ``replace`` policy).
5. Only then delete the replaced file, or the new file if it was not kept.

For a spooled file, step 3's fsync starts before step 1 (the file is complete: it runs while
the header is parsed) and the directory's fsync runs during step 4's statements; the commit
still waits for both, so the order above holds.

A crash before the commit leaves a complete file the index does not know (``check --repair``
adopts or removes it); a crash after it leaves, at worst, a replaced file not yet deleted
(an orphan ``check --repair`` removes). Nothing half-written is ever indexed.

A serving node on SQLite does not flush each commit of step 4 to disk
(:attr:`Ingestor.flush_index`; :mod:`pacsnode.core.index_flush` flushes them about once a
second). The success answer still comes after step 3, so the instance is durable as a file:
after a power cut the next start indexes the files placed since the last flush.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy.exc
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from sqlalchemy.engine import Engine

from pacsnode.core import dicom_file
from pacsnode.core.results import IngestResult, Outcome, RejectReason
from pacsnode.index import pending_deletes, records, writer
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.storage.base import StorageError
from pacsnode.storage.filesystem import FileSystemStore

log = logging.getLogger(__name__)

COPY_CHUNK = 1024 * 1024
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class Expectation:
    """What the request said the data set is (C-STORE's Affected SOP Class/Instance UID;
    the study of a STOW-RS request's URL)."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None


@dataclass(frozen=True)
class Spooled:
    """A received data set already written in pacsnode's file layout (preamble, pacsnode's
    file meta, then the data set bytes as received) in the store's temporary directory,
    with the SHA-256 of the data set bytes computed while it was written (``digest`` empty:
    not computed; the core hashes the file). ``sync`` and ``digesting``: the file's fsync
    and hash, when :meth:`Ingestor.start_spooled` started them as the last byte arrived."""

    path: Path
    digest: str
    data_offset: int
    size: int
    sync: Future[None] | None = None
    digesting: Future[str] | None = None


@dataclass
class Prepared:
    """A checked data set in a temporary file, on its way into the store and the index
    (:meth:`Ingestor.prepare_spooled`, then :meth:`Ingestor.commit_prepared`)."""

    temp: Path
    record: records.InstanceRecord
    ids: dict[str, Any]
    digest: str
    size: int
    offset: int
    sending_aet: str
    sync: Future[None] | None = None  # the file's fsync, started before the header parse
    digesting: Future[str] | None = None  # the data set's hash, when the spool had none
    key: str = ""
    file_row: dict[str, Any] = field(default_factory=dict)
    created: bool = False


# PostgreSQL's deadlock_detected and serialization_failure: the transaction may be retried.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable(exc: sqlalchemy.exc.DBAPIError) -> bool:
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


_digest_pool = ThreadPoolExecutor(2, thread_name_prefix="pacsnode-digest")


def _file_digest(path: Path, data_offset: int) -> str:
    """SHA-256 of the data set bytes of a file (from ``data_offset`` to the end)."""
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        fp.seek(data_offset)
        while chunk := fp.read(COPY_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def storage_key(study_uid: str, sop_uid: str, digest: str) -> str:
    """Where an instance's file lives: spread over 65,536 directories by study, one directory
    per study, the digest in the name so a replacement never overwrites what is indexed."""
    h = hashlib.sha1(study_uid.encode("ascii")).hexdigest()
    return f"{h[:2]}/{h[2:4]}/{study_uid}/{sop_uid}.{digest[:16]}.dcm"


_UID_TAGS = {"SOPClassUID": 0x00080016, "SOPInstanceUID": 0x00080018,
             "StudyInstanceUID": 0x0020000D, "SeriesInstanceUID": 0x0020000E}


def _uids(ds: Dataset) -> dict[str, str]:
    """The four UIDs an archive needs, by keyword ('' when absent or unreadable). A raw
    value in plain ASCII is read as it is (a UI value is ASCII in every character set,
    PS3.5 6.2); anything else goes through pydicom."""
    found = {}
    for keyword, tag in _UID_TAGS.items():
        value: Any = None
        try:
            raw = ds.get_item(tag, keep_deferred=True)
            if (isinstance(raw, RawDataElement) and isinstance(raw.value, bytes)
                    and raw.value.isascii()):
                value = raw.value.decode("ascii")
            else:
                elem = ds.get(tag)
                value = elem.value if elem is not None else None
        except Exception:
            value = None
        found[keyword] = str(value).strip("\x00 ") if value is not None else ""
    return found


def _check_uids(uids: dict[str, str], expect: Expectation) -> tuple[RejectReason, str] | None:
    """The minimum an archive needs, and agreement with the request (PS3.4 B.2.3)."""
    for keyword, value in uids.items():
        if not value:
            return RejectReason.MISSING_UID, f"{keyword} is missing"
        if len(value) > 64 or not UID_RE.match(value):
            return RejectReason.MISSING_UID, f"{keyword} {value[:70]!r} is not a valid UID"
    if expect.sop_class_uid and uids["SOPClassUID"] != expect.sop_class_uid:
        return (RejectReason.SOP_CLASS_MISMATCH,
                f"SOPClassUID {uids['SOPClassUID']} differs from the request's "
                f"{expect.sop_class_uid}")
    if expect.sop_instance_uid and uids["SOPInstanceUID"] != expect.sop_instance_uid:
        return (RejectReason.UID_MISMATCH,
                f"SOPInstanceUID {uids['SOPInstanceUID']} differs from the request's "
                f"{expect.sop_instance_uid}")
    if expect.study_instance_uid and uids["StudyInstanceUID"] != expect.study_instance_uid:
        return (RejectReason.UID_MISMATCH,
                f"StudyInstanceUID {uids['StudyInstanceUID']} is not the study of the "
                f"request, {expect.study_instance_uid}")
    return None


class Ingestor:
    """Runs the ingest steps against one store and one index."""

    def __init__(self, engine: Engine, store: FileSystemStore, *, aet: str,
                 duplicate_policy: str = "replace") -> None:
        self.engine = engine
        self.store = store
        self.aet = aet
        self.duplicate_policy = duplicate_policy
        # False: index commits are not flushed to disk one by one (pacsnode.core.index_flush
        # flushes them periodically and completes the index from the files after a power cut)
        self.flush_index = True
        self.unflushed_commits = 0  # commits made with flush_index False, ever

    def ingest_stream(self, fp: BinaryIO, *, sending_aet: str = "",
                      expect: Expectation | None = None) -> IngestResult:
        """Ingest the DICOM file (or bare data set) readable from seekable ``fp``."""
        inspected = self._inspect(fp, expect or Expectation())
        if isinstance(inspected, IngestResult):
            return inspected
        header, record, ids = inspected
        header_bytes = dicom_file.file_header(
            sop_class_uid=ids["sop_class_uid"], sop_instance_uid=ids["sop_instance_uid"],
            transfer_syntax=header.transfer_syntax, source_aet=self.aet,
            sending_aet=sending_aet)
        try:
            temp, digest, size, offset = self._write_temp(fp, header.data_offset, header_bytes)
        except OSError as exc:
            return IngestResult(Outcome.REJECTED, reason=RejectReason.OUT_OF_RESOURCES,
                                detail=f"cannot write the file: {exc}", **ids)
        try:
            return self._place_safely([Prepared(temp, record, ids, digest, size, offset,
                                                sending_aet)])[0]
        finally:
            self.store.discard_temp(temp)

    def ingest_spooled(self, spooled: Spooled, *, sending_aet: str = "",
                       expect: Expectation | None = None) -> IngestResult:
        """Ingest a file already written in pacsnode's layout in the store's temporary
        directory (see :class:`Spooled`): nothing is copied. The file is left in place for
        the caller to remove; what is kept is a hard link to it."""
        prepared = self.prepare_spooled(spooled, expect or Expectation(), sending_aet)
        if isinstance(prepared, IngestResult):
            return prepared
        return self.commit_prepared([prepared])[0]

    def start_spooled(self, path: Path, data_offset: int,
                      hashed: bool) -> tuple[Future[None], Future[str] | None]:
        """Start a complete spool file's fsync and, unless ``hashed``, the hash of its data
        set, in the background. The C-STORE receiver calls this from the network thread as
        the last fragment is written, so both run while the request reaches its handler."""
        return (self.store.start_sync(path),
                None if hashed else _digest_pool.submit(_file_digest, path, data_offset))

    def prepare_spooled(self, spooled: Spooled, expect: Expectation,
                        sending_aet: str = "") -> Prepared | IngestResult:
        """Steps 1 and 3 begun: the file's fsync is started, then its header is parsed
        and checked meanwhile. A rejection is returned as the result; otherwise
        :meth:`commit_prepared` finishes (for one or several prepared files at once)."""
        sync, digesting = (spooled.sync, spooled.digesting) if spooled.sync is not None \
            else self.start_spooled(spooled.path, spooled.data_offset, bool(spooled.digest))
        with open(spooled.path, "rb") as fp:
            inspected = self._inspect(fp, expect, spooled.data_offset)
        if isinstance(inspected, IngestResult):
            return inspected
        header, record, ids = inspected
        if header.data_offset != spooled.data_offset:
            return IngestResult(Outcome.REJECTED, reason=RejectReason.CANNOT_UNDERSTAND,
                                detail="the spooled file's meta information is not "
                                       "pacsnode's", **ids)
        return Prepared(spooled.path, record, ids, spooled.digest, spooled.size,
                        spooled.data_offset, sending_aet, sync, digesting)

    def commit_prepared(self, batch: Sequence[Prepared]) -> list[IngestResult]:
        """Steps 3 to 5 for prepared files: durable, linked, indexed in one transaction
        (one result each, once all are durable and indexed, or all failed)."""
        return self._place_safely(list(batch))

    def ingest_spooled_many(self, batch: Sequence[tuple[Spooled, Expectation]], *,
                            sending_aet: str = "",
                            sending_aets: Sequence[str] | None = None) -> list[IngestResult]:
        """Ingest several spooled files as :meth:`ingest_spooled` does each, with one
        directory fsync per directory and one index transaction for the batch (the
        results come once all are durable and indexed, or all failed). For a request
        answered as a whole, such as a STOW-RS upload. ``sending_aets``: one calling AE
        title per data set, else ``sending_aet`` for all."""
        results: list[IngestResult | None] = []
        pending: list[tuple[int, Prepared]] = []
        aets = list(sending_aets) if sending_aets is not None else [sending_aet] * len(batch)
        for (spooled, expect), aet in zip(batch, aets, strict=True):
            prepared = self.prepare_spooled(spooled, expect, aet)
            if isinstance(prepared, IngestResult):
                results.append(prepared)
                continue
            pending.append((len(results), prepared))
            results.append(None)
        for (index, _), result in zip(pending, self.commit_prepared([p for _, p in pending]),
                                      strict=True):
            results[index] = result
        return [r for r in results if r is not None]

    def _inspect(self, fp: BinaryIO, expect: Expectation, data_offset: int | None = None
                 ) -> IngestResult | tuple[dicom_file.ParsedHeader, records.InstanceRecord,
                                           dict[str, Any]]:
        """Parse the header, check the UIDs and extract the index record; a rejection is
        returned as the result. ``data_offset``: where the data set starts in a file in
        pacsnode's layout (a spooled file), if known."""
        try:
            header = (dicom_file.read_header(fp) if data_offset is None
                      else dicom_file.read_header_at(fp, data_offset))
        except dicom_file.InvalidDicom as exc:
            return IngestResult(Outcome.REJECTED, reason=RejectReason.CANNOT_UNDERSTAND,
                                detail=str(exc))
        ds = header.dataset
        uids = _uids(ds)
        problem = _check_uids(uids, expect)
        ids: dict[str, Any] = dict(sop_instance_uid=uids["SOPInstanceUID"],
                                   sop_class_uid=uids["SOPClassUID"],
                                   study_instance_uid=uids["StudyInstanceUID"],
                                   series_instance_uid=uids["SeriesInstanceUID"],
                                   transfer_syntax=header.transfer_syntax)
        if problem is not None:
            return IngestResult(Outcome.REJECTED, reason=problem[0], detail=problem[1], **ids)
        try:
            record = records.extract(ds)
        except Exception as exc:  # a header pydicom read but cannot convert
            return IngestResult(Outcome.REJECTED, reason=RejectReason.CANNOT_UNDERSTAND,
                                detail=f"cannot index the data set: {exc}", **ids)
        return header, record, ids

    def _place_safely(self, batch: list[Prepared]) -> list[IngestResult]:
        if not batch:
            return []
        try:
            return self._place(batch)
        except (StorageError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
            log.error("ingest of %s failed: %s",
                      ", ".join(p.ids["sop_instance_uid"] for p in batch[:3])
                      + (f" and {len(batch) - 3} more" if len(batch) > 3 else ""), exc)
            return [IngestResult(Outcome.REJECTED, reason=RejectReason.OUT_OF_RESOURCES,
                                 detail=f"storage or index unavailable: {exc}", **p.ids)
                    for p in batch]

    def _write_temp(self, fp: BinaryIO, data_offset: int,
                    file_header: bytes) -> tuple[Path, str, int, int]:
        """Copy meta + data set bytes to a temporary file; returns it, the data set's sha256,
        the file size and the offset of the data set in the file."""
        fh, temp = self.store.new_temp()
        try:
            with fh:
                fh.write(file_header)
                offset = len(file_header)
                fp.seek(data_offset)
                h = hashlib.sha256()
                while chunk := fp.read(COPY_CHUNK):
                    h.update(chunk)
                    fh.write(chunk)
                size = fh.tell()  # fsynced by store.place()
        except BaseException:
            self.store.discard_temp(temp)
            raise
        return temp, h.hexdigest(), size, offset

    def _place(self, batch: list[Prepared]) -> list[IngestResult]:
        """Steps 3 to 5 of the module documentation for ``batch``: its files made durable
        and linked (one fsync per directory), then one index transaction, then the files
        not needed removed."""
        for p in batch:
            if p.digesting is not None:
                p.digest = p.digesting.result()
            p.key = storage_key(p.ids["study_instance_uid"], p.ids["sop_instance_uid"],
                                p.digest)
            p.file_row = {"transfer_syntax_uid": p.ids["transfer_syntax"],
                          "storage_key": p.key, "file_size": p.size,
                          "data_offset": p.offset, "digest": p.digest,
                          "source_aet": p.sending_aet[:16]}
        # The files are made durable before the index lock is taken, so fsync latency never
        # holds up other writers (the directories' fsyncs overlap with the index statements
        # and end before the commit); a file that turns out not to be needed is removed
        # after.
        syncs = [p.sync if p.sync is not None else self.store.start_sync(p.temp)
                 for p in batch]
        placed = self.store.place_many([(p.temp, p.key) for p in batch], syncs=syncs)
        for p, created in zip(batch, placed.created, strict=True):
            p.created = created
            if not created:  # the key's file has this data set, maybe behind other file
                existing_size = self.store.size(p.key)  # meta (AE title): index it as is
                p.file_row.update(file_size=existing_size,
                                  data_offset=existing_size - (p.size - p.offset))
        # A key that was already there is the file of an instance stored before (a re-send)
        # or of a delete a crash interrupted: any record of that delete goes with this
        # commit, which is then flushed, so that a power cut cannot leave the record to
        # remove a file this ingest acknowledged.
        found = [p.key for p in batch if not p.created]
        for _attempt in range(5):
            decisions: dict[int, tuple[Outcome, dict[str, Any] | None]] = {}
            try:
                with write_transaction(self.engine,
                                       flush=self.flush_index or bool(found)) as conn:
                    if found:
                        pending_deletes.forget(conn, found)
                    # the rows above the batch's instances, locked in one order by every
                    # transaction, so that concurrent ones (PostgreSQL) rarely deadlock
                    writer.lock_parents(conn, [p.record for p in batch])
                    for i, p in enumerate(batch):
                        existing = writer.find_instance(conn, p.ids["sop_instance_uid"])
                        outcome = self._decide(existing, p.digest)
                        if outcome in (Outcome.STORED, Outcome.REPLACED):
                            if existing is not None:
                                writer.remove_instances(conn, [existing])
                            writer.add_instance(conn, p.record, p.file_row, time.time())
                        decisions[i] = (outcome, existing)
                    placed.wait()  # the new names are durable before the commit
            except sqlalchemy.exc.DBAPIError as exc:
                if _retryable(exc):
                    # another writer indexed one of these UIDs meanwhile, or the database
                    # broke a deadlock by aborting this transaction: decide again
                    continue
                self._forget_unindexed(batch)
                raise
            except BaseException:
                self._forget_unindexed(batch)
                raise
            if not self.flush_index:
                self.unflushed_commits += 1
            return [self._settle(p, *decisions[i]) for i, p in enumerate(batch)]
        self._forget_unindexed(batch)
        return [IngestResult(Outcome.REJECTED, reason=RejectReason.OUT_OF_RESOURCES,
                             detail="the instance kept changing under concurrent writers",
                             **p.ids) for p in batch]

    def _forget_unindexed(self, batch: list[Prepared]) -> None:
        for p in batch:
            if p.created and not self._indexed(p.key):
                self.store.delete(p.key)

    def _settle(self, p: Prepared, outcome: Outcome,
                existing: dict[str, Any] | None) -> IngestResult:
        """Step 5: remove the file the committed outcome no longer needs; the result."""
        if outcome is Outcome.REPLACED:
            assert existing is not None
            self.store.delete(existing["storage_key"])
        elif outcome is Outcome.ALREADY_PRESENT:
            assert existing is not None
            if p.created and existing["storage_key"] != p.key:
                self.store.delete(p.key)
            elif p.created:
                # Either the indexed file was gone and these bytes put it back, or a
                # concurrent writer indexed the same bytes first: the file stays.
                log.debug("file of %s placed by this writer, indexed by another",
                          p.ids["sop_instance_uid"])
        elif outcome is not Outcome.STORED and p.created:
            self.store.delete(p.key)
        if outcome is Outcome.KEPT_EXISTING:
            return IngestResult(outcome, **p.ids,
                                detail="a different instance with this UID is kept")
        if outcome is Outcome.REJECTED:
            return IngestResult(outcome, reason=RejectReason.DUPLICATE_REJECTED,
                                detail="an instance with this SOP Instance UID exists "
                                       "with different content", **p.ids)
        return IngestResult(outcome, **p.ids)

    def _indexed(self, key: str) -> bool:
        """Whether an instance row refers to the file ``key`` (a concurrent writer may have
        indexed the same bytes). When the index cannot say, the file is kept: an orphan is
        harmless (``check --repair`` sorts it out), a deleted indexed file is data lost."""
        try:
            with read_transaction(self.engine) as conn:
                return writer.key_is_indexed(conn, key)
        except sqlalchemy.exc.SQLAlchemyError:
            return True

    def _decide(self, existing: dict[str, Any] | None, digest: str) -> Outcome:
        """What to do with a data set, given the indexed instance with its SOP Instance UID."""
        if existing is None:
            return Outcome.STORED
        if existing["digest"] == digest:
            return Outcome.ALREADY_PRESENT
        if self.duplicate_policy == "keep":
            return Outcome.KEPT_EXISTING
        if self.duplicate_policy == "reject":
            return Outcome.REJECTED
        return Outcome.REPLACED
