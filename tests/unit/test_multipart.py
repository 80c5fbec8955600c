"""multipart/related for DICOMweb: streaming reader and writer (RFC 2046 §5.1.1, RFC 2387)."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import random
import re
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from pathlib import Path
from typing import BinaryIO

import pytest

from pacsnode.web.multipart import (
    MultipartError,
    Part,
    content_type,
    file_chunks,
    new_boundary,
    parse_content_type,
    part_content_type,
    read_parts,
    write_parts,
)

BOUNDARY = "b0undary-7f3a"
DELIM = b"\r\n--" + BOUNDARY.encode()


class Files:
    """A ``new_file`` for read_parts that records every file it hands out."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.opened: list[tuple[BinaryIO, Path]] = []

    def __call__(self) -> tuple[BinaryIO, Path]:
        path = self.directory / f"part-{len(self.opened)}"
        file = path.open("wb")
        self.opened.append((file, path))
        return file, path

    def assert_clean(self, yielded: list[Part]) -> None:
        """Every file is closed; exactly the yielded parts' files still exist."""
        assert all(file.closed for file, _ in self.opened)
        kept = {part.path for part in yielded}
        for _, path in self.opened:
            assert path.exists() == (path in kept), path
        assert sorted(p.name for p in self.directory.iterdir()) == sorted(p.name for p in kept)


async def _chunked(data: bytes, size: int | None) -> AsyncIterator[bytes]:
    if size is None:
        yield data
        return
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _collect(
    chunks: AsyncIterator[bytes], files: Files, boundary: str = BOUNDARY, **kwargs: int
) -> list[Part]:
    return [part async for part in read_parts(chunks, boundary, files, **kwargs)]


def parse(
    body: bytes,
    tmp_path: Path,
    size: int | None = None,
    boundary: str = BOUNDARY,
    **kwargs: int,
) -> tuple[list[Part], Files]:
    files = Files(tmp_path)
    parts = asyncio.run(_collect(_chunked(body, size), files, boundary, **kwargs))
    files.assert_clean(parts)
    return parts, files


def parse_error(
    body: bytes, tmp_path: Path, size: int | None = None, **kwargs: int
) -> tuple[str, list[Part], Files]:
    """Parse a bad body; return the error message, the parts yielded before it, the files."""
    files = Files(tmp_path)
    yielded: list[Part] = []

    async def run() -> None:
        async for part in read_parts(_chunked(body, size), BOUNDARY, files, **kwargs):
            yielded.append(part)

    with pytest.raises(MultipartError) as info:
        asyncio.run(run())
    files.assert_clean(yielded)
    return str(info.value), yielded, files


def encode(parts: Iterable[tuple[dict[str, str], bytes]], boundary: str = BOUNDARY) -> bytes:
    async def source() -> AsyncIterator[tuple[dict[str, str], bytes]]:
        for part in parts:
            yield part

    async def run() -> bytes:
        return b"".join([chunk async for chunk in write_parts(source(), boundary)])

    return asyncio.run(run())


def tricky_contents() -> list[bytes]:
    """Random binary bodies (fixed seed) full of near-delimiters, none an exact delimiter."""
    rng = random.Random(20240611)
    b = BOUNDARY.encode()
    specials = [
        b"\r\n",
        b"\r",
        b"\n",
        b"--",
        b"--" + b,  # at a line start only after a bare LF / inside a line
        b"\r\n--" + b[:-1],  # delimiter missing its last character
        b"\r\n-" + b,
        b"\n--" + b + b"--",
        b"\r\r\n--" + b[:5],
        b"--" + b + b"--\r\n",
    ]
    contents = []
    for length in (0, 1, 2, 100, 5000, 20000):
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < length:
            if rng.random() < 0.3:
                pieces.append(rng.choice(specials))
            else:
                pieces.append(rng.randbytes(rng.randint(1, 64)))
        content = b"".join(pieces)[:length]
        while DELIM in content:  # the specials may happen to form one
            content = content.replace(DELIM, DELIM[:-1] + b"!")
        contents.append(content)
    # Bodies ending (or starting) with what precedes a delimiter.
    contents += [b"\r\n", b"\r", b"-", b"data\r\n--" + b[:3], b"\r\n--" + b[:-1] + b"\r\n"]
    assert all(DELIM not in content for content in contents)
    assert sum(b"\r\n--" + b[:-1] in content for content in contents) >= 3
    return contents


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, None])
def test_round_trip(tmp_path: Path, chunk_size: int | None) -> None:
    contents = tricky_contents()
    headers = [
        {
            "Content-Type": part_content_type("application/dicom", "1.2.840.10008.1.2.1"),
            "Content-Location": f"/studies/1.2.3/series/4.5/instances/{i}",
            "X-Index": str(i),
        }
        for i in range(len(contents))
    ]
    body = encode(zip(headers, contents, strict=True))
    parts, files = parse(body, tmp_path, chunk_size)

    assert len(parts) == len(contents) == len(files.opened)
    for i, (part, content) in enumerate(zip(parts, contents, strict=True)):
        assert part.path.read_bytes() == content
        assert part.size == len(content)
        assert part.content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
        assert part.content_location == f"/studies/1.2.3/series/4.5/instances/{i}"
        assert part.headers == {
            "content-type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
            "content-location": f"/studies/1.2.3/series/4.5/instances/{i}",
            "x-index": str(i),
        }


def test_write_parts_exact_encoding() -> None:
    body = encode([({"Content-Type": "application/dicom"}, b"AB"), ({}, b"")], "xyz")
    assert body == (
        b"--xyz\r\nContent-Type: application/dicom\r\n\r\nAB\r\n--xyz\r\n\r\n\r\n--xyz--\r\n"
    )
    assert encode([], "xyz") == b"--xyz--\r\n"


def test_write_parts_streams_chunked_bodies(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    data = random.Random(7).randbytes(10_000)
    source.write_bytes(data)

    async def parts() -> AsyncIterator[tuple[dict[str, str], AsyncIterator[bytes] | bytes]]:
        yield {"Content-Type": "application/octet-stream"}, file_chunks(source, chunk_size=999)
        yield {"Content-Type": "application/octet-stream"}, file_chunks(source, 100, length=50)

    async def run() -> list[bytes]:
        return [chunk async for chunk in write_parts(parts(), "q")]

    chunks = asyncio.run(run())
    assert sum(len(c) == 999 for c in chunks) == 10  # file chunks passed through as they are
    body = b"".join(chunks)
    out = tmp_path / "out"
    out.mkdir()
    result, _ = parse(body, out, 1000, boundary="q")
    assert [p.path.read_bytes() for p in result] == [data, data[100:150]]


def test_write_parts_rejects_bad_boundary_and_headers() -> None:
    with pytest.raises(ValueError, match="boundary"):
        encode([({}, b"x")], "bad\r\nboundary")
    with pytest.raises(ValueError, match="boundary"):
        encode([({}, b"x")], "x" * 71)
    with pytest.raises(ValueError, match="Invalid header"):
        encode([({"X-Evil": "a\r\nInjected: yes"}, b"x")])
    with pytest.raises(ValueError, match="Invalid header"):
        encode([({"Bad Name": "a"}, b"x")])


# ------------------------------------------------------------------------------ reader


def test_preamble_epilogue_and_padding_ignored(tmp_path: Path) -> None:
    body = (
        b"This is the preamble. --" + BOUNDARY.encode() + b"X is not a delimiter.\r\n"
        b"--" + BOUNDARY.encode() + b" \t \r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"one\r\n"
        b"--" + BOUNDARY.encode() + b"\t\r\n"
        b"\r\n"
        b"two"
        b"\r\n--" + BOUNDARY.encode() + b"--  \r\n"
        b"This is the epilogue.\r\n--" + BOUNDARY.encode() + b"\r\nContent-Type: x/y\r\n\r\nz"
    )
    for size in (1, 3, None):
        out = tmp_path / str(size)
        out.mkdir()
        parts, _ = parse(body, out, size)
        assert [p.path.read_bytes() for p in parts] == [b"one", b"two"]
        assert [p.headers for p in parts] == [{"content-type": "text/plain"}, {}]
        assert [p.content_type for p in parts] == ["text/plain", None]


def test_delimiter_at_very_start_and_close_without_crlf(tmp_path: Path) -> None:
    body = b"--" + BOUNDARY.encode() + b"\r\nA: 1\r\n\r\nbody\r\n--" + BOUNDARY.encode() + b"--"
    parts, _ = parse(body, tmp_path, 2)
    assert [(p.headers, p.path.read_bytes(), p.size) for p in parts] == [({"a": "1"}, b"body", 4)]


def test_boundary_followed_by_other_characters_is_data(tmp_path: Path) -> None:
    b = BOUNDARY.encode()
    content = b"x\r\n--" + b + b"X\r\n--" + b + b"-y"
    body = b"--" + b + b"\r\n\r\n" + content + b"\r\n--" + b + b"--\r\n"
    for size in (1, None):
        out = tmp_path / str(size)
        out.mkdir()
        parts, _ = parse(body, out, size)
        assert [p.path.read_bytes() for p in parts] == [content]


def test_part_without_headers_or_empty_line(tmp_path: Path) -> None:
    """``--b CRLF`` right before the next delimiter: a part with no headers and no body."""
    b = BOUNDARY.encode()
    body = b"--" + b + b"\r\n\r\n--" + b + b"\r\nA: b\r\n\r\nx\r\n--" + b + b"--"
    for size in (1, None):
        out = tmp_path / str(size)
        out.mkdir()
        parts, _ = parse(body, out, size)
        assert [(p.headers, p.path.read_bytes()) for p in parts] == [({}, b""), ({"a": "b"}, b"x")]


def test_close_delimiter_only_yields_no_part(tmp_path: Path) -> None:
    parts, files = parse(b"preamble\r\n--" + BOUNDARY.encode() + b"--\r\n", tmp_path)
    assert parts == []
    assert files.opened == []


def test_header_fields(tmp_path: Path) -> None:
    b = BOUNDARY.encode()
    body = (
        b"--" + b + b"\r\n"
        b"CONTENT-TYPE:application/dicom;\r\n"
        b"  transfer-syntax=1.2.840.10008.1.2.4.50\r\n"
        b"Content-Location:   http://host/a%20b   \r\n"
        b"X-Dup: 1\r\n"
        b"x-dup: 2\r\n"
        b"X-Empty:\r\n"
        b"X-Utf8: Gr\xc3\xbc\xc3\x9fe\r\n"
        b"\r\n"
        b"payload\r\n--" + b + b"--\r\n"
    )
    parts, _ = parse(body, tmp_path, 5)
    assert parts[0].headers == {
        "content-type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50",
        "content-location": "http://host/a%20b",
        "x-dup": "1, 2",
        "x-empty": "",
        "x-utf8": "Grüße",
    }
    assert parse_content_type(parts[0].content_type or "") == (
        "application/dicom",
        {"transfer-syntax": "1.2.840.10008.1.2.4.50"},
    )


def test_body_as_dicomweb_client_writes_it(tmp_path: Path) -> None:
    """Encoded by hand the way dicomweb-client / requests-toolbelt do it: no preamble, no
    CRLF after the close delimiter, a quoted boundary in the Content-Type."""
    header = 'multipart/related; type="application/dicom"; boundary="==py:bound=="'
    media_type, params = parse_content_type(header)
    assert (media_type, params["type"]) == ("multipart/related", "application/dicom")
    boundary = params["boundary"]
    assert boundary == "==py:bound=="
    datasets = [b"\x00" * 128 + b"DICM" + bytes(range(256)), b"DICM\r\n\r\n--==py:bound="]
    body = b""
    for data in datasets:
        body += b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
        body += data + b"\r\n"
    body += b"--" + boundary.encode() + b"--"
    parts, _ = parse(body, tmp_path, 100, boundary=boundary)
    assert [p.path.read_bytes() for p in parts] == datasets
    assert [p.content_type for p in parts] == ["application/dicom"] * 2


def test_body_as_python_email_writes_it(tmp_path: Path) -> None:
    message = MIMEMultipart("related", type="application/dicom")
    message.preamble = "This is a multi-part message in MIME format."
    message.epilogue = "That's all."
    texts = ["first part\r\nwith lines\r\n", "second", ""]
    for i, text in enumerate(texts):
        part = MIMEBase("application", "dicom")
        part.set_payload(text)
        part["Content-Location"] = f"part{i}"
        message.attach(part)
    raw = message.as_bytes(policy=email.policy.SMTP)  # CRLF line endings
    _, _, body = raw.partition(b"\r\n\r\n")
    media_type, params = parse_content_type(str(message["Content-Type"]))
    assert params["boundary"] == message.get_boundary()
    assert media_type == "multipart/related"
    assert params["type"] == "application/dicom"
    parts, _ = parse(body, tmp_path, 3, boundary=params["boundary"])
    assert [p.path.read_bytes().decode() for p in parts] == texts
    assert [p.content_location for p in parts] == ["part0", "part1", "part2"]
    assert all(p.headers["mime-version"] == "1.0" for p in parts)


# ------------------------------------------------------------------------------ errors


def _two_parts() -> bytes:
    return encode([({"Content-Type": "a/b"}, b"first body"), ({"Content-Type": "c/d"}, b"2nd")])


def test_every_truncation_is_an_error(tmp_path: Path) -> None:
    body = _two_parts()
    complete = len(body) - 2  # the close delimiter's final CRLF is optional
    first_done = body.index(DELIM + b"\r\n") + len(DELIM) + 1  # part 1's delimiter seen
    for cut in range(complete):
        out = tmp_path / str(cut)
        out.mkdir()
        message, yielded, files = parse_error(body[:cut], out, 3)
        if body.find(b"--" + BOUNDARY.encode(), 0, cut) < 0 or cut < len(BOUNDARY) + 2:
            assert "does not occur" in message
        else:
            assert "truncated" in message
            assert f"'--{BOUNDARY}--'" in message
        # Only complete parts are yielded, each with its full body.
        assert [p.path.read_bytes() for p in yielded] == (
            [b"first body"] if cut >= first_done else []
        )
        assert len(files.opened) >= len(yielded)


def test_truncated_in_body_deletes_file_in_progress(tmp_path: Path) -> None:
    body = _two_parts()
    cut = body.rindex(b"2nd") + 2
    message, yielded, files = parse_error(body[:cut], tmp_path, 4)
    assert message == (
        f"The multipart body is truncated: it ends in body part 2, before the close "
        f"delimiter '--{BOUNDARY}--' (RFC 2046 §5.1.1)."
    )
    assert [p.path.read_bytes() for p in yielded] == [b"first body"]
    assert len(files.opened) == 2
    assert not files.opened[1][1].exists()


@pytest.mark.parametrize(
    "body", [b"", b"just some bytes\r\n", b"--other\r\n\r\nx\r\n--other--\r\n"]
)
def test_no_boundary(tmp_path: Path, body: bytes) -> None:
    message, yielded, files = parse_error(body, tmp_path, 1)
    assert message == (
        f"The body is not multipart data with boundary '{BOUNDARY}': "
        f"the delimiter '--{BOUNDARY}' does not occur in it."
    )
    assert yielded == []
    assert files.opened == []


@pytest.mark.parametrize("chunk_size", [1, 1000, None])
def test_header_block_too_large(tmp_path: Path, chunk_size: int | None) -> None:
    body = encode([({"A": "1"}, b"ok"), ({"X-Big": "v" * 20_000}, b"body")])
    message, yielded, files = parse_error(body, tmp_path, chunk_size)
    assert "header block of body part 2 is larger than the limit of 16384 bytes" in message
    assert [p.path.read_bytes() for p in yielded] == [b"ok"]
    assert len(files.opened) == 1
    # Just at the limit is fine.
    fits = encode([({"X-Big": "v" * (16384 - len("X-Big: "))}, b"body")])
    out = tmp_path / "fits"
    out.mkdir()
    parts, _ = parse(fits, out, chunk_size)
    assert len(parts[0].headers["x-big"]) == 16384 - len("X-Big: ")


def test_header_block_never_ending_is_bounded(tmp_path: Path) -> None:
    body = b"--" + BOUNDARY.encode() + b"\r\nX: " + b"y" * 100_000
    message, _, _ = parse_error(body, tmp_path, 1, max_header_size=1000)
    assert "larger than the limit of 1000 bytes" in message


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_part_too_large(tmp_path: Path, chunk_size: int | None) -> None:
    body = encode([({}, b"a" * 100), ({}, b"b" * 101), ({}, b"c")])
    message, yielded, files = parse_error(body, tmp_path, chunk_size, max_part_size=100)
    assert message == "Body part 2 is larger than the limit of 100 bytes."
    assert [p.path.read_bytes() for p in yielded] == [b"a" * 100]
    assert len(files.opened) == 2
    assert not files.opened[1][1].exists()


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (b"No colon here\r\n\r\nx", "Malformed header line in body part 1: 'No colon here'"),
        (b"Bad Name: v\r\n\r\nx", "Malformed header line in body part 1: 'Bad Name: v'"),
        (b" folded: first\r\n\r\nx", "starts with a continuation line"),
        (b"A: 1\nB: 2\n\nx", "end with a bare LF"),
    ],
)
def test_malformed_headers(tmp_path: Path, part: bytes, expected: str) -> None:
    body = b"--" + BOUNDARY.encode() + b"\r\n" + part + DELIM + b"--\r\n"
    message, yielded, files = parse_error(body, tmp_path, 2)
    assert expected in message
    assert yielded == []
    assert files.opened == []


def test_malformed_boundary_line(tmp_path: Path) -> None:
    body = b"--" + BOUNDARY.encode() + b" trailing junk\r\n\r\nx" + DELIM + b"--"
    message, _, _ = parse_error(body, tmp_path)
    assert "the boundary line before body part 1 has b'tr' where CRLF should follow" in message


def test_invalid_boundary_argument(tmp_path: Path) -> None:
    for boundary in ("", "x" * 257, "caf\u00e9", "a\r\nb"):
        files = Files(tmp_path)
        with pytest.raises(MultipartError, match="Invalid multipart boundary"):
            asyncio.run(_collect(_chunked(b"--x--", None), files, boundary))


def test_stream_error_and_early_close_delete_file_in_progress(tmp_path: Path) -> None:
    body = _two_parts()
    cut = body.rindex(b"2nd") + 1

    async def disconnecting() -> AsyncIterator[bytes]:
        yield body[:cut]
        raise ConnectionResetError("client went away")

    files = Files(tmp_path)
    yielded: list[Part] = []

    async def run() -> None:
        async for part in read_parts(disconnecting(), BOUNDARY, files):
            yielded.append(part)

    with pytest.raises(ConnectionResetError):
        asyncio.run(run())
    assert len(files.opened) == 2
    files.assert_clean(yielded)
    assert [p.path.read_bytes() for p in yielded] == [b"first body"]

    # The consumer stops after the first part (aclose): nothing but that part is left.
    out = tmp_path / "early"
    out.mkdir()
    files = Files(out)

    async def first_only() -> list[Part]:
        async with contextlib.aclosing(read_parts(_chunked(body, 5), BOUNDARY, files)) as gen:
            async for part in gen:
                return [part]
        return []

    first = asyncio.run(first_only())
    files.assert_clean(first)
    assert [p.path.read_bytes() for p in first] == [b"first body"]


# ------------------------------------------------------------------------------ memory


def test_large_part_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    block = random.Random(1).randbytes(1 << 16)
    assert DELIM not in block + block
    count = 800  # 50 MiB
    head = b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
    tail = DELIM + b"--\r\n"
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(block)

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for _ in range(count):
            yield block
        yield tail

    files = Files(tmp_path)
    tracemalloc.start()
    try:
        parts = asyncio.run(_collect(chunks(), files))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, peak
    files.assert_clean(parts)
    assert len(parts) == 1
    assert parts[0].size == count * len(block)
    digest = hashlib.sha256()
    with parts[0].path.open("rb") as f:
        while data := f.read(1 << 20):
            digest.update(data)
    assert digest.hexdigest() == expected.hexdigest()


# ------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            'multipart/related; type="application/dicom"; boundary=abc',
            ("multipart/related", {"type": "application/dicom", "boundary": "abc"}),
        ),
        (
            'Multipart/Related ;TYPE = "application/dicom+xml" ; Boundary="a;b=c \\"q\\" d"',
            ("multipart/related", {"type": "application/dicom+xml", "boundary": 'a;b=c "q" d'}),
        ),
        (
            "application/dicom; transfer-syntax=1.2.840.10008.1.2.1;",
            ("application/dicom", {"transfer-syntax": "1.2.840.10008.1.2.1"}),
        ),
        ("APPLICATION/JSON", ("application/json", {})),
        ("text/plain;; charset=utf-8; flag", ("text/plain", {"charset": "utf-8", "flag": ""})),
        ("", ("", {})),
    ],
)
def test_parse_content_type(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(value) == expected


def test_content_type_and_boundary() -> None:
    assert content_type("abc", "application/dicom") == (
        'multipart/related; type="application/dicom"; boundary=abc'
    )
    assert content_type("a:b", "application/octet-stream", "1.2.840.10008.1.2.4.50") == (
        'multipart/related; type="application/octet-stream"; '
        'transfer-syntax=1.2.840.10008.1.2.4.50; boundary="a:b"'
    )
    assert part_content_type("application/dicom") == "application/dicom"
    assert part_content_type("application/dicom", "1.2.840.10008.1.2.1") == (
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    )
    boundaries = {new_boundary() for _ in range(100)}
    assert len(boundaries) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", b) for b in boundaries)
    b = next(iter(boundaries))
    assert parse_content_type(content_type(b, "application/dicom"))[1]["boundary"] == b


def test_file_chunks(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = bytes(range(256)) * 40
    path.write_bytes(data)

    async def read(*args: int, **kwargs: int) -> list[bytes]:
        return [chunk async for chunk in file_chunks(path, *args, **kwargs)]

    chunks = asyncio.run(read(0, 1000))
    assert [len(c) for c in chunks] == [1000] * 10 + [240]
    assert b"".join(chunks) == data
    assert b"".join(asyncio.run(read(10_000))) == data[10_000:]
    assert asyncio.run(read(5, 3, length=7)) == [data[5:8], data[8:11], data[11:12]]
    assert asyncio.run(read(10_240)) == []
    assert b"".join(asyncio.run(read(10_200, length=1000))) == data[10_200:]
