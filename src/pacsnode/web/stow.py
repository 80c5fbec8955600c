"""STOW-RS, the DICOMweb store service (PS3.18 10.5): ``POST /studies`` and
``POST /studies/{study}`` with ``multipart/related; type="application/dicom"``.

* The body is read as a stream (:func:`pacsnode.web.multipart.read_parts`): each part is
  written as it arrives, already in pacsnode's file layout and hashed
  (:class:`pacsnode.core.spool_file.Part10Spool`), so memory stays bounded whatever the
  upload's size and nothing is copied; then it is stored through the same ingest as
  C-STORE (fsync, link into place, index — success means durable), in batches: the parts
  that have arrived are stored together (:meth:`Archive.ingest_spooled_many`: one index
  transaction and one directory fsync for the batch, up to 32 parts) while the next ones
  are read. The response comes once every part is stored, so batching changes nothing of
  what a success means.
* An instance of another study than the URL's is refused (10.5.1.2.2?): FailureReason
  A900H. A part that is not ``application/dicom``, or not a DICOM data set: C000H. The
  other failure reasons follow the C-STORE statuses (PS3.4 B.2.3): A700H out of resources,
  0111H duplicate refused by policy.
* The response (10.5.3) is DICOM JSON: Referenced SOP Sequence (each stored instance with
  its Retrieve URL), Failed SOP Sequence (each failure with its Failure Reason), and the
  study's Retrieve URL when every instance stored belongs to one study. Status 200 when all
  were stored, 202 when some failed, 409 when none was stored.
* A body that is not well-formed multipart: 400 with the reason (instances stored before
  the fault stay stored, and the detail says how many); any other media type: 415.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pacsnode.core.archive import Archive
from pacsnode.core.ingest import Spooled
from pacsnode.core.results import IngestResult, RejectReason
from pacsnode.core.spool_file import Part10Spool
from pacsnode.web import multipart, urls
from pacsnode.web.media import DICOM, DICOM_JSON, MULTIPART_RELATED
from pacsnode.web.problems import Problem

log = logging.getLogger("pacsnode.web")
BATCH_PARTS = 32  # parts stored with one index transaction, at most
PIPELINE_DEPTH = BATCH_PARTS  # parts read (to disk) ahead of those being stored
router = APIRouter()

# PS3.18 10.5.3 Failure Reason values (PS3.4 B.2.3 C-STORE statuses)
CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH = 0xA900
OUT_OF_RESOURCES = 0xA700
DUPLICATE = 0x0111
FAILURE_REASONS = {
    RejectReason.CANNOT_UNDERSTAND: CANNOT_UNDERSTAND,
    RejectReason.MISSING_UID: CANNOT_UNDERSTAND,
    RejectReason.SOP_CLASS_MISMATCH: DOES_NOT_MATCH,
    RejectReason.UID_MISMATCH: DOES_NOT_MATCH,
    RejectReason.DUPLICATE_REJECTED: DUPLICATE,
    RejectReason.OUT_OF_RESOURCES: OUT_OF_RESOURCES,
}


def _uid_json(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


class Outcomes:
    """The per-instance results of one request, as the response's sequences."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.referenced: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.studies: set[str] = set()

    def stored(self, result: IngestResult) -> None:
        self.studies.add(result.study_instance_uid)
        url = urls.instance_url(self.root, result.study_instance_uid,
                                result.series_instance_uid, result.sop_instance_uid)
        self.referenced.append({"00081150": _uid_json(result.sop_class_uid),
                                "00081155": _uid_json(result.sop_instance_uid),
                                "00081190": {"vr": "UR", "Value": [url]}})

    def refused(self, reason: int, sop_class: str = "", sop_instance: str = "") -> None:
        self.failed.append({"00081150": _uid_json(sop_class),
                            "00081155": _uid_json(sop_instance),
                            "00081197": {"vr": "US", "Value": [reason]}})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if len(self.studies) == 1:
            out["00081190"] = {"vr": "UR",
                               "Value": [urls.study_url(self.root, next(iter(self.studies)))]}
        if self.failed:
            out["00081198"] = {"vr": "SQ", "Value": self.failed}
        if self.referenced:
            out["00081199"] = {"vr": "SQ", "Value": self.referenced}
        return out

    @property
    def status(self) -> int:
        if not self.referenced:
            return 409
        return 202 if self.failed else 200


def _boundary(request: Request) -> str:
    header = request.headers.get("content-type", "")
    media_type, params = multipart.parse_content_type(header) if header else ("", {})
    if media_type != MULTIPART_RELATED:
        raise Problem(415, f"STOW-RS takes {MULTIPART_RELATED}; type=\"{DICOM}\", not "
                      f"{header or 'a body without Content-Type'}")
    part_type = params.get("type", DICOM).lower()
    if part_type != DICOM:
        raise Problem(415, f"only type=\"{DICOM}\" parts are supported, not {part_type!r} "
                      "(DICOM JSON or XML metadata with bulk data is not)")
    boundary = params.get("boundary")
    if not boundary:
        raise Problem(400, "the multipart Content-Type has no boundary parameter")
    return boundary


async def store(request: Request, study: str | None) -> JSONResponse:
    """Store the instances of one STOW-RS request (PS3.18 10.5)."""
    archive: Archive = request.app.state.archive
    boundary = _boundary(request)
    outcomes = Outcomes(urls.dicomweb(request))
    peer = request.client.host if request.client else "?"
    spools: dict[Path, Part10Spool] = {}

    def new_file() -> tuple[BinaryIO, Path]:
        """Each part is written in pacsnode's file layout as it arrives (no copy later)."""
        spool = Part10Spool(archive.store.temp_dir, source_aet=archive.settings.aet)
        spools[spool.path] = spool
        return spool, spool.path  # type: ignore[return-value]

    parts = multipart.read_parts(request.stream(), boundary, new_file)
    # Reading part n+1 overlaps with storing part n (fsync and file I/O leave the GIL).
    send, receive = anyio.create_memory_object_stream[multipart.Part](PIPELINE_DEPTH)
    malformed: list[multipart.MultipartError] = []

    async def read() -> None:
        async with send, contextlib.aclosing(parts):
            try:
                async for part in parts:
                    await send.send(part)
            except multipart.MultipartError as exc:
                malformed.append(exc)

    async def store_all() -> None:
        batch: list[multipart.Part] = []
        async with receive:
            try:
                async for part in receive:
                    batch.append(part)
                    # Group commit: store what has arrived when the batch is full or no
                    # further part is waiting (a slow upload is stored part by part).
                    if len(batch) >= BATCH_PARTS or \
                            receive.statistics().current_buffer_used == 0:
                        await _store_batch(archive, batch, spools, study, outcomes, peer)
                        batch = []
            finally:  # cancelled (client gone): the parts read but not stored
                for part in batch:
                    spools.pop(part.path, None)
                    archive.store.discard_temp(part.path)
                while True:
                    try:
                        path = receive.receive_nowait().path
                        spools.pop(path, None)
                        archive.store.discard_temp(path)
                    except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                        break

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        await store_all()
    if malformed:
        raise Problem(400, f"malformed multipart body: {malformed[0]} "
                      f"({len(outcomes.referenced)} instance(s) before the fault were stored)")
    if not outcomes.referenced and not outcomes.failed:
        raise Problem(400, "the multipart body has no parts")
    log.info("STOW-RS from %s: %d stored, %d failed", peer, len(outcomes.referenced),
             len(outcomes.failed))
    return JSONResponse(outcomes.body(), status_code=outcomes.status, media_type=DICOM_JSON)


async def _store_batch(archive: Archive, batch: list[multipart.Part],
                       spools: dict[Path, Part10Spool], study: str | None,
                       outcomes: Outcomes, peer: str) -> None:
    """Store the parts of ``batch`` — those spooled in pacsnode's layout together
    (:meth:`Archive.ingest_spooled_many`: one index transaction), the others one by one —
    and record their outcomes in the parts' order. Their temporary files are removed."""
    results: list[IngestResult | None] = []
    together: list[tuple[int, Spooled]] = []
    try:
        for part in batch:
            spool = spools.pop(part.path, None)
            media_type = (part.content_type or DICOM).split(";")[0].strip().lower()
            if media_type != DICOM:
                log.warning("STOW-RS from %s: part of type %s refused: not %s", peer,
                            media_type, DICOM)
                results.append(None)
                continue
            spooled = spool.spooled() if spool is not None else None
            if spooled is not None:
                together.append((len(results), spooled))
                results.append(None)
            else:  # not a Part-10 file with group length: the copying ingest decides
                results.append(await anyio.to_thread.run_sync(
                    functools.partial(archive.ingest, part.path, expect_study=study)))
        if together:
            stored = await anyio.to_thread.run_sync(lambda: archive.ingest_spooled_many(
                [s for _, s in together], expect_study=study))
            for (index, _), done in zip(together, stored, strict=True):
                results[index] = done
    finally:
        for part in batch:
            archive.store.discard_temp(part.path)
    for result in results:
        if result is None:  # not application/dicom
            outcomes.refused(CANNOT_UNDERSTAND)
        elif result.ok:
            outcomes.stored(result)
        else:
            reason = FAILURE_REASONS.get(result.reason or RejectReason.CANNOT_UNDERSTAND,
                                         CANNOT_UNDERSTAND)
            log.warning("STOW-RS from %s: instance %s refused (0x%04X): %s", peer,
                        result.sop_instance_uid or "?", reason, result.detail)
            outcomes.refused(reason, result.sop_class_uid, result.sop_instance_uid)


@router.post("/studies", summary="Store instances (PS3.18 10.5)")
async def store_instances(request: Request) -> JSONResponse:
    return await store(request, None)


@router.post("/studies/{study}", summary="Store instances of one study")
async def store_study_instances(request: Request, study: str) -> JSONResponse:
    return await store(request, study)
