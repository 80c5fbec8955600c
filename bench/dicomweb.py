"""DICOMweb throughput and latency: pacsnode and Orthanc (with its DICOMweb plugin), on the
same corpus in the same run, over HTTP on loopback (one keep-alive httpx client).

* STOW-RS: a CT series (512x512, 16-bit, explicit VR little endian; ``--instances``) posted
  in requests of ``--batch`` instances; instances/s.
* QIDO-RS, median of ``--repeat`` requests: studies by PatientID, the series of a study,
  the instances of the CT series.
* WADO-RS: the whole CT series (``multipart/related; type="application/dicom"``; pacsnode
  with ``transfer-syntax=*``, as stored), MB/s of response body.
* Series metadata of the CT series, median of ``--repeat-metadata``.

Besides the CT series, ``--studies`` small synthetic studies make the index non-trivial.

    .venv/bin/python bench/dicomweb.py --instances 1000 --out dicomweb.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from query import free_port, process

from pacsnode.synthetic import generate_corpus, generate_ct_series

BIN = Path(sys.prefix) / "bin"
ORTHANC_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary={b}'


def multipart_body(paths: list[Path], boundary: str) -> bytes:
    out = bytearray()
    for path in paths:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += path.read_bytes()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def stow(client: httpx.Client, root: str, paths: list[Path], batch: int) -> float:
    """Post ``paths`` in batches; instances/s (the bodies are built before the clock)."""
    boundary = "pacsnodebench"
    bodies = [multipart_body(paths[i:i + batch], boundary)
              for i in range(0, len(paths), batch)]
    t0 = time.perf_counter()
    for body in bodies:
        r = client.post(f"{root}/studies", content=body,
                        headers={"Content-Type": STOW_TYPE.format(b=boundary),
                                 "Accept": "application/dicom+json"})
        if r.status_code != 200:
            raise RuntimeError(f"STOW {r.status_code}: {r.text[:500]}")
    return len(paths) / (time.perf_counter() - t0)


def median_ms(client: httpx.Client, url: str, repeat: int, expected: int | None = None,
              accept: str = "application/dicom+json") -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url, headers={"Accept": accept})
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
        if expected is not None and len(r.json()) != expected:
            raise RuntimeError(f"GET {url}: {len(r.json())} results, {expected} expected")
    return statistics.median(times)


def wado_mb_s(client: httpx.Client, url: str, accept: str, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = 0
        with client.stream("GET", url, headers={"Accept": accept}) as r:
            if r.status_code != 200:
                raise RuntimeError(f"GET {url}: {r.status_code}")
            for chunk in r.iter_bytes(1 << 20):
                size += len(chunk)
        rates.append(size / 1e6 / (time.perf_counter() - t0))
    return statistics.median(rates)


def run(name: str, root: str, ct: list[Path], small: list[Path], args: argparse.Namespace,
        wado_accept: str) -> dict[str, Any]:
    first = pydicom.dcmread(ct[0], stop_before_pixels=True)
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    pid = str(first.PatientID)
    out: dict[str, Any] = {"target": name}
    with httpx.Client(timeout=600) as client:
        stow(client, root, small, args.batch)
        out["stow_instances_s"] = stow(client, root, ct, args.batch)
        out["qido_studies_by_patient_id_ms"] = median_ms(
            client, f"{root}/studies?PatientID={pid}", args.repeat, 1)
        out["qido_series_of_study_ms"] = median_ms(
            client, f"{root}/studies/{study}/series", args.repeat, 1)
        out["qido_instances_of_series_ms"] = median_ms(
            client, f"{root}/studies/{study}/series/{series}/instances", args.repeat, len(ct))
        out["series_metadata_ms"] = median_ms(
            client, f"{root}/studies/{study}/series/{series}/metadata",
            args.repeat_metadata, len(ct))
        out["wado_series_mb_s"] = wado_mb_s(client, f"{root}/studies/{study}/series/{series}",
                                            wado_accept, args.repeat_wado)
    for key, value in out.items():
        if key != "target":
            print(f"  {name:<9} {key:<32} {value:10.1f}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--studies", type=int, default=100, help="small synthetic studies")
    ap.add_argument("--batch", type=int, default=25, help="instances per STOW request")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--repeat-metadata", type=int, default=5)
    ap.add_argument("--repeat-wado", type=int, default=3)
    ap.add_argument("--targets", default="pacsnode,orthanc")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "wbench")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ct = generate_ct_series(work / "ct", args.instances, seed=5)
    small = generate_corpus(work / "small", patients=args.studies // 2, studies_per_patient=2,
                            series_per_study=1, instances_per_series=2, rows=16, columns=16,
                            seed=6)
    results = []
    if "pacsnode" in args.targets.split(","):
        port, http = free_port(), free_port()
        with process([str(BIN / "pacsnode"), "serve", "--data-dir", str(work / "pacsnode"),
                      "--dicom-port", str(port), "--http-port", str(http), "--http-host",
                      "127.0.0.1", "--log-level", "warning"], work / "pacsnode.log"):
            wait_http(f"http://127.0.0.1:{http}/docs")
            results.append(run("pacsnode", f"http://127.0.0.1:{http}/dicom-web", ct, small,
                               args, 'multipart/related; type="application/dicom"; '
                               "transfer-syntax=*"))
    if "orthanc" in args.targets.split(","):
        root = work / "orthanc"
        (root / "db").mkdir(parents=True)
        http = free_port()
        (root / "orthanc.json").write_text(json.dumps({
            "Name": "BENCH", "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"), "HttpPort": http, "DicomPort": free_port(),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "Plugins": [ORTHANC_PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DefaultEncoding": "Utf8"}))
        with process([shutil.which("Orthanc") or "/usr/sbin/Orthanc",
                      str(root / "orthanc.json")], root / "orthanc.log"):
            wait_http(f"http://127.0.0.1:{http}/system")
            results.append(run("orthanc", f"http://127.0.0.1:{http}/dicom-web", ct, small,
                               args, 'multipart/related; type="application/dicom"'))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
