"""C-MOVE throughput: a CT study (512x512, 16-bit, explicit VR little endian) moved by DCMTK
``movescu`` from pacsnode, and from Orthanc, to a DCMTK ``storescp`` (the destination),
all on loopback with ``TCP_NODELAY=1``. Reports instances/s per run and the median.

    .venv/bin/python bench/move.py --instances 250 --repeat 3 --out move.json

pacsnode gets the study with ``pacsnode import``; Orthanc with ``storescu``. Both declare the
destination (AE title STORESCP) as a peer / modality. Every run moves into an empty
directory and checks that every instance arrived.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom

from pacsnode.synthetic import generate_ct_series

sys.path.insert(0, str(Path(__file__).parent))
from query import ENV, free_port, process, wait_echo

BIN = Path(sys.prefix) / "bin"


def move_runs(source_aet: str, source_port: int, study: str, dest_port: int, dest_dir: Path,
              expected: int, repeat: int, work: Path) -> list[float]:
    rates = []
    for n in range(repeat):
        shutil.rmtree(dest_dir, ignore_errors=True)
        dest_dir.mkdir(parents=True)
        with process(["/usr/bin/storescp", "+xa", "-aet", "STORESCP", "-od", str(dest_dir),
                      str(dest_port)], work / "storescp.log"):
            wait_echo(dest_port, "STORESCP")
            t0 = time.perf_counter()
            proc = subprocess.run(["/usr/bin/movescu", "-S", "-aec", source_aet, "-aem",
                                   "STORESCP", "-k", "QueryRetrieveLevel=STUDY", "-k",
                                   f"StudyInstanceUID={study}", "127.0.0.1",
                                   str(source_port)], env=ENV, capture_output=True,
                                  text=True, errors="replace", timeout=600)
            seconds = time.perf_counter() - t0
        received = sum(1 for _ in dest_dir.iterdir())
        if proc.returncode != 0 or received != expected:
            raise RuntimeError(f"{source_aet} run {n + 1}: {received}/{expected} received\n"
                               f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        rates.append(expected / seconds)
        print(f"  {source_aet:<9} run {n + 1}: {expected / seconds:7.1f} instances/s")
    return rates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=250)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--targets", default="pacsnode,orthanc")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mbench")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = generate_ct_series(work / "corpus", args.instances, seed=11)
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    dest_port = free_port()
    results: dict[str, Any] = {"instances": args.instances, "runs": {}}
    targets = args.targets.split(",")
    if "pacsnode" in targets:
        config = work / "pacsnode.toml"
        config.write_text(f'[peers.dest]\naet = "STORESCP"\nhost = "127.0.0.1"\n'
                          f"port = {dest_port}\n")
        data, port = work / "pacsnode-data", free_port()
        subprocess.run([str(BIN / "pacsnode"), "import", "--data-dir", str(data),
                        str(work / "corpus")], check=True, capture_output=True)
        with process([str(BIN / "pacsnode"), "serve", "--config", str(config), "--data-dir",
                      str(data), "--dicom-port", str(port), "--http-port", str(free_port()),
                      "--log-level", "warning"], work / "pacsnode.log"):
            wait_echo(port, "PACSNODE")
            results["runs"]["pacsnode"] = move_runs("PACSNODE", port, study, dest_port,
                                                    work / "dest", len(files), args.repeat,
                                                    work)
    if "orthanc" in targets:
        root = work / "orthanc"
        (root / "db").mkdir(parents=True)
        port, http = free_port(), free_port()
        (root / "orthanc.json").write_text(json.dumps({
            "Name": "BENCH", "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"), "HttpPort": http, "DicomPort": port,
            "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "Plugins": [],
            "DicomModalities": {"STORESCP": ["STORESCP", "127.0.0.1", dest_port],
                                "MOVESCU": ["MOVESCU", "127.0.0.1", 104]}}))
        with process([shutil.which("Orthanc") or "/usr/sbin/Orthanc",
                      str(root / "orthanc.json")], root / "orthanc.log"):
            wait_echo(port, "ORTHANC")
            subprocess.run(["/usr/bin/storescu", "-aec", "ORTHANC", "127.0.0.1", str(port),
                            *map(str, files)], env=ENV, check=True, capture_output=True)
            results["runs"]["orthanc"] = move_runs("ORTHANC", port, study, dest_port,
                                                   work / "dest", len(files), args.repeat,
                                                   work)
    print()
    for target, rates in results["runs"].items():
        print(f"{target:<9} median {statistics.median(rates):7.1f} instances/s "
              f"(runs: {', '.join(f'{r:.1f}' for r in rates)})")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
