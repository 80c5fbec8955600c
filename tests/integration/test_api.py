"""The REST API (``/api``) of ``pacsnode serve``, driven with httpx, on both index backends:
stats, lists with DICOM filters and paging, one object with its children, delete, peers
(with a C-ECHO to a DCMTK storescp), OpenAPI. Expected values come from the corpus table."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.test_find_dcmtk import ROOT, STUDIES, write_corpus

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api(module_server: PacsnodeServer, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[httpx.Client]:
    module_server.cli("import", str(write_corpus(tmp_path_factory.mktemp("corpus"))[0].parent))
    with httpx.Client(base_url=module_server.url, timeout=30) as client:
        yield client


def test_stats(api: httpx.Client) -> None:
    stats = api.get("/api/stats").json()
    series = sum(len(row[5]) for row in STUDIES)
    assert {k: stats[k] for k in ("patients", "studies", "series", "instances")} == {
        "patients": len({row[1] for row in STUDIES}), "studies": len(STUDIES),
        "series": series, "instances": 2 * series}
    assert stats["stored_bytes"] > 0 and stats["disk_free_bytes"] > 0


def test_lists_filter_and_page(api: httpx.Client) -> None:
    got = api.get("/api/studies", params={"PatientName": "doe*"}).json()
    assert sorted(s["accession"] for s in got["items"]) == ["A1", "A2", "A7"]
    assert got["more"] is False
    a3 = api.get("/api/studies", params={"AccessionNumber": "A3"}).json()["items"][0]
    assert a3["modalities"] == ["CT", "PT"] and a3["series"] == 2 and a3["instances"] == 4
    assert a3["patient_name"] == "Müller^Jürgen"
    assert a3["dicomweb"].endswith(f"/dicom-web/studies/{ROOT}.3")
    everything = [s["study_uid"] for s in api.get("/api/studies").json()["items"]]
    assert len(everything) == len(STUDIES)
    first = api.get("/api/studies", params={"limit": 4}).json()
    rest = api.get("/api/studies", params={"limit": 4, "offset": 4}).json()
    assert first["more"] is True and rest["more"] is False
    assert [s["study_uid"] for s in first["items"] + rest["items"]] == everything
    mr = api.get("/api/series", params={"Modality": "MR"}).json()["items"]
    assert len(mr) == sum(row[5].count("MR") for row in STUDIES)
    patients = api.get("/api/patients", params={"PatientID": "P1"}).json()["items"]
    assert [(p["patient_id"], p["studies"]) for p in patients] == [("P1", 2)]
    for params in ({"limit": 5000}, {"NotAKeyword": "x"}):
        r = api.get("/api/studies", params=params)
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM


def test_one_with_children(api: httpx.Client) -> None:
    study = api.get(f"/api/studies/{ROOT}.2").json()
    assert study["accession"] == "A2" and len(study["series"]) == 2
    assert study["attributes"]["00100010"]["Value"] == [{"Alphabetic": "DOE^JANE"}]
    series = api.get(f"/api/series/{ROOT}.2.1").json()
    assert [i["sop_instance_uid"] for i in series["instances"]] == \
        [f"{ROOT}.2.1.1", f"{ROOT}.2.1.2"]
    patient = api.get("/api/patients/P1").json()
    assert sorted(s["accession"] for s in patient["studies"]) == ["A1", "A7"]
    instance = api.get(f"/api/instances/{ROOT}.2.1.1").json()
    assert instance["number"] == 1 and instance["rows"] == 4
    for path in (f"/api/studies/{ROOT}.99", "/api/patients/NOBODY",
                 f"/api/series/{ROOT}.2"):  # a study UID is not a series
        r = api.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, path
        assert r.json()["detail"]


def test_openapi(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/api/studies", "/api/studies/{uid}", "/api/peers", "/api/stats",
                 "/dicom-web/studies", "/dicom-web/studies/{study}/metadata"):
        assert path in spec["paths"], path
    page = api.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()  # served without Internet access
    script = api.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_delete(pacsnode_server, tmp_path: Path) -> None:
    server = pacsnode_server()
    server.cli("import", str(write_corpus(tmp_path / "corpus")[0].parent))
    with httpx.Client(base_url=server.url, timeout=30) as api:
        before = api.get("/api/stats").json()
        assert api.delete(f"/api/series/{ROOT}.3.2").status_code == 204
        assert api.get(f"/api/series/{ROOT}.3.2").status_code == 404
        assert [s["modality"] for s in api.get(f"/api/studies/{ROOT}.3").json()["series"]
                ] == ["CT"]
        after = api.get("/api/stats").json()
        assert after["instances"] == before["instances"] - 2
        assert after["stored_bytes"] < before["stored_bytes"]
        assert api.delete(f"/api/studies/{ROOT}.5").status_code == 204
        assert api.get("/dicom-web/studies", params={"AccessionNumber": "A5"}
                       ).status_code == 204
        assert api.delete("/api/patients/P1").status_code == 204
        assert api.get("/api/studies", params={"PatientID": "P1"}).json()["items"] == []
        assert api.delete(f"/api/studies/{ROOT}.5").status_code == 404
    out = server.cli("check").stdout
    assert "missing" not in out.lower() or "0 missing" in out.lower(), out


def test_peers(pacsnode_server, tmp_path: Path) -> None:
    server = pacsnode_server()
    scp_port = free_port()
    receiver = subprocess.Popen([dcmtk("storescp"), "-aet", "WS", "-od", str(tmp_path),
                                 str(scp_port)], env=DCMTK_ENV)
    try:
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, timeout=30) as api:
            r = api.post("/api/peers", json={"name": "ws", "aet": "WS", "host": "127.0.0.1",
                                              "port": scp_port})
            assert r.status_code == 201 and r.headers["location"] == "/api/peers/ws"
            assert api.post("/api/peers", json={"name": "ws", "aet": "X", "host": "h",
                                                 "port": 1}).status_code == 409
            r = api.post("/api/peers", json={"name": "bad", "aet": "X", "host": "h",
                                              "port": 70000})
            assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
            assert [(p["name"], p["source"]) for p in api.get("/api/peers").json()] == \
                [("ws", "index")]
            echo = api.post("/api/peers/ws/echo").json()
            assert echo["ok"] is True and echo["status"] == 0
            api.post("/api/peers", json={"name": "gone", "aet": "GONE",
                                         "host": "127.0.0.1", "port": free_port()})
            assert api.post("/api/peers/gone/echo").json()["ok"] is False
            assert api.delete("/api/peers/ws").status_code == 204
            assert api.delete("/api/peers/ws").status_code == 404
            assert api.post("/api/peers/ws/echo").status_code == 404
        # the CLI sees what the API did: same index
        listed = subprocess.run([sys.executable, "-m", "pacsnode", "peers", "list",
                                 *server.archive_args()], capture_output=True, text=True,
                                timeout=60)
        assert "gone" in listed.stdout and "ws" not in listed.stdout.split()
    finally:
        receiver.terminate()
        receiver.wait()


def test_study_archive_zip(api: httpx.Client, module_server: PacsnodeServer,
                           tmp_path: Path) -> None:
    import io
    import zipfile

    import pydicom

    from tests.integration.corpus import dataset_bytes

    corpus = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
              for p in write_corpus(tmp_path / "again")}
    r = api.get(f"/api/studies/{ROOT}.2/archive")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = zf.namelist()
        assert len(names) == 4 and all(n.endswith(".dcm") for n in names)
        for name in names:
            data = zf.read(name)
            uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
                      .SOPInstanceUID)
            assert dataset_bytes(data) == dataset_bytes(corpus[uid])
    r = api.get(f"/api/studies/{ROOT}.2/archive", params={"dicomdir": "true"})
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.namelist()[-1] == "DICOMDIR"
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
        files = {"/".join(item.ReferencedFileID) for item in
                 dicomdir.DirectoryRecordSequence if "ReferencedFileID" in item}
        assert files == set(zf.namelist()[:-1])
    assert api.get(f"/api/studies/{ROOT}.99/archive").status_code == 404


def test_cors_for_a_viewer_on_another_origin(pacsnode_server) -> None:
    """--cors-origins lets a browser application (OHIF on another origin) call DICOMweb;
    without it, no CORS headers are sent."""
    origin = "http://viewer.example:3000"
    server = pacsnode_server("--cors-origins", origin)
    preflight = httpx.options(f"{server.dicomweb}/studies", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "accept"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    r = httpx.get(f"{server.dicomweb}/studies", headers={"Origin": origin})
    assert r.headers["access-control-allow-origin"] == origin
    other = httpx.get(f"{server.dicomweb}/studies", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    plain = pacsnode_server()
    r = httpx.get(f"{plain.dicomweb}/studies", headers={"Origin": origin})
    assert "access-control-allow-origin" not in r.headers
