"""C-FIND with DCMTK ``findscu``, for the query, worklist, HL7 and MPPS tests: the query is
written as a file, each response is written by findscu (``-X``) and read back with
pydicom."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import DCMTK_ENV, dcmtk

if TYPE_CHECKING:
    from tests.conftest import PacsnodeServer

MWL_FIND = "1.2.840.10008.5.1.4.31"


def run_findscu(server: PacsnodeServer, work: Path, query: Dataset, *, sop_class: str,
                model_flag: str, options: tuple[str, ...] = ()) -> tuple[list[Dataset], str]:
    """Send ``query`` (an Identifier) to ``server`` with ``findscu MODEL_FLAG`` (``-W``, ``-S``,
    ``-P``) and ``options``; the responses, in order, and findscu's output (``-v``). findscu
    must exit 0."""
    work.mkdir(parents=True, exist_ok=True)
    query.file_meta = FileMetaDataset()
    query.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    query.file_meta.MediaStorageSOPClassUID = sop_class
    query.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    qfile = work / "query.dcm"
    query.save_as(qfile, enforce_file_format=True)
    out = work / "rsp"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    proc = subprocess.run([dcmtk("findscu"), "-v", model_flag, "-aec", server.aet, "-X",
                           "-od", str(out), *options, "127.0.0.1", str(server.port),
                           str(qfile)],
                          capture_output=True, env=DCMTK_ENV, timeout=60)
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0, output
    return [pydicom.dcmread(p) for p in sorted(out.iterdir())], output


def find_worklist(server: PacsnodeServer, work: Path, query: Dataset,
                  *options: str) -> tuple[list[Dataset], str]:
    """A Modality Worklist C-FIND (``findscu -W``); see :func:`run_findscu`."""
    return run_findscu(server, work, query, sop_class=MWL_FIND, model_flag="-W",
                       options=options)
