"""Part10Spool: a Part-10 byte stream (a STOW-RS part) becomes a spool file in pacsnode's
layout, whatever the chunking; what it cannot convert is kept as written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from pacsnode.core.spool_file import Part10Spool
from tests.integration.corpus import dataset_bytes


def _feed(tmp_path: Path, data: bytes, chunk: int) -> Part10Spool:
    spool = Part10Spool(tmp_path, source_aet="ARCHIVE", sending_aet="")
    for start in range(0, len(data), chunk):
        spool.write(data[start:start + chunk])
    spool.close()
    return spool


@pytest.mark.parametrize("chunk", [1, 7, 143, 144, 145, 4096, 1 << 30])
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm"])
def test_part10_file_is_spooled_in_pacsnode_layout(tmp_path: Path, name: str,
                                                   chunk: int) -> None:
    source = Path(str(get_testdata_file(name)))
    data = source.read_bytes()
    spool = _feed(tmp_path, data, chunk)
    spooled = spool.spooled()
    assert spooled is not None
    written = spool.path.read_bytes()
    assert dataset_bytes(written) == dataset_bytes(data)
    assert written[spooled.data_offset:] == dataset_bytes(data)
    assert spooled.digest == hashlib.sha256(dataset_bytes(data)).hexdigest()
    assert spooled.size == len(written)
    meta = pydicom.dcmread(spool.path).file_meta
    original = pydicom.dcmread(source).file_meta
    assert meta.TransferSyntaxUID == original.TransferSyntaxUID
    assert meta.MediaStorageSOPInstanceUID == original.MediaStorageSOPInstanceUID
    assert meta.SourceApplicationEntityTitle == "ARCHIVE"


@pytest.mark.parametrize("data", [
    b"not dicom at all",
    b"",
    b"\0" * 128 + b"DICM" + b"\x02\x00\x01\x00OB",  # meta without group length, cut short
])
def test_what_is_not_convertible_is_kept_as_written(tmp_path: Path, data: bytes) -> None:
    spool = _feed(tmp_path, data, 3)
    assert spool.spooled() is None
    assert spool.path.read_bytes() == data


def test_meta_uids_read_directly_equal_pydicoms() -> None:
    from pacsnode.core.dicom_file import meta_uids
    from tests.unit.dicomdata import TEST_FILES

    checked = 0
    for path in sorted(TEST_FILES.glob("*.dcm")):
        head = path.read_bytes()[:4096]
        try:
            meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
            expected = (str(meta.MediaStorageSOPClassUID),
                        str(meta.MediaStorageSOPInstanceUID), str(meta.TransferSyntaxUID))
        except Exception:
            continue
        found = meta_uids(head)
        if found is not None:
            assert found == expected, path.name
            checked += 1
    assert checked > 50
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    assert meta_uids(ct[:128] + b"DIXM" + ct[132:]) is None  # not Part 10
    assert meta_uids(ct[:150]) is None  # cut inside the meta group
