"""pacsnode as a Query/Retrieve SCU against a real peer, Orthanc 1.10, on both index backends:
``pacsnode find``, ``move`` and ``get`` (PS3.4 C.4.1–C.4.3), and the other way round, Orthanc
retrieving from pacsnode with C-FIND + C-MOVE (pacsnode's C-MOVE SCP).

Each test starts ``pacsnode serve`` (AE title PACSNODE) and an Orthanc of its own (AE title
ORTHANC, its own JSON configuration, free loopback ports, TCP_NODELAY=1, DefaultEncoding
Utf8, PACSNODE declared in DicomModalities), uploads a generated corpus (fixed seed) to
Orthanc through its REST API, and declares ORTHANC as a peer in pacsnode's index with
``pacsnode peers add`` — so the CLI processes and the server find it in the shared database.

What must hold: C-FIND returns exactly the expected studies (wildcard name, date range,
series level, Patient Root), with non-ASCII names intact; C-MOVE and C-GET bring exactly the
requested study or series, and every data set pacsnode keeps is byte-identical to the file
Orthanc stores; a refused move is reported as a failure (exit status 1).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest

from pacsnode import Archive
from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, IN_CI, PacsnodeServer, free_port
from tests.integration.corpus import dataset_bytes

ORTHANC_BIN = "/usr/sbin/Orthanc"
SEED = 20261126
RETRIEVE_SCP = importlib.util.find_spec("pacsnode.dimse.retrieve_scp") is not None


def pacsnode(server: PacsnodeServer, command: list[str], *args: str, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``pacsnode COMMAND... --data-dir/--db ARGS`` on ``server``'s archive (``command``
    may be a group and its subcommand, e.g. ``["peers", "add"]``)."""
    cmd = [sys.executable, "-m", "pacsnode", *command, *server.archive_args(), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


class Orthanc:
    """An Orthanc process with its own configuration and storage, on free loopback ports."""

    def __init__(self, work: Path, modalities: dict[str, list[Any]]) -> None:
        if not os.access(ORTHANC_BIN, os.X_OK):
            why = f"Orthanc is not installed ({ORTHANC_BIN}; make test-deps installs it)"
            if IN_CI:
                pytest.fail(why)
            pytest.skip(why)
        work.mkdir(parents=True, exist_ok=True)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        config = {
            "Name": "PACSNODE-TEST-ORTHANC",
            "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
            "Plugins": [],
            "HttpServerEnabled": True, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
            "DicomModalities": modalities,
            "DefaultEncoding": "Utf8",
        }
        config_path = work / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        self.log_path = work / "orthanc.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([ORTHANC_BIN, str(config_path)], env=DCMTK_ENV,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited {self.proc.returncode}:\n{self.log()}")
            try:
                self.rest("GET", "/system")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer on {self.base}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json", timeout: float = 120) -> bytes:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as rsp:
                return bytes(rsp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Orthanc {method} {path}: HTTP {exc.code} "
                                 f"{exc.read().decode(errors='replace')}") from exc

    def rest(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        data = self.request(method, path, body)
        return json.loads(data) if data else None

    def upload(self, path: Path) -> dict[str, Any]:
        answer = json.loads(self.request("POST", "/instances", path.read_bytes(),
                                         "application/dicom"))
        assert answer["Status"] in ("Success", "AlreadyStored"), answer
        return dict(answer)

    def instance_file(self, orthanc_id: str) -> bytes:
        return self.request("GET", f"/instances/{orthanc_id}/file")

    def study_instances(self, study_uid: str) -> dict[str, str]:
        """SOP Instance UID -> Orthanc ID of the instances of a study Orthanc holds."""
        hits = json.loads(self.request("POST", "/tools/lookup", study_uid.encode(),
                                       "text/plain"))
        out: dict[str, str] = {}
        for hit in hits:
            if hit["Type"] != "Study":
                continue
            for inst in self.rest("GET", f"/studies/{hit['ID']}/instances"):
                out[inst["MainDicomTags"]["SOPInstanceUID"]] = inst["ID"]
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@dataclass
class Study:
    uid: str
    patient_name: str
    patient_id: str
    date: str
    series: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Setup:
    server: PacsnodeServer
    orthanc: Orthanc
    studies: dict[str, Study]  # Study Instance UID -> what the corpus has
    orthanc_ids: dict[str, str]  # SOP Instance UID -> Orthanc instance ID
    work: Path

    def archive(self) -> Archive:
        return Archive.open(self.server.data_dir, db=self.server.db)


def describe_corpus(files: list[Path]) -> dict[str, Study]:
    studies: dict[str, Study] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        study = studies.setdefault(str(ds.StudyInstanceUID), Study(
            str(ds.StudyInstanceUID), str(ds.PatientName), str(ds.PatientID),
            str(ds.StudyDate)))
        study.series[str(ds.SeriesInstanceUID)].append(str(ds.SOPInstanceUID))
    return studies


@pytest.fixture
def setup(pacsnode_server: Callable[..., PacsnodeServer], tmp_path: Path) -> Iterator[Setup]:
    server = pacsnode_server()
    orthanc = Orthanc(tmp_path / "orthanc",
                      {"PACSNODE": [server.aet, "127.0.0.1", server.port]})
    try:
        files = generate_corpus(tmp_path / "corpus", patients=5, studies_per_patient=2,
                                series_per_study=2, instances_per_series=2, seed=SEED)
        orthanc_ids = {}
        for path in files:
            sop_uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            orthanc_ids[sop_uid] = orthanc.upload(path)["ID"]
        pacsnode(server, ["peers", "add"], "ORTHANC", "ORTHANC", "127.0.0.1",
                 str(orthanc.dicom_port))
        yield Setup(server, orthanc, describe_corpus(files), orthanc_ids, tmp_path)
    finally:
        orthanc.stop()


def find_json(s: Setup, *args: str) -> list[dict[str, Any]]:
    result = pacsnode(s.server, ["find"], "ORTHANC", "--json", *args)
    return list(json.loads(result.stdout))


def value(match: dict[str, Any], keyword: str) -> str:
    """A single value of a find --json match, as text (a person name with its component
    groups joined by '=')."""
    values = match.get(keyword, {}).get("Value") or [""]
    first = values[0]
    if isinstance(first, dict):
        return "=".join(first.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")
                        ).rstrip("=")
    return str(first)


def assert_same_datasets(s: Setup, sop_uids: list[str], orthanc_ids: dict[str, str]) -> None:
    """Every instance pacsnode holds has the data set of the file Orthanc stores."""
    with s.archive() as archive:
        for uid in sop_uids:
            with archive.open_instance(uid) as fh:
                ours = dataset_bytes(fh.read())
            theirs = dataset_bytes(s.orthanc.instance_file(orthanc_ids[uid]))
            assert ours == theirs, f"{uid}: data set differs from Orthanc's file"


def archive_study(s: Setup, study_uid: str) -> dict[str, set[str]]:
    """Series Instance UID -> SOP Instance UIDs pacsnode holds for a study."""
    with s.archive() as archive:
        return {se.columns["series_instance_uid"]: {
            i.columns["sop_instance_uid"]
            for i in archive.instances(se.columns["series_instance_uid"])}
            for se in archive.series(study_uid)}


# -- C-FIND -------------------------------------------------------------------------------


def test_find_wildcard_name_and_date_range(setup: Setup) -> None:
    s = setup
    everything = find_json(s)
    assert {value(m, "StudyInstanceUID") for m in everything} == set(s.studies)
    # Names come back as stored, non-ASCII ones included (Orthanc answers in UTF-8).
    assert {value(m, "StudyInstanceUID"): value(m, "PatientName") for m in everything} == {
        uid: st.patient_name for uid, st in s.studies.items()}
    assert any(not st.patient_name.isascii() for st in s.studies.values())

    doe = find_json(s, "-k", "PatientName=DOE*")
    expected = {uid for uid, st in s.studies.items() if st.patient_name.startswith("DOE")}
    assert expected and expected != set(s.studies)
    assert {value(m, "StudyInstanceUID") for m in doe} == expected

    dates = sorted({st.date for st in s.studies.values()})
    assert len(dates) >= 4
    low, high = dates[1], dates[-2]
    in_range = find_json(s, "-k", f"StudyDate={low}-{high}", "-k", "StudyDescription")
    expected = {uid for uid, st in s.studies.items() if low <= st.date <= high}
    assert expected and expected != set(s.studies)
    assert {value(m, "StudyInstanceUID") for m in in_range} == expected
    assert all(low <= value(m, "StudyDate") <= high for m in in_range)

    open_ended = find_json(s, "-k", f"0008,0020={dates[-2]}-")
    assert {value(m, "StudyInstanceUID") for m in open_ended} == {
        uid for uid, st in s.studies.items() if st.date >= dates[-2]}

    # The table: a header of the returned keys, one line per match.
    table = pacsnode(s.server, ["find"], "ORTHANC", "-k", "PatientName=DOE*")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["PatientName", "PatientID"]
    assert "StudyInstanceUID" in lines[0]
    assert len(lines) == 1 + len(doe)
    assert {uid for uid in s.studies if any(uid in line for line in lines[1:])} == {
        value(m, "StudyInstanceUID") for m in doe}


def test_find_series_level_and_patient_root(setup: Setup) -> None:
    s = setup
    study = next(iter(s.studies.values()))
    series = find_json(s, "--level", "series", "-k", f"StudyInstanceUID={study.uid}")
    assert {value(m, "SeriesInstanceUID") for m in series} == set(study.series)
    assert {value(m, "SeriesInstanceUID"): int(value(m, "NumberOfSeriesRelatedInstances"))
            for m in series} == {uid: len(sops) for uid, sops in study.series.items()}

    patients = find_json(s, "--model", "patient", "--level", "patient",
                         "-k", f"PatientID={study.patient_id}")
    assert [value(m, "PatientID") for m in patients] == [study.patient_id]
    assert value(patients[0], "PatientName") == study.patient_name

    refused = pacsnode(s.server, ["find"], "ORTHANC", "--level", "patient", check=False)
    assert refused.returncode == 2 and "no PATIENT level" in refused.stderr

    unknown = pacsnode(s.server, ["find"], "NOSUCHPEER", check=False)
    assert unknown.returncode == 2 and "unknown peer" in unknown.stderr
    bad_key = pacsnode(s.server, ["find"], "ORTHANC", "-k", "NoSuchKeyword=1", check=False)
    assert bad_key.returncode == 2 and "not a DICOM keyword" in bad_key.stderr
    # A node declared nowhere, by AET@HOST:PORT.
    direct = pacsnode(s.server, ["find"], f"ORTHANC@127.0.0.1:{s.orthanc.dicom_port}",
                      "--json", "-k", f"PatientID={study.patient_id}")
    assert {value(m, "StudyInstanceUID") for m in json.loads(direct.stdout)} == {
        uid for uid, st in s.studies.items() if st.patient_id == study.patient_id}


# -- C-MOVE -------------------------------------------------------------------------------


def test_move_study_and_series_into_running_server(setup: Setup) -> None:
    s = setup
    studies = list(s.studies.values())
    study = studies[0]
    sops = [uid for uids in study.series.values() for uid in uids]
    result = pacsnode(s.server, ["move"], "ORTHANC", "--study", study.uid)
    assert f"completed {len(sops)}, failed 0, warning 0" in result.stdout, result.stdout
    assert archive_study(s, study.uid) == {k: set(v) for k, v in study.series.items()}
    assert_same_datasets(s, sops, s.orthanc_ids)
    listing = json.loads(pacsnode(s.server, ["ls"], "--json").stdout)
    assert [st["study_instance_uid"] for p in listing for st in p["studies"]] == [study.uid]

    # One series of another study only.
    other = studies[1]
    series_uid, series_sops = next(iter(other.series.items()))
    result = pacsnode(s.server, ["move"], "ORTHANC", "--study", other.uid,
                      "--series", series_uid)
    assert f"completed {len(series_sops)}, failed 0" in result.stdout, result.stdout
    assert archive_study(s, other.uid) == {series_uid: set(series_sops)}
    assert_same_datasets(s, series_sops, s.orthanc_ids)
    with s.archive() as archive:
        assert archive.counts()["instances"] == len(sops) + len(series_sops)


def test_move_to_unknown_destination_fails(setup: Setup) -> None:
    s = setup
    study = next(iter(s.studies.values()))
    result = pacsnode(s.server, ["move"], "ORTHANC", "--study", study.uid, "--to", "NOWHERE",
                      check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "status 0x0000" not in result.stdout
    with s.archive() as archive:
        assert archive.counts()["instances"] == 0


# -- C-GET --------------------------------------------------------------------------------


def test_get_study_into_archive(setup: Setup) -> None:
    s = setup
    study = list(s.studies.values())[2]
    sops = [uid for uids in study.series.values() for uid in uids]
    result = pacsnode(s.server, ["get"], "ORTHANC", "--study", study.uid)
    assert f"completed {len(sops)}, failed 0, warning 0" in result.stdout, result.stdout
    assert f"received: {len(sops)} stored, 0 rejected" in result.stdout, result.stdout
    assert archive_study(s, study.uid) == {k: set(v) for k, v in study.series.items()}
    assert_same_datasets(s, sops, s.orthanc_ids)
    with s.archive() as archive:
        assert archive.counts() == {"patients": 1, "studies": 1, "series": len(study.series),
                                    "instances": len(sops)}
        node = archive.find(sops[0])
        assert node is not None and node.columns["source_aet"] == "ORTHANC"

    # Again: everything is already there.
    again = pacsnode(s.server, ["get"], "ORTHANC", "--study", study.uid)
    assert f"{len(sops)} already present" in again.stdout, again.stdout
    # The running server saw nothing of it but serves the same archive.
    assert s.server.alive()
    listing = json.loads(pacsnode(s.server, ["ls"], "--json").stdout)
    assert listing[0]["studies"][0]["num_instances"] == len(sops)


# -- Orthanc retrieving from pacsnode (pacsnode's C-FIND and C-MOVE SCP) ------------------


@pytest.mark.skipif(not RETRIEVE_SCP, reason="pacsnode's C-MOVE SCP "
                    "(pacsnode.dimse.retrieve_scp) is not there yet")
def test_orthanc_moves_a_study_from_pacsnode(setup: Setup) -> None:
    s = setup
    own = generate_corpus(s.work / "own", patients=1, studies_per_patient=1,
                          series_per_study=2, instances_per_series=3, seed=SEED + 1)
    pacsnode(s.server, ["import"], *map(str, own))
    study_uid = str(pydicom.dcmread(own[0], stop_before_pixels=True).StudyInstanceUID)
    sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in own]
    assert not s.orthanc.study_instances(study_uid)

    # Orthanc asks pacsnode (C-FIND, then C-MOVE to ORTHANC): pacsnode's C-MOVE SCP must
    # find the destination ORTHANC among the peers of its index (added by the fixture with
    # `pacsnode peers add`), else it answers 0xA801 (Move Destination unknown).
    query = s.orthanc.rest("POST", "/modalities/PACSNODE/query",
                           {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
    answers = s.orthanc.rest("GET", f"/queries/{query['ID']}/answers")
    assert answers == ["0"], answers
    s.orthanc.rest("POST", f"/queries/{query['ID']}/answers/0/retrieve",
                   {"TargetAet": "ORTHANC", "Synchronous": True})

    received = s.orthanc.study_instances(study_uid)
    assert set(received) == set(sops), s.server.log()[-3000:]
    assert_same_datasets(s, sops, received)
