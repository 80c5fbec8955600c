"""The C-STORE spool writes pacsnode's file layout and hashes the data set as it arrives."""

from __future__ import annotations

import hashlib
import types

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from pacsnode.core import spool_file
from pacsnode.core.archive import Archive
from pacsnode.core.dicom_file import IMPLEMENTATION_CLASS_UID
from pacsnode.core.results import Outcome
from pacsnode.dimse import spool
from tests.unit.dicomdata import data_set_bytes, make_dataset, part10, stored_bytes


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


def test_completion_starts_the_fsync_and_hash_that_the_ingest_uses(tmp_path, monkeypatch):
    """As the last fragment is written (still on the network thread), the file's fsync and
    hash start once; the ingest waits on those instead of starting its own."""
    archive = Archive.open(tmp_path / "data")
    try:
        monkeypatch.setattr(spool._Spooler, "directory", archive.store.temp_dir)
        started: list[tuple[object, int, bool]] = []

        def start(path, offset, hashed):
            started.append((path, offset, hashed))
            return archive.ingestor.start_spooled(path, offset, hashed)

        ds = make_dataset()
        body = data_set_bytes(part10(ds))
        half = len(body) // 2
        monkeypatch.setattr(spool_file, "LARGE_FRAGMENT", 1)  # the core hashes, as for CT
        fp = _receive(archive.store.temp_dir, ds.SOPInstanceUID, [body[:half], body[half:]])
        fp.complete(start)
        fp.complete(start)
        assert [(p, hashed) for p, _, hashed in started] == [(fp.path, False)]
        spooled = fp.spooled()
        assert spooled is not None and spooled.sync is not None
        assert spooled.digesting is not None
        assert spooled.digesting.result() == hashlib.sha256(body).hexdigest()

        result = archive.ingest_spooled(spooled, expect_sop_class=str(ds.SOPClassUID),
                                        expect_sop_instance=str(ds.SOPInstanceUID))
        assert result.outcome is Outcome.STORED
        assert len(started) == 1  # nothing started again
        node = archive.find(ds.SOPInstanceUID)
        assert node is not None and node.columns["digest"] == hashlib.sha256(body).hexdigest()
        assert data_set_bytes(stored_bytes(archive, ds.SOPInstanceUID)) == body
    finally:
        archive.close()


def test_the_network_thread_hook_completes_a_spool_once_its_message_is(tmp_path,
                                                                       monkeypatch):
    fp = _receive(tmp_path, "1.2.3.4", [b"abc"])
    completed: list[object] = []
    monkeypatch.setattr(spool._Spooler, "start", lambda *args: completed.append(args) or
                        (None, None))
    message = types.SimpleNamespace(_data_set_file=fp)
    for whole in (False, True):  # a fragment in the middle, then the last one
        monkeypatch.setattr(spool, "_original_decode_msg", lambda *_a, w=whole: w)
        assert spool._decode_msg(message, object()) is whole
    assert completed == [(fp.path, fp.data_offset, True)]
