"""Modality Worklist C-FIND latency: pacsnode (items in its index) against DCMTK's
``wlmscpfs`` (the same items as ``.wl`` files, which it scans on every query).

``--items`` scheduled procedure steps spread over ``--days`` days and ``--stations``
station AE titles; the query is what a modality sends at the start of a day: today's steps
for its own AE title and modality, with the usual return keys. DCMTK ``findscu -W`` runs
it ``--repeat`` times (one process and association each); medians in milliseconds. Also
measured, to separate the server's work from the client's: the same run for a station with
no step today (``*_empty_ms``: findscu's process, the association and one empty answer), and
the query sent ``--repeat`` times over one association (``*_per_query_ms``).

    .venv/bin/python bench/worklist.py --items 100000 --out worklist.json
    .venv/bin/python bench/worklist.py --items 100000 --reuse   # the same items, not reloaded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from query import ENV, free_port, process, wait_echo

from pacsnode.core import worklist
from pacsnode.core.archive import Archive

BIN = Path(sys.prefix) / "bin"
MODALITIES = ("CT", "MR", "US", "CR", "DX")


def items(count: int, days: int, stations: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    first = dt.date.today() - dt.timedelta(days=days // 2)
    out = []
    for n in range(count):
        day = first + dt.timedelta(days=rng.randrange(days))
        station = rng.randrange(stations)
        out.append({
            "patient_name": f"PATIENT{n:06d}^TEST", "patient_id": f"P{n:06d}",
            "modality": MODALITIES[station % len(MODALITIES)],  # one per station
            "station_aet": f"ST{station:03d}", "accession": f"A{n:07d}",
            "start": f"{day:%Y%m%d}{rng.randrange(7, 19):02d}{rng.choice((0, 15, 30, 45)):02d}",
            "procedure": "SCHEDULED EXAM"})
    return out


def findscu(port: int, aet: str, station: str, modality: str, day: str,
            repeat: int = 1) -> list[str]:
    sps = "ScheduledProcedureStepSequence[0]"
    return ["/usr/bin/findscu", "-v", "-W", "-aec", aet, "--repeat", str(repeat),
            "127.0.0.1", str(port),
            "-k", f"{sps}.ScheduledStationAETitle={station}",
            "-k", f"{sps}.Modality={modality}",
            "-k", f"{sps}.ScheduledProcedureStepStartDate={day}",
            "-k", f"{sps}.ScheduledProcedureStepStartTime",
            "-k", f"{sps}.ScheduledProcedureStepDescription",
            "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
            "-k", "StudyInstanceUID"]


def measure_server(results: dict[str, object], name: str, port: int, aet: str,
                   station: str, modality: str, day: str, repeat: int,
                   expected: int) -> None:
    """The three figures of the module documentation for one server."""
    results[f"{name}_ms"] = measure(findscu(port, aet, station, modality, day), repeat,
                                    expected)
    results[f"{name}_empty_ms"] = measure(findscu(port, aet, "NOSUCH", modality, day),
                                          repeat, 0)
    many = measure(findscu(port, aet, station, modality, day, repeat), 3, expected * repeat)
    results[f"{name}_per_query_ms"] = round(
        (many - float(results[f"{name}_empty_ms"])) / max(1, repeat - 1), 2)


def measure(cmd: list[str], repeat: int, expected: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        times.append((time.perf_counter() - t0) * 1000)
        found = (proc.stdout + proc.stderr).count("(Pending)")
        if proc.returncode != 0 or found != expected:
            raise RuntimeError(f"{found} matches, {expected} expected:\n{proc.stderr[-800:]}")
    return statistics.median(times)


def load(work: Path, scheduled: list[dict[str, str]]) -> None:
    """The items into pacsnode's index and, as ``.wl`` files, into wlmscpfs's folder."""
    wl_dir = work / "wlm" / "WLM"
    wl_dir.mkdir(parents=True)
    (wl_dir / "lockfile").touch()
    t0 = time.perf_counter()
    archive = Archive.open(work / "pacsnode")
    for n, fields in enumerate(scheduled):
        item = worklist.add(archive.engine, worklist.dataset_from_fields(**fields))
        # the item as pacsnode completed it (generated IDs and Study Instance UID)
        worklist.dataset_from_json(item.attrs).save_as(
            wl_dir / f"item{n:06d}.wl", implicit_vr=False, little_endian=True)
    archive.close()
    print(f"loaded in {time.perf_counter() - t0:.0f} s (pacsnode index and .wl files)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--stations", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "wlbench")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the items a previous run with the same options loaded")
    args = ap.parse_args()
    work = args.workdir
    marker = work / f"loaded-{args.items}-{args.days}-{args.stations}-{dt.date.today()}"
    reuse = args.reuse and marker.exists()
    if not reuse:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    scheduled = items(args.items, args.days, args.stations, seed=3)
    today = f"{dt.date.today():%Y%m%d}"
    station, modality = "ST007", MODALITIES[7 % len(MODALITIES)]  # its modality
    expected = sum(1 for i in scheduled if i["station_aet"] == station
                   and i["start"].startswith(today))
    print(f"{args.items:,} items; today's for {station}: {expected}")

    if not reuse:
        load(work, scheduled)
        marker.touch()

    results = {"items": args.items, "matches": expected}
    port = free_port()
    with process([str(BIN / "pacsnode"), "serve", "--data-dir", str(work / "pacsnode"),
                  "--dicom-port", str(port), "--http-port", str(free_port()),
                  "--log-level", "warning"], work / "pacsnode.log"):
        wait_echo(port, "PACSNODE")
        measure_server(results, "pacsnode", port, "PACSNODE", station, modality, today,
                       args.repeat, expected)
    port = free_port()
    with process(["/usr/bin/wlmscpfs", "-dfp", str(work / "wlm"), str(port)],
                 work / "wlmscpfs.log"):
        time.sleep(1)
        measure_server(results, "wlmscpfs", port, "WLM", station, modality, today,
                       args.repeat, expected)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
