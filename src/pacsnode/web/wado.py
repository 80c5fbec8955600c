"""WADO-RS, the DICOMweb retrieve service (PS3.18 10.4): studies, series and instances as
``multipart/related; type="application/dicom"``, and their metadata as DICOM JSON from the
index.

* **Instances** (10.4.1.1.1): each part is the stored Part-10 file — pacsnode's file meta,
  then the data set exactly as received — streamed from storage, when the client accepts
  the stored transfer syntax: ``transfer-syntax=*`` (any), or that syntax by UID. With no
  ``transfer-syntax`` parameter the default of PS3.18 8.7.3.5.2, Explicit VR Little
  Endian, applies: other syntaxes are converted losslessly
  (:func:`pacsnode.core.transcode.convert`). A syntax pacsnode cannot produce for every
  instance asked for: 406. The Accept header's media ranges are tried in order of quality.
* **Metadata** (10.4.1.1.2): one DICOM JSON object per instance, the patient, study,
  series and instance attributes the index keeps (private ones included), bulk data as
  ``BulkDataURI`` pointing at the instance's bulkdata resource; no file is read. Or, by the
  Accept header, ``multipart/related; type="application/dicom+xml"``: the same attributes
  as one Native DICOM Model document per instance (PS3.18 8.7.3, PS3.19 A.1;
  :mod:`pacsnode.web.dicom_xml`), bulk data as ``<BulkData uri="…"/>``.
* Unknown study, series or instance: 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pacsnode.core.archive import Archive
from pacsnode.core.retrieve import select_instances
from pacsnode.core.transcode import UNCOMPRESSED, convert
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.index.metadata import MetadataRow
from pacsnode.index.search import Match, Results
from pacsnode.web import dicom_xml, multipart, urls
from pacsnode.web.media import (
    DICOM,
    DICOM_JSON,
    DICOM_XML,
    EXPLICIT_VR_LE,
    MULTIPART_RELATED,
    accept_dicom_model,
    not_acceptable,
    parse_accept,
)
from pacsnode.web.problems import Problem

log = logging.getLogger("pacsnode.web")
router = APIRouter()

STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
CHUNK = 1024 * 1024
WHOLE_PART = 8 * 1024 * 1024
OBJECTS_PER_CHUNK = 64


def _keys(study: str, series: str | None = None,
          instance: str | None = None) -> dict[int, matching.Condition]:
    keys = {STUDY_UID: matching.parse("UI", study)}
    if series is not None:
        keys[SERIES_UID] = matching.parse("UI", series)
    if instance is not None:
        keys[SOP_UID] = matching.parse("UI", instance)
    return keys


def _what(study: str, series: str | None, instance: str | None) -> str:
    if instance is not None:
        return f"instance {instance} of series {series} of study {study}"
    if series is not None:
        return f"series {series} of study {study}"
    return f"study {study}"


def _found(archive: Archive, study: str, series: str | None,
           instance: str | None) -> tuple[Match, Results]:
    """The first matching instance and the rest of the search; 404 when there is none."""
    results = archive.search(Level.IMAGE, _keys(study, series, instance))
    first = next(iter(results), None)
    if first is None:
        results.close()
        raise Problem(404, f"no {_what(study, series, instance)} in this archive")
    return first, results


def _all(first: Match, results: Results) -> Iterator[Match]:
    try:
        yield first
        yield from results
    finally:
        results.close()


def stored_syntaxes(archive: Archive, study: str, series: str | None,
                    instance: str | None) -> set[str]:
    """The transfer syntaxes the instances asked for are stored in (one DISTINCT query,
    :func:`pacsnode.core.retrieve.select_instances`; no JSON read)."""
    with select_instances(archive.engine, _keys(study, series, instance)) as selection:
        return {syntax for syntaxes in selection.syntaxes.values() for syntax in syntaxes}


@dataclass(frozen=True)
class Choice:
    """The transfer syntax to send: ``None`` = each instance as stored."""

    syntax: str | None


def choose_syntax(request: Request, stored: set[str]) -> Choice:
    """The first acceptable media range for which every stored syntax can be sent
    (PS3.18 8.7.3.5, 8.7.4); 406 when none."""
    for media in parse_accept(request.headers.get("accept")):
        if media.type == MULTIPART_RELATED:
            part_type = media.params.get("type", DICOM).lower()
            if part_type not in (DICOM, "*/*", "application/*"):
                continue
        elif media.type not in ("*/*", "*", "multipart/*"):
            continue
        wanted = media.params.get("transfer-syntax", "")
        if wanted == "*":
            return Choice(None)
        target = wanted or EXPLICIT_VR_LE
        if target in UNCOMPRESSED or stored <= {target}:
            return Choice(target)
    raise not_acceptable(request, f'{MULTIPART_RELATED}; type="{DICOM}" with the '
                         f"transfer syntax as stored ({', '.join(sorted(stored))}) or an "
                         "uncompressed little endian one")


@dataclass
class _Part:
    """One instance's part: its headers, and the file its body is read from."""

    head: bytes
    path: Path
    size: int
    temp: Path | None  # a converted copy, removed once sent

    @property
    def length(self) -> int:
        return len(self.head) + self.size + 2


def _part(archive: Archive, match: Match, choice: Choice, boundary: str) -> _Part:
    """The part of one instance: the stored file, or a copy converted to the chosen
    transfer syntax."""
    stored_syntax = str(match.file["transfer_syntax_uid"])
    source = archive.store.path_of(str(match.file["storage_key"]))
    target = choice.syntax or stored_syntax
    temp: Path | None = None
    if target != stored_syntax:
        fh, temp = archive.store.new_temp()
        try:
            with fh:
                convert(source, target, fh)
        except BaseException:
            archive.store.discard_temp(temp)
            raise
    path = temp or source
    size = path.stat().st_size
    head = (f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={target}\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    return _Part(head, path, size, temp)


def _filled(archive: Archive, parts: list[_Part], tail: bytes = b"") -> memoryview:
    """The parts (and ``tail``) read into one buffer: each file is read straight into its
    place (no copy after), then its converted copy, if any, is removed."""
    buf = bytearray(sum(p.length for p in parts) + len(tail))
    view = memoryview(buf)
    pos = 0
    for p in parts:
        view[pos:pos + len(p.head)] = p.head
        pos += len(p.head)
        with open(p.path, "rb") as fh:
            if fh.readinto(view[pos:pos + p.size]) != p.size:
                raise OSError(f"{p.path} changed while it was sent")
        pos += p.size
        view[pos:pos + 2] = b"\r\n"
        pos += 2
        if p.temp is not None:
            archive.store.discard_temp(p.temp)
            p.temp = None
    view[pos:] = tail
    return view


def _instances_body(archive: Archive, matches: Iterator[Match], choice: Choice,
                    boundary: str) -> Iterator[bytes | memoryview]:
    """The parts, gathered into chunks of about :data:`WHOLE_PART` bytes: Starlette fetches
    each chunk of a synchronous body in a worker thread, so a series of small files goes
    out in a few hops rather than one per instance; a larger file goes in chunks of
    :data:`CHUNK` bytes."""
    batch: list[_Part] = []
    try:
        for match in matches:
            try:
                part = _part(archive, match, choice, boundary)
            except Exception as exc:  # a part cannot be undone once the stream has started
                log.error("WADO-RS: instance %s could not be sent: %s",
                          match.file.get("sop_instance_uid"), exc)
                raise
            if part.size > WHOLE_PART:
                if batch:
                    yield _filled(archive, batch)
                    batch = []
                yield from _streamed(archive, part)
                continue
            batch.append(part)
            if sum(p.length for p in batch) >= WHOLE_PART:
                yield _filled(archive, batch)
                batch = []
        yield _filled(archive, batch, f"--{boundary}--\r\n".encode())
        batch = []
    finally:  # the client went away: converted copies not sent are removed
        for p in batch:
            if p.temp is not None:
                archive.store.discard_temp(p.temp)


def _streamed(archive: Archive, part: _Part) -> Iterator[bytes]:
    """A large part in chunks."""
    try:
        yield part.head
        with open(part.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
        yield b"\r\n"
    finally:
        if part.temp is not None:
            archive.store.discard_temp(part.temp)


def retrieve(request: Request, study: str, series: str | None = None,
             instance: str | None = None) -> Response:
    """Instances as multipart/related application/dicom (PS3.18 10.4.1.1.1)."""
    archive: Archive = request.app.state.archive
    stored = stored_syntaxes(archive, study, series, instance)
    if not stored:
        raise Problem(404, f"no {_what(study, series, instance)} in this archive")
    choice = choose_syntax(request, stored)
    first, results = _found(archive, study, series, instance)
    boundary = multipart.new_boundary()
    media_type = multipart.content_type(boundary, DICOM)
    if choice.syntax is not None:
        media_type += f"; transfer-syntax={choice.syntax}"
    return StreamingResponse(_instances_body(archive, _all(first, results), choice, boundary),
                             media_type=media_type)


def metadata_json(row: MetadataRow, root: str) -> str:
    """One instance's metadata object (PS3.18 F.2) as JSON text: the levels above and the
    instance's own JSON as the index keeps them, each relative BulkDataURI made absolute
    (``…/instances/{uid}/bulkdata/{tag}``). A string value cannot contain the unescaped
    ``"BulkDataURI":"``, so the replacement only touches the members of that name."""
    base = urls.instance_url(root, row.study_uid, row.series_uid, row.sop_instance_uid)
    own = row.instance_json[1:-1].replace('"BulkDataURI":"', f'"BulkDataURI":"{base}/bulkdata/')
    separator = "," if row.upper_members and own else ""
    return "{" + row.upper_members + separator + own + "}"


def _metadata_body(first: MetadataRow, rows: Iterator[MetadataRow], root: str
                   ) -> Iterator[bytes]:
    chunk = ["[", metadata_json(first, root)]
    try:
        for row in rows:
            chunk += [",", metadata_json(row, root)]
            if len(chunk) >= 2 * OBJECTS_PER_CHUNK:
                yield "".join(chunk).encode()
                chunk = []
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    chunk.append("]")
    yield "".join(chunk).encode()


def _metadata_objects(first: MetadataRow, rows: Iterator[MetadataRow], root: str
                      ) -> Iterator[dict[str, Any]]:
    try:
        yield json.loads(metadata_json(first, root))
        for row in rows:
            yield json.loads(metadata_json(row, root))
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def metadata(request: Request, study: str, series: str | None = None,
             instance: str | None = None) -> Response:
    """Metadata of the instances asked for (PS3.18 10.4.1.1.2), from the index."""
    model = accept_dicom_model(request)
    archive: Archive = request.app.state.archive
    rows = archive.metadata(study, series, instance)
    first = next(rows, None)
    if first is None:
        raise Problem(404, f"no {_what(study, series, instance)} in this archive")
    if model == DICOM_XML:  # PS3.18 8.7.3: one XML part per instance
        boundary = multipart.new_boundary()
        objects = _metadata_objects(first, rows, urls.dicomweb(request))
        return StreamingResponse(dicom_xml.multipart_body(objects, boundary),
                                 media_type=multipart.content_type(boundary, DICOM_XML))
    return StreamingResponse(_metadata_body(first, rows, urls.dicomweb(request)),
                             media_type=DICOM_JSON)


@router.get("/studies/{study}", summary="Retrieve a study's instances (PS3.18 10.4)")
def retrieve_study(request: Request, study: str) -> Response:
    return retrieve(request, study)


@router.get("/studies/{study}/series/{series}", summary="Retrieve a series' instances")
def retrieve_series(request: Request, study: str, series: str) -> Response:
    return retrieve(request, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}",
            summary="Retrieve an instance")
def retrieve_instance(request: Request, study: str, series: str, instance: str) -> Response:
    return retrieve(request, study, series, instance)


@router.get("/studies/{study}/metadata", summary="A study's metadata (DICOM JSON)")
def study_metadata(request: Request, study: str) -> Response:
    return metadata(request, study)


@router.get("/studies/{study}/series/{series}/metadata", summary="A series' metadata")
def series_metadata(request: Request, study: str, series: str) -> Response:
    return metadata(request, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata",
            summary="An instance's metadata")
def instance_metadata_route(request: Request, study: str, series: str,
                            instance: str) -> Response:
    return metadata(request, study, series, instance)
