"""The C-STORE spool writes pacsnode's file layout and hashes the data set as it arrives."""

from __future__ import annotations

import hashlib

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from pacsnode.core.dicom_file import IMPLEMENTATION_CLASS_UID
from pacsnode.dimse import spool


def _meta(instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


@pytest.fixture(autouse=True)
def _spooler(tmp_path, monkeypatch):
    """Spool into tmp_path without installing anything process-wide."""
    monkeypatch.setattr(spool._Spooler, "directory", tmp_path)
    monkeypatch.setattr(spool._Spooler, "aet", "ARCHIVE")


def _receive(tmp_path, instance_uid: str, fragments: list[bytes]) -> spool.SpoolFile:
    """Write to a spool file the way pynetdicom 3 does (dimse_messages.decode_msg)."""
    fp = spool._temp_file(delete=False, mode="wb", suffix=".dcm")
    assert isinstance(fp, spool.SpoolFile)
    fp.write(b"\x00" * 128)
    fp.write(b"DICM")
    spool._write_meta(fp, _meta(instance_uid))
    for fragment in fragments:
        fp.write(fragment)
        fp.file.flush()
    fp.close()
    return fp


def test_spool_file_is_in_pacsnode_layout_with_digest(tmp_path):
    fragments = [b"\x08\x00\x16\x00UI\x1a\x00" + CTImageStorage.encode() + b"\x00", b"x" * 5000]
    fp = _receive(tmp_path, "1.2.3.4", fragments)
    spooled = fp.spooled()
    assert spooled is not None and spooled.path.parent == tmp_path
    data = spooled.path.read_bytes()
    assert data[128:132] == b"DICM"
    assert data[spooled.data_offset:] == b"".join(fragments)
    assert spooled.size == len(data)
    assert spooled.digest == hashlib.sha256(b"".join(fragments)).hexdigest()
    meta = pydicom.filereader.read_file_meta_info(spooled.path)
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert meta.SourceApplicationEntityTitle == "ARCHIVE"


def test_unwritable_request_uid_falls_back_to_a_plain_spool(tmp_path):
    fp = _receive(tmp_path, "1.2.\u00e9", [b"abc"])
    assert fp.spooled() is None  # the handler takes the copying path, which rejects it
    data = fp.path.read_bytes()
    assert data[128:132] == b"DICM" and data.endswith(b"abc")


def test_a_large_fragment_is_left_for_the_core_to_hash(tmp_path):
    """A whole image arriving in one PDU is not hashed on the network thread."""
    fragments = [b"\x08\x00\x16\x00UI\x1a\x00" + CTImageStorage.encode() + b"\x00",
                 bytes(range(256)) * 1024]  # 256 KiB
    fp = _receive(tmp_path, "1.2.3.4", fragments)
    spooled = fp.spooled()
    assert spooled is not None
    assert spooled.digest == ""
    assert spooled.path.read_bytes()[spooled.data_offset:] == b"".join(fragments)
