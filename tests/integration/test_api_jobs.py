"""``POST /api/studies/{uid}/send`` and ``/api/jobs`` served by ``pacsnode serve`` (httpx),
sending to a DCMTK storescp declared with ``pacsnode peers add``, on both index backends.

These tests need the job runner wired into ``pacsnode serve`` (``app.state.jobs`` set and the
runner started); without it a job stays ``queued`` and they fail saying so.

What must hold: the study stored with DCMTK storescu arrives at the peer, each data set
byte-identical to the file sent in (storescp ``+B``), and only that study; the job is then
``completed`` with the right counts in ``GET /api/jobs/{id}`` and first in ``GET /api/jobs``;
errors are problem+json (unknown peer 400, unknown study 404, cancelling a finished job
409); a job whose peer was down is still in the index after a restart and completes once
the peer is up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.corpus import dataset_bytes, run_storescu
from tests.storescp import StorescpReceiver
from tests.unit.dicomdata import make_dataset

pytestmark = pytest.mark.dcmtk

PROBLEM = "application/problem+json"
NOT_WIRED = ("is the JobRunner started by `pacsnode serve` (app.state.jobs)? a job stays "
             "queued without it")


class Receiver(StorescpReceiver):
    """storescp accepting every transfer syntax; :meth:`received` gives data set bytes."""

    def __init__(self, out_dir: Path, aet: str, port: int | None = None) -> None:
        super().__init__(out_dir, aet, "+xa", port=port)

    def received(self) -> dict[str, bytes]:
        """SOP Instance UID -> the received data set's bytes (file meta aside)."""
        return {uid: dataset_bytes(path) for uid, path in self.files().items()}


def write_study(directory: Path, n: int) -> dict[str, Path]:
    """``n`` instances of a new study, two series: SOP Instance UID -> file."""
    directory.mkdir(parents=True)
    study_uid, series = generate_uid(), [generate_uid(), generate_uid()]
    out: dict[str, Path] = {}
    for i in range(n):
        ds: Dataset = make_dataset(study_uid=study_uid, series_uid=series[i % 2],
                                   instance_number=i + 1, pixel_seed=i)
        path = directory / f"{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out[str(ds.SOPInstanceUID)] = path
    return out


def study_of(files: dict[str, Path]) -> str:
    return str(pydicom.dcmread(next(iter(files.values()))).StudyInstanceUID)


def add_peer(server: PacsnodeServer, name: str, aet: str, port: int) -> None:
    """``pacsnode peers add`` on the server's archive (the options go after ``add``)."""
    cmd = [sys.executable, "-m", "pacsnode", "peers", "add", *server.archive_args(), name,
           aet, "127.0.0.1", str(port)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def store(server: PacsnodeServer, files: dict[str, Path], work: Path) -> None:
    run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, list(files.values()), work,
                       called_aet=server.aet)
    assert run.returncode == 0, run.output
    assert set(run.responses.values()) == {"Success"}, run.output


def wait_job(http: httpx.Client, location: str, timeout: float = 60.0,
             done: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll the job until it ends (or ``done`` says so)."""
    finished = done or (lambda j: j["state"] in ("completed", "failed", "cancelled"))
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = http.get(location)
        assert r.status_code == 200, r.text
        job = r.json()
        if finished(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job not done after {timeout:.0f} s: {job}; {NOT_WIRED}")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    scp = Receiver(tmp_path / "dest", "DEST")
    yield scp
    scp.stop()


def test_send_study_to_peer(pacsnode_server: Callable[..., PacsnodeServer], tmp_path: Path,
                            receiver: Receiver) -> None:
    server = pacsnode_server()
    files = write_study(tmp_path / "study", 6)
    other = write_study(tmp_path / "other", 2)  # must not be sent
    store(server, {**files, **other}, tmp_path / "storescu")
    add_peer(server, "DEST", receiver.aet, receiver.port)
    uid = study_of(files)

    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post(f"/api/studies/{uid}/send", json={"peer": "DEST"})
        assert r.status_code == 202, r.text
        queued = r.json()
        location = r.headers["location"]
        assert location == f"/api/jobs/{queued['id']}"
        assert (queued["state"], queued["peer"], queued["study_instance_uid"]) == \
            ("queued", "DEST", uid)

        job = wait_job(http, location)
        assert job["state"] == "completed", job
        assert job["progress"] == {"total": 6, "completed": 6, "failed": 0, "warning": 0,
                                   "remaining": 0}
        assert (job["attempts"], job["failed_instances"], job["last_error"]) == (1, [], None)

        listing = http.get("/api/jobs").json()
        assert listing["items"][0]["id"] == queued["id"]
        assert listing["items"][0]["state"] == "completed"
        assert listing["items"][0]["progress"]["completed"] == 6
        done = http.get("/api/jobs", params={"state": "completed"}).json()["items"]
        assert [j["id"] for j in done] == [queued["id"]]

        r = http.delete(location)  # already finished
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert "already completed" in r.json()["detail"]

    assert receiver.received() == {u: dataset_bytes(p) for u, p in files.items()}


def test_errors_are_problems(pacsnode_server: Callable[..., PacsnodeServer],
                             tmp_path: Path) -> None:
    server = pacsnode_server()
    files = write_study(tmp_path / "study", 1)
    store(server, files, tmp_path / "storescu")
    uid = study_of(files)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post(f"/api/studies/{uid}/send", json={"peer": "NOWHERE"})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
        assert "unknown peer 'NOWHERE'" in r.json()["detail"]
        r = http.post("/api/studies/1.2.3.4.5.6/send", json={"peer": "NOWHERE"})
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == "no study 1.2.3.4.5.6 in the archive"
        r = http.post(f"/api/studies/{uid}/send", content=b"not json",
                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
        r = http.get("/api/jobs/987654")
        assert r.status_code == 404 and r.json()["detail"] == "no job 987654"
        assert http.get("/api/jobs").json()["items"] == []


def test_job_survives_restart(pacsnode_server: Callable[..., PacsnodeServer], tmp_path: Path
                              ) -> None:
    server = pacsnode_server()
    files = write_study(tmp_path / "study", 3)
    store(server, files, tmp_path / "storescu")
    port = free_port()  # the peer is down for the first attempt
    add_peer(server, "LATER", "LATER", port)
    uid = study_of(files)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post(f"/api/studies/{uid}/send", json={"peer": "LATER"})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        job = wait_job(http, location, 30, lambda j: j["attempts"] >= 1
                       and j["state"] == "queued")
        assert job["last_error"] and "association with LATER@127.0.0.1" in job["last_error"]
        assert job["next_attempt_at"] is not None

    assert server.stop() is not None  # the job is in the index, queued for a retry
    peer = Receiver(tmp_path / "later", "LATER", port)  # the peer comes up
    try:
        # a new log, so that start() waits for this run's "pacsnode ready"
        server.log_path = server.log_path.with_name(f"serve-{server.port}-restarted.log")
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            job = wait_job(http, location, 60)
        assert job["state"] == "completed", job
        assert job["attempts"] == 2
        assert job["progress"]["completed"] == 3
        assert peer.received() == {u: dataset_bytes(p) for u, p in files.items()}
    finally:
        peer.stop()
