"""MIME ``multipart/related`` bodies for DICOMweb, read and written as streams.

DICOMweb (DICOM PS3.18 §8.6) carries several objects in one HTTP message as
``multipart/related`` (RFC 2387) with the generic multipart syntax of RFC 2046 §5.1:
STOW-RS requests upload instances this way, WADO-RS responses return them.  A body looks
like::

    preamble (ignored)
    CRLF --boundary [transport padding] CRLF
    Header: value CRLF
    ...
    CRLF
    body of part 1
    CRLF --boundary [transport padding] CRLF
    ...
    CRLF --boundary-- [transport padding] [CRLF epilogue (ignored)]

Reading (:func:`read_parts`) never holds a part in memory: each part's body is written to a
file given by the caller as the chunks arrive, and only the bytes that might begin the next
delimiter (about ``len(boundary) + 6``) are carried over from one chunk to the next, so a
2 GB upload costs kilobytes.  Writing (:func:`write_parts`) yields the encoded message chunk
by chunk, for a streaming response.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

__all__ = [
    "MultipartError",
    "Part",
    "content_type",
    "file_chunks",
    "new_boundary",
    "parse_content_type",
    "part_content_type",
    "read_parts",
    "write_parts",
]

CRLF = b"\r\n"

#: RFC 9110 §5.6.2 ``token`` (also RFC 2045's ``token`` minus nothing that matters here).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 2046 §5.1.1 ``bchars``: characters allowed in a boundary (space not last).
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
#: One ``; name=value`` parameter of a Content-Type (RFC 2045 §5.1), value quoted or not.
_PARAM = re.compile(
    r"""\s*;\s*(?P<name>[^\s;=]+)\s*(?:=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^;]*))?""",
    re.DOTALL,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
#: Longest boundary :func:`read_parts` accepts (RFC 2046 allows 70; be lenient, but bounded,
#: since it sets how much is carried over between chunks).
_MAX_READ_BOUNDARY = 256


class MultipartError(ValueError):
    """The body is not a well-formed ``multipart`` body, or breaks a limit.

    The message says what is wrong in words fit for the ``detail`` of an HTTP 400
    ``application/problem+json`` response.
    """


# ------------------------------------------------------------------------------ Content-Type


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its media type and parameters (RFC 2045 §5.1).

    The media type and the parameter names are lower-cased (they are case-insensitive);
    values keep their case, quoted values are unquoted (``\\"`` → ``"``), so
    ``multipart/related; type="application/dicom"; boundary="a;b=c"`` gives
    ``("multipart/related", {"type": "application/dicom", "boundary": "a;b=c"})``.
    A parameter without ``=`` gets the value ``""``; of repeated parameters the last wins.
    """
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    pos = 0
    rest = ";" + rest if rest else ""
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            # Not a parameter (e.g. a stray ';;' or garbage): skip to the next ';'.
            nxt = rest.find(";", pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        pos = match.end()
        raw = (match.group("value") or "").strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        params[match.group("name").lower()] = raw
    return media_type.strip().lower(), params


def _quote(value: str) -> str:
    """``value`` as a parameter value: bare if a token, else a quoted-string (RFC 2045 §5.1)."""
    if _TOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_boundary() -> str:
    """A fresh random boundary (32 hex digits of a UUID4, valid by RFC 2046 §5.1.1).

    With 122 random bits it will not occur in any body part, which RFC 2046 §5.1.1 requires
    and :func:`write_parts` does not check.
    """
    return uuid.uuid4().hex


def content_type(boundary: str, part_type: str, transfer_syntax: str | None = None) -> str:
    """The Content-Type of a ``multipart/related`` message of ``part_type`` parts.

    E.g. ``multipart/related; type="application/dicom"; boundary=0f3c…``.  The ``type``
    parameter is the media type of the parts (RFC 2387 §3.1, PS3.18 §8.6.1.2).

    ``transfer_syntax``, if given, adds ``transfer-syntax=UID``: PS3.18 §8.7.3.4 has the
    message's Content-Type carry the transfer syntax of its (first) part, for a response
    whose parts are all in one transfer syntax.  Each part says its own transfer syntax in
    its Content-Type anyway (see :func:`part_content_type`); pass None when they differ.
    """
    value = f"multipart/related; type={_quote_always(part_type)}"
    if transfer_syntax is not None:
        value += f"; transfer-syntax={_quote(transfer_syntax)}"
    return f"{value}; boundary={_quote(boundary)}"


def part_content_type(media_type: str, transfer_syntax: str | None = None) -> str:
    """The Content-Type of one part, e.g. ``application/dicom; transfer-syntax=1.2.840.…``
    (PS3.18 §8.7.3.4: the transfer syntax of a DICOM part is a parameter of its type)."""
    if transfer_syntax is None:
        return media_type
    return f"{media_type}; transfer-syntax={_quote(transfer_syntax)}"


def _quote_always(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------ reading


@dataclass
class Part:
    """One body part read by :func:`read_parts`; its body is in the file ``path``.

    ``headers`` has lower-cased names (values as sent, surrounding blanks removed; a
    repeated header's values joined with ``", "``); ``content_type`` is the raw value of its
    ``Content-Type`` header (parse it with :func:`parse_content_type`), None without one;
    ``size`` is the body's length in bytes.
    """

    headers: dict[str, str]
    content_type: str | None
    path: Path
    size: int

    @property
    def content_location(self) -> str | None:
        """The ``Content-Location`` header (PS3.18 §8.6.1.1 bulk data URIs), if any."""
        return self.headers.get("content-location")


# What lies right after a ``CRLF--boundary`` found in the buffer.
_NEED = 0  # not enough bytes yet to tell
_OPEN = 1  # a delimiter: another part follows
_CLOSE = 2  # the close delimiter ``--boundary--``
_DATA = 3  # not a delimiter (e.g. ``--boundaryX``): ordinary data

# Parser states.
_PREAMBLE = 0  # before the first delimiter
_BOUNDARY_LINE = 1  # after ``--boundary``: transport padding, then CRLF
_HEADERS = 2  # in a part's header block
_BODY = 3  # in a part's body
_EPILOGUE = 4  # after the close delimiter

_SP, _HT, _CR, _DASH = 0x20, 0x09, 0x0D, 0x2D


class _Parser:
    """The push parser behind :func:`read_parts`: :meth:`feed` bytes, then call
    :meth:`next_part` until it returns None (it needs more bytes)."""

    def __init__(
        self,
        boundary: str,
        new_file: Callable[[], tuple[BinaryIO, Path]],
        max_part_size: int | None,
        max_header_size: int,
    ) -> None:
        self._boundary = boundary
        # RFC 2046 §5.1.1: a delimiter is CRLF "--" boundary; the dash-boundary opening the
        # first part may start the body without a CRLF, so the buffer starts with one.
        self._delim = CRLF + b"--" + boundary.encode("ascii")
        self._new_file = new_file
        self._max_part_size = max_part_size
        self._max_header_size = max_header_size
        self._buf = bytearray(CRLF)
        self._pos = 0  # bytes of _buf before _pos are consumed
        self._eof = False
        self._state = _PREAMBLE
        self._index = 0  # 1-based number of the current part
        self._header_scanned = 0  # bytes after _pos searched for the header block's end
        self._headers: dict[str, str] = {}
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0

    # -- input

    def feed(self, chunk: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]  # O(1) in CPython: moves the start of the bytearray
            self._pos = 0
        if self._state == _EPILOGUE:
            self._buf.clear()
            return
        self._buf += chunk

    def end(self) -> None:
        """No more bytes will come."""
        self._eof = True

    # -- output

    def next_part(self) -> Part | None:
        """The next complete part, or None when more bytes are needed (or after the close
        delimiter).  Raises :class:`MultipartError` once the input cannot be completed."""
        while True:
            state = self._state
            if state == _BODY:
                result = self._body()
            elif state == _HEADERS:
                result = self._header_block()
            elif state == _BOUNDARY_LINE:
                result = self._boundary_line()
            elif state == _PREAMBLE:
                result = self._preamble()
            else:  # _EPILOGUE: RFC 2046 §5.1.1, the epilogue is to be ignored.
                self._pos = len(self._buf)
                return None
            if isinstance(result, Part):
                return result
            if result is False:
                if self._eof:
                    self._truncated()
                return None

    def abandon(self) -> None:
        """Close and delete the file of the part in progress, if any."""
        file, path = self._file, self._path
        self._file = self._path = None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    # -- states; each returns a Part, True (progress: go on) or False (needs more bytes)

    def _classify(self, idx: int) -> int:
        """What follows the ``CRLF--boundary`` at ``idx`` (RFC 2046 §5.1.1: a delimiter
        line is the boundary, optional transport padding, CRLF; the close delimiter has
        ``--`` after the boundary).  Like most readers, a boundary followed by another
        character (``--boundaryX``) is taken as data, not as a malformed delimiter."""
        buf, j = self._buf, idx + len(self._delim)
        if j >= len(buf):
            return _NEED
        c = buf[j]
        if c in (_SP, _HT, _CR):
            return _OPEN
        if c == _DASH:
            if j + 1 >= len(buf):
                return _NEED
            if buf[j + 1] == _DASH:
                return _CLOSE
        return _DATA

    def _preamble(self) -> bool:
        buf, delim = self._buf, self._delim
        idx = buf.find(delim, self._pos)
        if idx < 0:
            # Keep only what may be the start of the first delimiter.
            self._pos = max(self._pos, len(buf) - (len(delim) - 1))
            return False
        kind = self._classify(idx)
        if kind == _NEED:
            self._pos = idx
            return False
        if kind == _DATA:
            self._pos = idx + 1
        elif kind == _OPEN:
            self._pos = idx + len(delim)
            self._state = _BOUNDARY_LINE
        else:  # a close delimiter and no part at all
            self._pos = idx + len(delim) + 2
            self._state = _EPILOGUE
        return True

    def _boundary_line(self) -> bool:
        """Skip the transport padding after a boundary (RFC 2046 §5.1.1: LWSP, added by
        gateways, to be ignored), then its CRLF."""
        buf, pos, end = self._buf, self._pos, len(self._buf)
        while pos < end and buf[pos] in (_SP, _HT):
            pos += 1
        self._pos = pos  # padding is dropped as it comes: no limit needed
        if end - pos < 2:
            if pos == end or buf[pos] == _CR:
                return False
        elif buf[pos] == _CR and buf[pos + 1] == 0x0A:
            self._pos = pos + 2
            self._state = _HEADERS
            self._index += 1
            self._header_scanned = 0
            return True
        raise MultipartError(
            f"Malformed multipart body: the boundary line before body part {self._index + 1} "
            f"has {bytes(buf[pos : pos + 2])!r} where CRLF should follow '--{self._boundary}' "
            "(RFC 2046 §5.1.1)."
        )

    def _header_block(self) -> Part | bool:
        """A part's header fields up to the empty line (RFC 2046 §5.1.1 ``body-part :=
        MIME-part-headers [CRLF *OCTET]``); a part may have none."""
        buf, pos, delim = self._buf, self._pos, self._delim
        if len(buf) - pos < 2:
            return False
        if buf[pos] == _CR and buf[pos + 1] == 0x0A:
            # No header fields. The CRLF is the empty line ending them, unless it begins the
            # next delimiter: then the part has no headers and no body at all.
            have = bytes(buf[pos : pos + len(delim)])
            if delim.startswith(have):
                if len(have) < len(delim):
                    return False
                kind = self._classify(pos)
                if kind == _NEED:
                    return False
                if kind != _DATA:
                    self._start_body({})
                    return self._end_part(pos, kind)
            self._pos = pos + 2
            self._start_body({})
            return True
        # Resume the search where the last one stopped: a 1-byte chunk costs O(1).
        scanned = self._header_scanned
        end = buf.find(b"\r\n\r\n", pos + max(0, scanned - 3))
        # Without the end found, up to 3 bytes of the buffer may be the start of CRLF CRLF.
        size = (len(buf) - 3 if end < 0 else end) - pos
        if size > self._max_header_size:
            raise MultipartError(
                f"The header block of body part {self._index} is larger than the limit of "
                f"{self._max_header_size} bytes (or its end, an empty line, is missing)."
            )
        if end < 0:
            if buf.find(b"\n\n", pos + max(0, scanned - 1)) >= 0:
                raise MultipartError(
                    f"Malformed multipart body: the header lines of body part {self._index} "
                    "end with a bare LF; they must end with CRLF (RFC 2046 §5.1.1)."
                )
            self._header_scanned = len(buf) - pos
            return False
        headers = _parse_headers(bytes(buf[pos:end]), self._index)
        self._pos = end + 4
        self._start_body(headers)
        return True

    def _start_body(self, headers: dict[str, str]) -> None:
        self._headers = headers
        self._size = 0
        self._file, self._path = self._new_file()
        self._state = _BODY

    def _body(self) -> Part | bool:
        buf, delim = self._buf, self._delim
        idx = buf.find(delim, self._pos)
        if idx < 0:
            # Write all but what may be the start of the delimiter.
            self._write(len(buf) - (len(delim) - 1))
            return False
        kind = self._classify(idx)
        if kind == _NEED:
            self._write(idx)
            return False
        if kind == _DATA:
            self._write(idx + 1)
            return True
        # The CRLF before the boundary belongs to the delimiter, not to the body.
        self._write(idx)
        return self._end_part(idx, kind)

    def _end_part(self, idx: int, kind: int) -> Part:
        """Close the part whose delimiter (of ``kind``) starts at ``idx``."""
        file, path = self._file, self._path
        assert file is not None and path is not None
        file.close()  # if this fails, abandon() closes and deletes it
        self._file = self._path = None
        if kind == _CLOSE:
            self._pos = idx + len(self._delim) + 2
            self._state = _EPILOGUE
        else:
            self._pos = idx + len(self._delim)
            self._state = _BOUNDARY_LINE
        headers = self._headers
        return Part(headers, headers.get("content-type"), path, self._size)

    def _write(self, end: int) -> None:
        """Write ``_buf[_pos:end]`` to the part's file."""
        start = self._pos
        n = end - start
        if n <= 0:
            return
        limit = self._max_part_size
        if limit is not None and self._size + n > limit:
            raise MultipartError(
                f"Body part {self._index} is larger than the limit of {limit} bytes."
            )
        file = self._file
        assert file is not None
        with memoryview(self._buf) as view, view[start:end] as data:
            done = 0
            while done < n:  # a raw (unbuffered) file may write less than asked
                with data[done:] as rest:
                    written = file.write(rest)
                if not written or written < 0:
                    raise OSError(f"Could not write body part {self._index} to its file.")
                done += written
        self._size += n
        self._pos = end

    def _truncated(self) -> None:
        """Raise the error for input that ended in the current state."""
        if self._state == _PREAMBLE and self._buf.find(self._delim, self._pos) < 0:
            raise MultipartError(
                f"The body is not multipart data with boundary '{self._boundary}': "
                f"the delimiter '--{self._boundary}' does not occur in it."
            )
        where = {
            _PREAMBLE: "in the first boundary line",
            _BOUNDARY_LINE: f"in the boundary line before body part {self._index + 1}",
            _HEADERS: f"in the header block of body part {self._index}",
            _BODY: f"in body part {self._index}",
        }[self._state]
        raise MultipartError(
            f"The multipart body is truncated: it ends {where}, before the close delimiter "
            f"'--{self._boundary}--' (RFC 2046 §5.1.1)."
        )


def _parse_headers(block: bytes, index: int) -> dict[str, str]:
    """The header fields of a part (RFC 2046 §5.1.1 ``MIME-part-headers``: RFC 822 header
    fields, CRLF-separated, obsolete folding accepted).  Names are lower-cased."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    headers: dict[str, str] = {}
    last: str | None = None
    for line in text.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if last is None:
                raise MultipartError(
                    f"Malformed header block in body part {index}: it starts with a "
                    f"continuation line {line[:80]!r}."
                )
            value = (headers[last] + " " + line.strip(" \t")).strip(" \t")
            headers[last] = value
        else:
            name, colon, value = line.partition(":")
            if not colon or not _TOKEN.fullmatch(name):
                raise MultipartError(
                    f"Malformed header line in body part {index}: {line[:80]!r} "
                    "(expected 'Name: value')."
                )
            last = name.lower()
            value = value.strip(" \t")
            headers[last] = f"{headers[last]}, {value}" if last in headers else value
        if any(c in value for c in "\r\n\0"):
            raise MultipartError(
                f"Malformed header line in body part {index}: {line[:80]!r} contains a "
                "bare CR, LF or NUL."
            )
    return headers


def _check_read_boundary(boundary: str) -> None:
    if (
        not 0 < len(boundary) <= _MAX_READ_BOUNDARY
        or not boundary.isascii()
        or not boundary.isprintable()
    ):
        raise MultipartError(
            f"Invalid multipart boundary {boundary[:80]!r}: it must be 1 to "
            f"{_MAX_READ_BOUNDARY} printable ASCII characters (RFC 2046 §5.1.1 allows 70)."
        )


async def read_parts(
    chunks: AsyncIterable[bytes],
    boundary: str,
    new_file: Callable[[], tuple[BinaryIO, Path]],
    *,
    max_part_size: int | None = None,
    max_header_size: int = 16384,
) -> AsyncGenerator[Part, None]:
    """Read a ``multipart`` body (RFC 2046 §5.1.1, RFC 2387; PS3.18 §8.6) from ``chunks``,
    writing each part's body to a file of its own.

    ``chunks`` are the body's bytes in pieces of any size (e.g. Starlette's
    ``request.stream()``); ``boundary`` is the ``boundary`` parameter of the message's
    Content-Type (see :func:`parse_content_type`).  For each part, ``new_file()`` is called
    once its header block has been read; it returns a file open for binary writing (best
    buffered, e.g. ``open(path, "wb")``) and its path.  The part's body is written to it as
    it arrives — without the CRLF that belongs to the next delimiter — and the file is
    closed; the :class:`Part` is yielded once the delimiter ending it has been seen, so a
    body cut short never yields a short part.  Writes are plain blocking ``write`` calls on
    the event loop, each of at most one chunk.

    The preamble before the first delimiter and the epilogue after the close delimiter are
    ignored (RFC 2046 §5.1.1), as is the transport padding after a boundary.  A body whose
    close delimiter immediately follows its preamble yields no part.

    Memory: besides the chunk being parsed, only what may be the start of a delimiter (about
    ``len(boundary) + 6`` bytes) is carried over between chunks, and a header block of at
    most ``max_header_size`` bytes.

    Errors raise :class:`MultipartError`: no delimiter in the body at all; the body ends
    before the close delimiter ``--boundary--`` (truncated); a header block larger than
    ``max_header_size`` bytes or a malformed header or boundary line; a part body larger
    than ``max_part_size`` bytes (None: no limit); an invalid ``boundary``.  Errors of the
    chunk iterator or of the files (``OSError``) propagate as they are.

    File ownership: the file of a yielded part belongs to the caller (delete it when done).
    The file of the part in progress belongs to this generator: whenever it stops before
    that part is complete — a :class:`MultipartError`, another exception, cancellation, or
    the generator being closed early (``aclose()``; use ``contextlib.aclosing`` when
    breaking out of the loop) — it closes *and deletes* that file.  So after an error the
    caller only has the parts it was given to clean up.
    """
    _check_read_boundary(boundary)
    parser = _Parser(boundary, new_file, max_part_size, max_header_size)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            parser.feed(chunk)
            while (part := parser.next_part()) is not None:
                yield part
        parser.end()
        while (part := parser.next_part()) is not None:
            yield part
    finally:
        parser.abandon()


# ------------------------------------------------------------------------------ writing


def _check_write_boundary(boundary: str) -> None:
    if not _BOUNDARY.fullmatch(boundary):
        raise ValueError(
            f"Invalid multipart boundary {boundary!r}: RFC 2046 §5.1.1 allows 1 to 70 of "
            "the characters 0-9 A-Z a-z '()+_,-./:=? and space (not last)."
        )


def _encode_headers(headers: dict[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"Invalid header for a body part: {name!r}: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8")


async def write_parts(
    parts: AsyncIterable[tuple[dict[str, str], AsyncIterable[bytes] | bytes]],
    boundary: str,
) -> AsyncGenerator[bytes, None]:
    """Encode ``parts`` as a ``multipart`` body (RFC 2046 §5.1.1, RFC 2387; PS3.18 §8.6),
    chunk by chunk, for e.g. a Starlette ``StreamingResponse``.

    Each part is its header fields (e.g. ``{"Content-Type": part_content_type(...)}``; PS3.18
    §8.6.1.1) and its body, as bytes or as an async iterable of chunks (e.g.
    :func:`file_chunks`).  The output is, for each part, ``--boundary CRLF``, its headers as
    ``Name: value CRLF``, ``CRLF``, the body and ``CRLF`` (which, by RFC 2046 §5.1.1, belongs
    to the next delimiter); then ``--boundary-- CRLF``.  ``boundary`` must be a valid RFC 2046
    boundary (``ValueError`` otherwise) — use :func:`new_boundary`, as bodies are not
    searched for it.  Body chunks are passed through as they are, not copied.
    """
    _check_write_boundary(boundary)
    dash = b"--" + boundary.encode("ascii")
    first = True
    async for headers, body in parts:
        # The CRLF ending the previous part's body is the start of this delimiter.
        yield (dash if first else CRLF + dash) + CRLF + _encode_headers(headers) + CRLF
        first = False
        if isinstance(body, bytes | bytearray | memoryview):
            if body:
                yield bytes(body)
        else:
            async for chunk in body:
                if chunk:
                    yield chunk
    yield (dash if first else CRLF + dash) + b"--" + CRLF


async def file_chunks(
    path: Path,
    offset: int = 0,
    chunk_size: int = 1 << 20,
    *,
    length: int | None = None,
) -> AsyncGenerator[bytes, None]:
    """The bytes of the file ``path`` from ``offset`` (``length`` bytes of them, or to the
    end if None), in chunks of up to ``chunk_size`` bytes, read in a worker thread so the
    event loop is not blocked.  The file is closed when the iteration ends or is closed."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")

    def _open() -> BinaryIO:
        file = path.open("rb")
        try:
            file.seek(offset)
        except BaseException:
            file.close()
            raise
        return file

    file = await anyio.to_thread.run_sync(_open)
    try:
        remaining = length
        while remaining is None or remaining > 0:
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            data = await anyio.to_thread.run_sync(file.read, size)
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data
    finally:
        file.close()
