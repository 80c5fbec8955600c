"""A server that stops uncleanly completes its index from the files at the next start
(``index_sync = "periodic"``, SQLite; pacsnode.core.index_flush).

What a power cut can do to the index — undo the ingest commits made since the last flush,
while the acknowledged files stay (they are flushed before the answer) — is done here by
killing the server (SIGKILL: no clean stop) and removing the index rows of instances DCMTK's
storescu was told were stored. After a restart DCMTK's findscu must find every one of
them again."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from pacsnode.core.archive import Archive
from pacsnode.index import writer
from pacsnode.index.engine import write_transaction
from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.findscu import run_findscu
from tests.integration.corpus import run_storescu

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # PS3.4 C.6.2


def _state(data_dir: Path) -> dict[str, float]:
    with sqlite3.connect(data_dir / "index.sqlite") as db:
        return dict(db.execute("SELECT name, value FROM index_state").fetchall())


def _kill(server: PacsnodeServer) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


def _image_uids(server: PacsnodeServer, work: Path, study_uid: str) -> set[str]:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.SOPInstanceUID = ""
    found, _ = run_findscu(server, work, query,
                           sop_class=STUDY_ROOT_FIND,
                           model_flag="-S")
    return {str(ds.SOPInstanceUID) for ds in found}


def test_instances_whose_index_commit_was_lost_are_indexed_at_the_next_start(
        tmp_path: Path) -> None:
    files = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1,
                            series_per_study=2, instances_per_series=5, seed=20261126)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    study_uid = str(headers[0].StudyInstanceUID)
    server = PacsnodeServer(data_dir=tmp_path / "data", db=None, port=free_port(),
                            extra=("--workers", "2"))
    server.start()
    try:
        assert _state(server.data_dir)["clean"] == 0.0  # running
        run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files,
                           tmp_path / "scu", called_aet=server.aet)
        assert run.returncode == 0 and set(run.responses.values()) == {"Success"}
    finally:
        _kill(server)
    assert _state(server.data_dir)["clean"] == 0.0

    # the power cut: the last commits (one whole series, part of another) are undone
    lost = headers[-7:]
    with Archive.open(server.data_dir) as archive:
        with write_transaction(archive.engine) as conn:
            rows = [writer.find_instance(conn, str(h.SOPInstanceUID)) for h in lost]
            assert all(r is not None for r in rows)
            writer.remove_instances(conn, [r for r in rows if r is not None])
        assert archive.counts()["instances"] == 3

    # the restart indexes them from their files, before answering
    server = _again(server)
    try:
        assert "did not stop cleanly" in server.log()
        assert "recovery done: 7 file(s)" in server.log()
        assert _image_uids(server, tmp_path / "f1", study_uid) == {
            str(h.SOPInstanceUID) for h in headers}
    finally:
        server.stop()
    assert _state(server.data_dir)["clean"] == 1.0
    with Archive.open(server.data_dir) as archive:
        assert archive.counts() == {"patients": 1, "studies": 1, "series": 2,
                                    "instances": 10}

    # a clean stop: the next start does not look for lost commits
    server = _again(server)
    try:
        assert "did not stop cleanly" not in server.log()
        assert len(_image_uids(server, tmp_path / "f2", study_uid)) == 10
    finally:
        server.stop()


def _again(server: PacsnodeServer) -> PacsnodeServer:
    """A new server on the same archive (its own ports and log), started."""
    again = PacsnodeServer(data_dir=server.data_dir, db=None, port=free_port(),
                           extra=server.extra)
    again.start()
    return again
