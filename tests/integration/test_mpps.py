"""Modality Performed Procedure Step SCP (PS3.4 F.7) against ``pacsnode serve``, on both index
backends, with pynetdicom as the modality (N-CREATE, N-SET), DCMTK ``findscu -W`` checking
the worklist item the step performs, ``storescu`` sending its images, and the
study-complete event caught both by a Python hook (a module on the server's PYTHONPATH) and
by a webhook (an HTTP server in the test). Expected statuses come from PS3.4 F.7.2 and
Table F.7.2-1, written here, not from pacsnode."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.association import Association

from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.test_mwl_dcmtk import findscu
from tests.mpps_datasets import n_create, n_set_final

pytestmark = pytest.mark.dcmtk

MPPS = "1.2.840.10008.3.1.2.3.3"
HOOK_MODULE = '''
import json, os

def record(payload):
    with open(os.environ["PACSNODE_TEST_HOOK_OUT"], "a", encoding="utf-8") as out:
        out.write(json.dumps(payload) + "\\n")
'''


class Webhook:
    """An HTTP server keeping the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def associate(server: PacsnodeServer) -> Association:
    ae = AE(ae_title="CT1")
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", server.port, ae_title=server.aet)
    assert assoc.is_established
    return assoc


def create(assoc: Association, ds: Dataset, uid: str | None) -> Dataset:
    status, _ = assoc.send_n_create(ds, MPPS, uid)
    return status


def set_(assoc: Association, ds: Dataset, uid: str) -> Dataset:
    status, _ = assoc.send_n_set(ds, MPPS, uid)
    return status


def store(server: PacsnodeServer, files: list[Path]) -> None:
    proc = subprocess.run([dcmtk("storescu"), "-aec", server.aet, "127.0.0.1",
                           str(server.port), *map(str, files)], capture_output=True,
                          env=DCMTK_ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def pacsnode(server: PacsnodeServer, group: str, command: str, *args: str) -> str:
    """``pacsnode GROUP COMMAND`` on the server's archive; its output."""
    cmd = [sys.executable, "-m", "pacsnode", group, command, *server.archive_args(), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def sps_statuses(server: PacsnodeServer, work: Path) -> dict[str, str]:
    """Accession Number → Scheduled Procedure Step Status of what the worklist answers."""
    responses, _ = findscu(server, work, {}, {"ScheduledProcedureStepStatus": ""})
    return {str(r.AccessionNumber): str(r.ScheduledProcedureStepSequence[0]
                                        .get("ScheduledProcedureStepStatus", ""))
            for r in responses}


def test_mpps_moves_the_worklist_and_raises_study_complete(
        pacsnode_server: Any, tmp_path: Path, webhook: Webhook,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hook_dir = tmp_path / "hooks"
    hook_dir.mkdir()
    (hook_dir / "pacsnode_test_hook.py").write_text(HOOK_MODULE)
    hook_out = tmp_path / "hook.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(hook_dir))
    monkeypatch.setenv("PACSNODE_TEST_HOOK_OUT", str(hook_out))
    monkeypatch.setenv("PACSNODE_STUDY_COMPLETE_HOOK", "pacsnode_test_hook:record")
    monkeypatch.setenv("PACSNODE_STUDY_COMPLETE_WEBHOOK", webhook.url)
    server: PacsnodeServer = pacsnode_server()

    files = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1,
                            series_per_study=1, instances_per_series=3, rows=16, columns=16,
                            seed=5)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    study, series = headers[0].StudyInstanceUID, headers[0].SeriesInstanceUID
    instances = [h.SOPInstanceUID for h in headers]
    for accession, sps_id in (("A1", "SPS1"), ("A2", "SPS2")):
        pacsnode(server, "worklist", "add", "--patient-name", "DOE^JOHN", "--patient-id", "P1",
                   "--modality", "CT", "--station-aet", "CT1", "--start", "202403150800",
                   "--accession", accession, "--sps-id", sps_id,
                   *(["--study-uid", study] if accession == "A1" else []))
    assert sps_statuses(server, tmp_path / "q0") == {"A1": "", "A2": ""}

    uid = generate_uid()
    assoc = associate(server)
    try:
        attrs = n_create(study_uid=study, sps_id="SPS1", accession="A1")
        assert create(assoc, attrs, uid).Status == 0x0000
        assert create(assoc, attrs, uid).Status == 0x0111  # Duplicate SOP Instance
        assert create(assoc, n_create(study_uid=study, status="COMPLETED"),
                      generate_uid()).Status == 0x0106  # Invalid Attribute Value
        no_station = n_create(study_uid=study)
        del no_station.PerformedStationAETitle
        assert create(assoc, no_station, generate_uid()).Status == 0x0120  # Missing Attr.
        # an unscheduled step, its UID made by pacsnode
        assert create(assoc, n_create(study_uid=generate_uid(), pps_id="PPS9"),
                      None).Status == 0x0000

        assert sps_statuses(server, tmp_path / "q1") == {"A1": "STARTED", "A2": ""}

        change = Dataset()
        change.PatientID = "OTHER"
        change.PerformedProcedureStepStartDate = "20240316"
        status = set_(assoc, change, uid)
        assert status.Status == 0x0105  # No Such Attribute: not allowed in N-SET
        assert [int(t) for t in status.AttributeIdentifierList] == [0x00100020, 0x00400244]
        early = Dataset()
        early.PerformedProcedureStepStatus = "COMPLETED"
        assert set_(assoc, early, uid).Status == 0x0121  # Missing Attribute Value
        assert set_(assoc, early, generate_uid()).Status == 0x0112  # no such instance

        store(server, files[:2])
        done = n_set_final("COMPLETED", series_uid=series, instances=instances)
        assert set_(assoc, done, uid).Status == 0x0000
        status = set_(assoc, done, uid)
        assert (status.Status, status.ErrorID) == (0x0110, 0xA710)  # may no longer update
    finally:
        assoc.release()

    # completed: the item leaves the worklist; the event waits for the third image
    assert sps_statuses(server, tmp_path / "q2") == {"A2": ""}
    time.sleep(3.0)  # more than the watcher's interval
    assert webhook.bodies == [] and not hook_out.exists()
    store(server, files[2:])
    assert wait_for(lambda: webhook.bodies and hook_out.exists()), server.log()[-3000:]
    [event] = webhook.bodies
    assert (event["study_instance_uid"], event["mpps_sop_instance_uid"]) == (study, uid)
    assert event["complete"] is True and event["received_instances"] == 3
    assert [json.loads(line) for line in hook_out.read_text().splitlines()] == [event]

    steps = httpx.get(f"{server.url}/api/mpps").json()["items"]
    assert sorted(s["status"] for s in steps) == ["COMPLETED", "IN PROGRESS"]
    made = [s for s in steps if s["sop_instance_uid"] != uid]
    assert made[0]["sop_instance_uid"].startswith("2.25.") and made[0]["pps_id"] == "PPS9"
    detail = httpx.get(f"{server.url}/api/mpps/{uid}").json()
    assert detail["received_instances"] == 3
    assert [(i["accession"], i["state"]) for i in detail["worklist_items"]] == \
        [("A1", "COMPLETED")]
    assert httpx.get(f"{server.url}/api/mpps/{generate_uid()}").status_code == 404
    listed = json.loads(pacsnode(server, "mpps", "list", "--status", "completed", "--json"))
    assert [s["sop_instance_uid"] for s in listed] == [uid]
    assert server.alive()
