"""The fast header scan (explicit VR little endian) must read what pydicom reads, element
for element, on every real file it accepts, and give up (so that pydicom reads the file) on
everything else; ingest must index the same record either way."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from pacsnode.core import dicom_file, fast_header
from pacsnode.core.dicom_file import file_header
from pacsnode.index import records
from tests.unit.test_json_fast import _corpus


def _spooled_layout(path: Path) -> tuple[bytes, int] | None:
    """The file's data set behind pacsnode's own file meta, as a receiver spools it."""
    raw = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            return None
    ts = ds.file_meta.get("TransferSyntaxUID") if ds.file_meta is not None else None
    if not ts:
        return None
    offset = dicom_file._data_offset(io.BytesIO(raw))
    header = file_header(sop_class_uid=str(ds.get("SOPClassUID", "1.2.3")),
                         sop_instance_uid=str(ds.get("SOPInstanceUID", "1.2.3.4")),
                         transfer_syntax=str(ts), source_aet="PACSNODE")
    return header + raw[offset:], len(header)


def _raw(elem: object) -> tuple[object, ...]:
    if not isinstance(elem, RawDataElement):  # converted while reading (the character set)
        return (elem.tag, elem.VR, elem.value)  # type: ignore[attr-defined]
    return (elem.tag, elem.VR, elem.length, elem.value, elem.value_tell,
            elem.is_implicit_VR, elem.is_little_endian)


# Files with a transfer syntax (a spooled file always has one): the rest cannot be laid out.
CORPUS = [p for p in _corpus() if _spooled_layout(p) is not None]


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_scan_reads_what_pydicom_reads(path: Path, tmp_path: Path) -> None:
    laid_out = _spooled_layout(path)
    assert laid_out is not None
    content, offset = laid_out
    spooled = tmp_path / "spooled.dcm"
    spooled.write_bytes(content)
    with open(spooled, "rb") as fp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                slow = dicom_file.read_header(fp)
            except dicom_file.InvalidDicom:
                slow = None
        found = fast_header.scan(fp, offset, dicom_file.DEFER_SIZE)
        if found is None:
            return  # the fast path declined: pydicom reads it, as above
        try:
            fast = dicom_file.read_header_at(fp, offset)
        except dicom_file.InvalidDicom:
            assert slow is None, "the fast path refused a file pydicom's path reads"
            return
    assert slow is not None, "the fast path accepted a file pydicom's path refuses"
    assert fast.transfer_syntax == slow.transfer_syntax
    assert fast.data_offset == slow.data_offset == offset
    assert fast.dataset.original_encoding == slow.dataset.original_encoding
    assert list(fast.dataset.keys()) == list(slow.dataset.keys())
    for tag in slow.dataset.keys():  # noqa: SIM118 - raw elements, not converted ones
        slow_elem = slow.dataset.get_item(tag, keep_deferred=True)
        fast_elem = fast.dataset.get_item(tag, keep_deferred=True)
        if isinstance(slow_elem, RawDataElement) != isinstance(fast_elem, RawDataElement):
            slow_elem, fast_elem = slow.dataset[tag], fast.dataset[tag]
        assert _raw(fast_elem) == _raw(slow_elem), hex(tag)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (records.extract(fast.dataset, reuse=False)
                == records.extract(slow.dataset, reuse=False))


def test_most_of_the_corpus_takes_the_fast_path(tmp_path: Path) -> None:
    """Guard against a scan that silently declines everything (and so proves nothing)."""
    taken = 0
    for path in CORPUS:
        laid_out = _spooled_layout(path)
        if laid_out is None:
            continue
        content, offset = laid_out
        spooled = tmp_path / "f.dcm"
        spooled.write_bytes(content)
        with open(spooled, "rb") as fp:
            if fast_header.scan(fp, offset, dicom_file.DEFER_SIZE) is not None:
                taken += 1
    assert taken >= 30, taken


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    group, element = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return (group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr + b"\0\0"
                + len(value).to_bytes(4, "little") + value)
    return (group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr
            + len(value).to_bytes(2, "little") + value)


def _file(tmp_path: Path, body: bytes) -> tuple[Path, int]:
    header = file_header(sop_class_uid="1.2.840.10008.5.1.4.1.1.7", sop_instance_uid="1.2.3",
                         transfer_syntax="1.2.840.10008.1.2.1", source_aet="PACSNODE")
    path = tmp_path / "x.dcm"
    path.write_bytes(header + body)
    return path, len(header)


@pytest.mark.parametrize("body", [
    # an undefined-length sequence before the pixel data
    _element(0x00080016, b"UI", b"1.2\0") + bytes.fromhex("0800 1511 5351 0000 ffffffff")
    + bytes.fromhex("feff dde0 00000000"),
    # a VR that is not a standard one
    _element(0x00080016, b"UI", b"1.2\0") + _element(0x00080018, b"ZZ", b"12"),
    # a value that runs past the end of the file
    _element(0x00080016, b"UI", b"1.2\0") + _element(0x00080018, b"UI", b"1.2.3.4")[:-3],
    # a partial element header at the end
    _element(0x00080016, b"UI", b"1.2\0") + b"\x08\x00\x18",
    # a file meta element inside the data set
    _element(0x00020010, b"UI", b"1.2\0"),
], ids=["undefined-length", "unknown-vr", "value-past-end", "partial-header", "meta-element"])
def test_scan_declines_what_it_does_not_handle(body: bytes, tmp_path: Path) -> None:
    path, offset = _file(tmp_path, body)
    with open(path, "rb") as fp:
        assert fast_header.scan(fp, offset, dicom_file.DEFER_SIZE) is None


def test_scan_defers_large_values_and_stops_at_pixel_data(tmp_path: Path) -> None:
    big = bytes(range(256)) * 300  # 76,800 bytes: more than the defer size and one read
    body = (_element(0x00080005, b"CS", b"ISO_IR 192")
            + _element(0x00080016, b"UI", b"1.2\0")
            + _element(0x00091010, b"OB", big)
            + _element(0x00100010, b"PN", b"DOE^JOHN")
            + _element(0x7FE00010, b"OW", b"\x01\x02" * 8))
    path, offset = _file(tmp_path, body)
    with open(path, "rb") as fp:
        found = fast_header.scan(fp, offset, 65536)
        slow = dicom_file.read_header(fp)
    assert found is not None
    ds = found.dataset
    assert ds.get_item(0x00091010, keep_deferred=True).value is None
    assert ds.get_item(0x00100010).value == b"DOE^JOHN"
    assert str(ds.PatientName) == "DOE^JOHN"
    assert ds.original_encoding == (False, True)
    assert ds.original_character_set == slow.dataset.original_character_set
    assert found.pixel == (0x7FE00010, "OW", 16)
    assert found.stop == path.stat().st_size - 16 - 12
