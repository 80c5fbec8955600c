"""C-FIND latency of pacsnode (SQLite and PostgreSQL indexes) and Orthanc as the index grows.

For each index size, DCMTK ``findscu`` runs every query ``--repeat`` times (one process and
association per run: the latency a user or a viewer sees) and once with ``--repeat N``
inside a single association (the per-query cost on an open association). Medians are
reported in milliseconds.

Queries (Study Root): at STUDY level a patient name prefix, a Patient ID, a one-week date
range and an Accession Number, each matching a few studies; at SERIES level the series of
one study; at IMAGE level the instances of one series.

pacsnode's index is grown with ``query_load.py`` (index rows written by the core's index
writer, no files); Orthanc is sent the same corpus as tiny DICOM files with ``storescu``
(4 associations), which limits the sizes it reaches in one run (``--orthanc-sizes``).

    .venv/bin/python bench/query.py --sizes 10000,100000,1000000 \\
        --backends sqlite,postgresql --orthanc-sizes 10000 --out query.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, str(Path(__file__).parent))
import query_load as ql

ENV = {**os.environ, "TCP_NODELAY": "1"}
RETURN_KEYS = ["PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "StudyInstanceUID"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def queries(size: int) -> dict[str, tuple[str, dict[str, str], int]]:
    """name -> (level, keys, expected match count) for an index of ``size`` instances."""
    studies = size // ql.INSTANCES_PER_STUDY
    s = studies // 2 + 1  # a study in the middle
    p = s // 2
    name = ql.patient_name(p)
    prefix = name[: name.index("^") - 1]  # e.g. MUELLER00012: up to 10 patients
    expected_prefix = sum(1 for q in range(studies // 2 + 1)
                          if ql.patient_name(q).startswith(prefix) and 2 * q < studies)
    day = ql.study_date(s)
    first = day[:6] + f"{max(1, int(day[6:]) - 3):02d}"
    last = day[:6] + f"{min(28, int(day[6:]) + 3):02d}"
    in_range = sum(1 for t in range(studies) if first <= ql.study_date(t) <= last)
    study_keys = {k: "" for k in RETURN_KEYS}
    return {
        "study: name prefix": ("STUDY", {**study_keys, "PatientName": prefix + "*"},
                               2 * expected_prefix),
        "study: patient id": ("STUDY", {**study_keys, "PatientID": ql.patient_id(p)}, 2),
        "study: date range": ("STUDY", {**study_keys, "StudyDate": f"{first}-{last}"},
                              in_range),
        "study: accession": ("STUDY", {**study_keys, "AccessionNumber": ql.accession(s)}, 1),
        "series of a study": ("SERIES", {"StudyInstanceUID": ql.study_uid(s),
                                         "SeriesInstanceUID": "", "Modality": "",
                                         "SeriesNumber": "", "SeriesDescription": ""},
                              ql.SERIES_PER_STUDY),
        "images of a series": ("IMAGE", {"StudyInstanceUID": ql.study_uid(s),
                                         "SeriesInstanceUID": f"{ql.study_uid(s)}.1",
                                         "SOPInstanceUID": "", "InstanceNumber": ""},
                               ql.INSTANCES_PER_SERIES),
    }


def findscu_cmd(port: int, aet: str, level: str, keys: dict[str, str],
                repeat: int = 1) -> list[str]:
    cmd = ["/usr/bin/findscu", "-S", "-aec", aet, "-k", f"QueryRetrieveLevel={level}"]
    for k, v in keys.items():
        cmd += ["-k", f"{k}={v}" if v else k]
    if repeat > 1:
        cmd += ["--repeat", str(repeat)]
    return [*cmd, "127.0.0.1", str(port)]


def count_responses(output: str) -> int:
    return output.count("Find Response:") or output.count("(Pending)")


def measure(port: int, aet: str, level: str, keys: dict[str, str], expected: int,
            repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(findscu_cmd(port, aet, level, keys), env=ENV,
                              capture_output=True, text=True, errors="replace", timeout=120)
        runs.append((time.perf_counter() - t0) * 1000)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        found = count_responses(proc.stdout + proc.stderr)
        if found != expected:
            raise RuntimeError(f"{level} {keys}: {found} matches, expected {expected}")
    # per query on an open association: N queries in one findscu run, minus one query's run
    many = max(repeat, 20)
    t0 = time.perf_counter()
    subprocess.run(findscu_cmd(port, aet, level, keys, many), env=ENV, capture_output=True,
                   timeout=300, check=True)
    in_assoc = ((time.perf_counter() - t0) * 1000 - statistics.median(runs)) / (many - 1)
    return {"median_ms": statistics.median(runs), "in_association_ms": in_assoc,
            "matches": expected}


@contextmanager
def process(cmd: list[str], log: Path, **kw: Any):
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=ENV,
                                start_new_session=True, **kw)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_echo(port: int, aet: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["/usr/bin/echoscu", "-aec", aet, "127.0.0.1", str(port)],
                          env=ENV, capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"no C-ECHO answer on port {port}")


def bench_pacsnode(backend: str, sizes: list[int], work: Path, repeat: int) -> list[dict]:
    exe = str(Path(sys.prefix) / "bin" / "pacsnode")
    data = work / f"pacsnode-{backend}"
    shutil.rmtree(data, ignore_errors=True)
    db = None
    if backend == "postgresql":
        import psycopg

        name = f"pacsnode_bench_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        db = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    results = []
    try:
        for size in sizes:
            print(f"pacsnode/{backend}: growing the index to {size:,} instances")
            load_s = ql.load(data, db, size, processes=4 if db else 1)
            if db:  # statistics after a bulk load (autovacuum would get there later)
                import psycopg

                with psycopg.connect(db, autocommit=True) as conn:
                    conn.execute("ANALYZE")
            port = free_port()
            cmd = [exe, "serve", "--data-dir", str(data), "--dicom-port", str(port),
                   "--http-port", str(free_port()), "--log-level", "warning"]
            if db:
                cmd += ["--db", db]
            with process(cmd, work / f"serve-{backend}.log"):
                wait_echo(port, "PACSNODE")
                for qname, (level, keys, expected) in queries(size).items():
                    r = measure(port, "PACSNODE", level, keys, expected, repeat)
                    results.append({"target": f"pacsnode/{backend}", "size": size,
                                    "query": qname, "load_s": load_s, **r})
                    print(f"  {size:>9,} {qname:<20} {r['median_ms']:7.1f} ms/run "
                          f"{r['in_association_ms']:7.2f} ms/query  ({expected} matches)")
    finally:
        if db:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db.rsplit("/", 1)[1]}" WITH (FORCE)')
    return results


def write_files(directory: Path, first_study: int, last_study: int) -> list[Path]:
    """The corpus as tiny DICOM files, for Orthanc."""
    paths = []
    for s in range(first_study, last_study):
        for k in range(1, ql.SERIES_PER_STUDY + 1):
            ds = ql._series_dataset(s, k)
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            ds.PixelData = bytes(256)
            for i in range(1, ql.INSTANCES_PER_SERIES + 1):
                ds.SOPInstanceUID = f"{ql.study_uid(s)}.{k}.{i}"
                ds.InstanceNumber = i
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                path = directory / f"{s}-{k}-{i}.dcm"
                ds.save_as(path, enforce_file_format=True)
                paths.append(path)
    return paths


def bench_orthanc(sizes: list[int], work: Path, repeat: int) -> list[dict]:
    exe = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    root = work / "orthanc"
    shutil.rmtree(root, ignore_errors=True)
    (root / "db").mkdir(parents=True)
    http, port = free_port(), free_port()
    config = {"Name": "BENCH", "StorageDirectory": str(root / "db"),
              "IndexDirectory": str(root / "db"), "HttpPort": http, "DicomPort": port,
              "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
              "DefaultEncoding": "Utf8", "Plugins": [],
              # Orthanc answers C-FIND only from declared modalities
              "DicomModalities": {"FINDSCU": ["FINDSCU", "127.0.0.1", 104]}}
    (root / "orthanc.json").write_text(json.dumps(config))
    results = []
    loaded = 0
    with process([exe, str(root / "orthanc.json")], root / "orthanc.log"):
        wait_echo(port, "ORTHANC")
        for size in sizes:
            print(f"orthanc: sending {size - loaded:,} instances")
            files_dir = Path(tempfile.mkdtemp(dir=work))
            files = write_files(files_dir, loaded // ql.INSTANCES_PER_STUDY,
                                -(-size // ql.INSTANCES_PER_STUDY))
            t0 = time.perf_counter()
            chunks = [files[i::4] for i in range(4)]
            procs = []
            for n, chunk in enumerate(chunks):
                listing = files_dir / f"list{n}.txt"
                listing.write_text("".join(f"{p}\n" for p in chunk))
                procs.append(subprocess.Popen(
                    ["/usr/bin/storescu", "-aec", "ORTHANC", "127.0.0.1", str(port),
                     f"@{listing}"], env=ENV, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            for proc in procs:
                proc.wait()
            load_s = time.perf_counter() - t0
            shutil.rmtree(files_dir)
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/statistics") as rsp:
                count = json.loads(rsp.read())["CountInstances"]
            if count < size:
                raise RuntimeError(f"Orthanc holds {count} instances, expected {size}")
            loaded = size
            for qname, (level, keys, expected) in queries(size).items():
                r = measure(port, "ORTHANC", level, keys, expected, repeat)
                results.append({"target": "orthanc", "size": size, "query": qname,
                                "load_s": load_s, **r})
                print(f"  {size:>9,} {qname:<20} {r['median_ms']:7.1f} ms/run "
                      f"{r['in_association_ms']:7.2f} ms/query  ({expected} matches)")
    return results


def table(results: list[dict]) -> str:
    lines = [f"{'target':<20} {'instances':>10} {'query':<20} {'ms/run':>8} {'ms/query':>9}",
             "-" * 72]
    for r in results:
        lines.append(f"{r['target']:<20} {r['size']:>10,} {r['query']:<20} "
                     f"{r['median_ms']:8.1f} {r['in_association_ms']:9.2f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--orthanc-sizes", default="10000", help="'' to skip Orthanc")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "qbench")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: list[dict] = []
    for backend in [b for b in args.backends.split(",") if b]:
        results += bench_pacsnode(backend, sizes, args.workdir, args.repeat)
    orthanc_sizes = [int(s) for s in args.orthanc_sizes.split(",") if s]
    if orthanc_sizes:
        results += bench_orthanc(orthanc_sizes, args.workdir, args.repeat)
    print()
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
