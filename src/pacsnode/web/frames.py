"""WADO-RS frames and bulk data (PS3.18 10.4.1.1.4, 10.4.1.1.5): pixel data read from the
stored file, frame by frame, without decoding the rest of the instance.

* **As stored** (``transfer-syntax=*``, or the stored syntax's own media type of PS3.18
  Table 8.7.3-5: ``image/jls``, ``image/jp2``, ``image/dicom-rle``…): each frame's
  compressed bytes, located through the encapsulated pixel data's items (PS3.5 A.4).
* **Uncompressed** (``application/octet-stream``, the default, PS3.18 8.7.3.5.2): native
  frames sliced from the file at their offset, big endian words swapped to little endian;
  compressed frames decoded one at a time (pydicom with the pylibjpeg plugins).
* Frame numbers are 1-based (PS3.18 10.4.1.1.4); a malformed list: 400; a frame beyond the
  instance's Number of Frames: 404.
* Bulk data (the BulkDataURIs of the metadata): Pixel Data answers like all its frames;
  another top-level binary attribute answers its value, little endian.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from pacsnode.core.archive import Archive
from pacsnode.core.transcode import WORD_SIZES
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.web import multipart
from pacsnode.web.media import (
    EXPLICIT_VR_LE,
    FRAME_MEDIA_TYPES,
    MULTIPART_RELATED,
    OCTET_STREAM,
    not_acceptable,
    parse_accept,
)
from pacsnode.web.problems import Problem

router = APIRouter()

PIXEL_DATA = 0x7FE00010
STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018


@dataclass(frozen=True)
class StoredFile:
    """An instance's stored file and its transfer syntax."""

    path: Path
    syntax: str


def stored_file(archive: Archive, study: str, series: str, instance: str) -> StoredFile:
    """The stored file of one instance; 404 when it is not in the archive."""
    keys = {STUDY_UID: matching.parse("UI", study), SERIES_UID: matching.parse("UI", series),
            SOP_UID: matching.parse("UI", instance)}
    results = archive.search(Level.IMAGE, keys)
    try:
        match = next(iter(results), None)
    finally:
        results.close()
    if match is None:
        raise Problem(404, f"no instance {instance} of series {series} of study {study} in "
                      "this archive")
    return StoredFile(archive.store.path_of(str(match.file["storage_key"])),
                      str(match.file["transfer_syntax_uid"]))


def read_header(path: Path) -> Dataset:
    """The data set with large values (pixel data) left unread, their offsets kept."""
    return pydicom.dcmread(path, defer_size=1024)


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def parse_frame_list(text: str, count: int) -> list[int]:
    """``1,3,5`` → 0-based indexes (PS3.18 10.4.1.1.4); 400 if malformed, 404 if out of
    range."""
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise Problem(400, f"frame list {text!r}: comma-separated frame numbers (from 1) "
                      "expected") from None
    if not numbers or any(n < 1 for n in numbers):
        raise Problem(400, f"frame list {text!r}: frame numbers start at 1")
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise Problem(404, f"frame {beyond[0]} does not exist: the instance has {count} "
                      "frame(s)")
    return [n - 1 for n in numbers]


@dataclass(frozen=True)
class FrameChoice:
    """How to send frames: ``as_stored`` (compressed bytes, of ``media_type``) or decoded
    to little endian native bytes (``application/octet-stream``)."""

    as_stored: bool
    media_type: str


def choose_frames(request: Request, syntax: str) -> FrameChoice:
    """The first acceptable media range (PS3.18 8.7.3.5, Table 8.7.3-5); 406 if none."""
    compressed = UID(syntax).is_compressed
    stored_type = FRAME_MEDIA_TYPES.get(syntax, OCTET_STREAM) if compressed else OCTET_STREAM
    for media in parse_accept(request.headers.get("accept")):
        if media.type == MULTIPART_RELATED:
            part_type = media.params.get("type", OCTET_STREAM).lower()
        elif media.type in ("*/*", "*", "multipart/*"):
            part_type = OCTET_STREAM
        else:
            continue
        wanted = media.params.get("transfer-syntax", "")
        if part_type in (OCTET_STREAM, "*/*", "*", "application/*"):
            if not compressed:
                if wanted in ("", "*", EXPLICIT_VR_LE):
                    return FrameChoice(False, OCTET_STREAM)
                continue
            if wanted in ("*", syntax) or (not wanted and part_type != OCTET_STREAM):
                return FrameChoice(True, stored_type)  # any type: the stored one
            if wanted in ("", EXPLICIT_VR_LE):
                return FrameChoice(False, OCTET_STREAM)
        elif compressed and part_type in (stored_type, "image/*", "video/*") and \
                wanted in ("", "*", syntax):
            return FrameChoice(True, stored_type)
    raise not_acceptable(request, f'{MULTIPART_RELATED}; type="{OCTET_STREAM}"' + (
        f' or type="{stored_type}"; transfer-syntax={syntax}' if compressed else ""))


def _native_frame_length(ds: Dataset, count: int) -> int:
    total = int(get_expected_length(ds, unit="bytes"))
    if total % count or int(ds.BitsAllocated) % 8:
        raise Problem(406, "frames of this pixel data (bits allocated "
                      f"{ds.BitsAllocated}) are not whole bytes: not offered")
    return total // count


def _swap(data: bytes, word: int) -> bytes:
    if word <= 1:
        return data
    return np.frombuffer(data, dtype=f">u{word}").byteswap().tobytes()


def _pixel_source(stored: StoredFile, ds: Dataset) -> io.BytesIO | tuple[Path, int]:
    """Where the pixel data value is: (file, offset) when pydicom deferred it, else its
    bytes (a small value read with the header)."""
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if raw is None:
        raise Problem(404, "the instance has no pixel data")
    if raw.value is not None:
        return io.BytesIO(bytes(raw.value))
    return stored.path, int(getattr(raw, "value_tell", 0))


@contextlib.contextmanager
def _opened(source: io.BytesIO | tuple[Path, int]) -> Iterator[BinaryIO]:
    """The pixel data value as a file positioned at its start."""
    if isinstance(source, io.BytesIO):
        yield source
        return
    path, start = source
    with open(path, "rb") as fh:
        fh.seek(start)
        yield fh


def frame_bytes(stored: StoredFile, ds: Dataset, indexes: list[int], choice: FrameChoice
                ) -> Iterator[bytes]:
    """Each requested frame, as the choice says (``ds``: the file's :func:`read_header`)."""
    source = _pixel_source(stored, ds)
    syntax = UID(stored.syntax)
    count = frame_count(ds)
    if syntax.is_compressed:
        if choice.as_stored:
            wanted = set(indexes)
            found: dict[int, bytes] = {}
            with _opened(source) as fh:
                for n, frame in enumerate(generate_frames(fh, number_of_frames=count)):
                    if n in wanted:
                        found[n] = frame
                    if len(found) == len(wanted):
                        break
            for index in indexes:
                yield found[index]
            return
        for index in indexes:  # decoded one frame at a time, read from the file
            yield _native(pixel_array(stored.path, index=index, raw=True))
        return
    length = _native_frame_length(ds, count)
    word = max(1, int(ds.BitsAllocated) // 8) if not syntax.is_little_endian else 1
    with _opened(source) as fh:
        start = fh.tell()
        for index in indexes:
            fh.seek(start + index * length)
            yield _swap(fh.read(length), word)


def _native(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


def _multipart_frames(frames: Iterator[bytes], media_type: str, syntax: str | None,
                      boundary: str) -> Iterator[bytes]:
    header = multipart.part_content_type(media_type, syntax)
    for frame in frames:
        yield (f"--{boundary}\r\nContent-Type: {header}\r\n"
               f"Content-Length: {len(frame)}\r\n\r\n").encode()
        yield frame
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def frames_response(request: Request, stored: StoredFile, indexes: list[int] | None,
                    ds: Dataset | None = None) -> Response:
    """A multipart/related response of frames (all of them when ``indexes`` is None)."""
    choice = choose_frames(request, stored.syntax)
    ds = ds if ds is not None else read_header(stored.path)
    _pixel_source(stored, ds)  # errors here, before the response starts
    if not UID(stored.syntax).is_compressed:
        _native_frame_length(ds, frame_count(ds))
    chosen = list(range(frame_count(ds))) if indexes is None else indexes
    frames = frame_bytes(stored, ds, chosen, choice)
    boundary = multipart.new_boundary()
    syntax = stored.syntax if choice.as_stored else None
    return StreamingResponse(
        _multipart_frames(frames, choice.media_type, syntax, boundary),
        media_type=multipart.content_type(boundary, choice.media_type))


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frame_list}",
            summary="Retrieve frames (PS3.18 10.4.1.1.4)")
def retrieve_frames(request: Request, study: str, series: str, instance: str,
                    frame_list: str) -> Response:
    stored = stored_file(request.app.state.archive, study, series, instance)
    ds = read_header(stored.path)
    return frames_response(request, stored, parse_frame_list(frame_list, frame_count(ds)), ds)


def _value_bytes(path: Path, tag: int) -> bytes:
    """A top-level binary attribute's value, little endian."""
    ds = pydicom.dcmread(path, stop_before_pixels=tag != PIXEL_DATA)
    if tag not in ds:
        raise Problem(404, f"no bulk data attribute {tag:08X} in the instance")
    elem = ds[tag]
    value = elem.value
    if not isinstance(value, bytes | bytearray):
        raise Problem(404, f"attribute {tag:08X} is not bulk data")
    if not ds.original_encoding[1] and elem.VR in WORD_SIZES:
        return _swap(bytes(value), WORD_SIZES[str(elem.VR)])
    return bytes(value)


@router.get("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
            summary="Retrieve bulk data (PS3.18 10.4.1.1.5)")
def retrieve_bulkdata(request: Request, study: str, series: str, instance: str,
                      tag: str) -> Response:
    stored = stored_file(request.app.state.archive, study, series, instance)
    try:
        number = int(tag, 16)
    except ValueError:
        raise Problem(404, f"no bulk data {tag!r}: a tag of 8 hexadecimal digits expected"
                      ) from None
    if number == PIXEL_DATA:
        return frames_response(request, stored, None)
    for media in parse_accept(request.headers.get("accept")):
        if media.type in ("*/*", "*", "multipart/*") or (
                media.type == MULTIPART_RELATED and media.params.get(
                    "type", OCTET_STREAM).lower() in (OCTET_STREAM, "*/*", "application/*")):
            break
    else:
        raise not_acceptable(request, f'{MULTIPART_RELATED}; type="{OCTET_STREAM}"')
    value = _value_bytes(stored.path, number)
    boundary = multipart.new_boundary()
    return StreamingResponse(_multipart_frames(iter([value]), OCTET_STREAM, None, boundary),
                             media_type=multipart.content_type(boundary, OCTET_STREAM))
