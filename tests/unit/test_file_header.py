"""pacsnode's hand-encoded file meta information equals pydicom's encoding (PS3.10 7.1)."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info

from pacsnode.core import dicom_file


@pytest.mark.parametrize("sending", ["", "MODALITY1", "ODD"])
def test_file_header_matches_pydicom(sending: str) -> None:
    ours = dicom_file.file_header(sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                                  sop_instance_uid="1.2.3.4.5",
                                  transfer_syntax="1.2.840.10008.1.2.1",
                                  source_aet="PACSNODE", sending_aet=sending)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    meta.ImplementationClassUID = dicom_file.IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = dicom_file.IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = "PACSNODE"
    if sending:
        meta.SendingApplicationEntityTitle = sending
        meta.ReceivingApplicationEntityTitle = "PACSNODE"
    buf = io.BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    assert ours == buf.getvalue()
    parsed = pydicom.dcmread(io.BytesIO(ours)).file_meta
    assert parsed.get("SendingApplicationEntityTitle", "") == sending
