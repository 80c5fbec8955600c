"""A fast loader of index rows for the C-FIND benchmark (bench/query.py).

Growing an index to a million instances through C-STORE takes hours; C-FIND never opens a
file, so the benchmark writes index rows only, with the core's own code: every instance's
rows come from :func:`pacsnode.index.records.extract` on a pydicom data set (one per series,
the other instances of the series derived from it by changing their UIDs and numbers) and
are written by :func:`pacsnode.index.writer.add_instance` — the index step of ingest — in
transactions of a few thousand instances. Derived counts and Modalities in Study are kept
by that code, exactly as on ingest. No files are written: ``pacsnode check`` would report
every instance's file missing, so use a throw-away data directory.

The corpus is deterministic: study ``s`` (0-based) belongs to patient ``s // 2``; each study
has 2 series of 10 instances (CT or MR by study parity).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage

from pacsnode import Archive
from pacsnode.index import records, writer
from pacsnode.index.engine import write_transaction

SERIES_PER_STUDY = 2
INSTANCES_PER_SERIES = 10
INSTANCES_PER_STUDY = SERIES_PER_STUDY * INSTANCES_PER_SERIES
ROOT = "1.2.826.0.1.3680043.10.511.9"
SURNAMES = ("SMITH", "MUELLER", "GARCIA", "ROSSI", "NOVAK", "TANAKA", "DUBOIS", "SILVA",
            "JENSEN", "KOWALSKI", "IVANOV", "MURPHY", "COHEN", "HANSEN", "NGUYEN", "KIM")
GIVEN = ("ANNA", "JOHN", "MARIA", "PETER", "SARA", "LUCAS", "EMMA", "NOAH", "MIA", "LEO")


def patient_name(p: int) -> str:
    return f"{SURNAMES[p % len(SURNAMES)]}{p // len(SURNAMES):06d}^{GIVEN[p % len(GIVEN)]}"


def patient_id(p: int) -> str:
    return f"PID{p:08d}"


def accession(s: int) -> str:
    return f"ACC{s:09d}"


def study_date(s: int) -> str:
    """Dates spread over about 27 years, one study per date-slot."""
    day = (s * 7919) % 10000  # a permutation of 0..9999 when s < 10000, spread beyond
    year, rest = divmod(day, 365)
    month, dom = divmod(rest, 31)
    return f"{1999 + year:04d}{min(month, 11) + 1:02d}{min(dom, 27) + 1:02d}"


def study_uid(s: int) -> str:
    return f"{ROOT}.{s}"


def _series_dataset(s: int, k: int) -> Dataset:
    p = s // 2
    mr = s % 2 == 1
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MRImageStorage if mr else CTImageStorage
    ds.SOPInstanceUID = f"{study_uid(s)}.{k}.1"
    ds.StudyDate, ds.StudyTime = study_date(s), f"{(s % 12) + 8:02d}{s % 60:02d}00"
    ds.SeriesDate, ds.SeriesTime = ds.StudyDate, ds.StudyTime
    ds.AccessionNumber = accession(s)
    ds.Modality = "MR" if mr else "CT"
    ds.ReferringPhysicianName = f"REF^{GIVEN[s % len(GIVEN)]}"
    ds.StudyDescription = "MR BRAIN" if mr else "CT CHEST"
    ds.SeriesDescription = f"SERIES {k}"
    ds.PatientName = patient_name(p)
    ds.PatientID = patient_id(p)
    ds.PatientBirthDate = f"{1940 + p % 60:04d}0101"
    ds.PatientSex = "F" if p % 2 else "M"
    ds.StudyInstanceUID = study_uid(s)
    ds.SeriesInstanceUID = f"{study_uid(s)}.{k}"
    ds.StudyID = str(s % 10000)
    ds.SeriesNumber = k
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 16
    return ds


def _instances(s: int) -> Iterator[records.InstanceRecord]:
    for k in range(1, SERIES_PER_STUDY + 1):
        base = records.extract(_series_dataset(s, k))
        attrs = json.loads(base.instance["attrs"])
        for i in range(1, INSTANCES_PER_SERIES + 1):
            uid = f"{study_uid(s)}.{k}.{i}"
            attrs["00080018"]["Value"] = [uid]
            attrs["00200013"]["Value"] = [i]
            inst = {**base.instance, "sop_instance_uid": uid, "instance_number": i,
                    "attrs": json.dumps(attrs, separators=(",", ":"))}
            yield dataclasses.replace(base, instance=inst)


def load(data_dir: Path, db: str | None, instances: int, *, batch: int = 2000,
         progress: bool = True, processes: int = 1) -> float:
    """Grow the index at ``data_dir``/``db`` to at least ``instances`` instances (studies
    already there are kept: loading 10k then 100k adds 90k). Returns seconds spent.
    ``processes`` > 1 loads disjoint ranges of patients in parallel (for PostgreSQL)."""
    started = time.perf_counter()
    with Archive.open(data_dir, db=db, fsync=False) as archive:
        have = archive.counts()["instances"]
    first_study = have // INSTANCES_PER_STUDY
    last_study = -(-instances // INSTANCES_PER_STUDY)
    if processes > 1 and last_study - first_study > 1000:
        import multiprocessing

        step = -(-(last_study - first_study) // processes)
        step += step % 2  # whole patients (two studies each) per process
        ranges = [(s, min(s + step, last_study))
                  for s in range(first_study, last_study, step)]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(len(ranges)) as pool:
            pool.starmap(_load_range, [(data_dir, db, a, b, batch) for a, b in ranges])
        return time.perf_counter() - started
    _load_range(data_dir, db, first_study, last_study, batch, progress, have, started)
    return time.perf_counter() - started


def _load_range(data_dir: Path, db: str | None, first_study: int, last_study: int,
                batch: int, progress: bool = False, have: int = 0,
                started: float | None = None) -> None:
    started = started or time.perf_counter()
    with Archive.open(data_dir, db=db, fsync=False) as archive:
        now = time.time()
        pending: list[records.InstanceRecord] = []

        def flush() -> None:
            with write_transaction(archive.engine) as conn:
                for rec in pending:
                    file_row = {"transfer_syntax_uid": "1.2.840.10008.1.2.1",
                                "storage_key": f"bench/{rec.instance['sop_instance_uid']}",
                                "file_size": 0, "data_offset": 0, "digest": "0" * 64,
                                "source_aet": "BENCH"}
                    writer.add_instance(conn, rec, file_row, now)
            pending.clear()

        for s in range(first_study, last_study):
            pending.extend(_instances(s))
            if len(pending) >= batch:
                flush()
                if progress:
                    done = (s + 1) * INSTANCES_PER_STUDY
                    rate = (done - have) / (time.perf_counter() - started)
                    print(f"\r  loaded {done:,} instances ({rate:,.0f}/s)", end="",
                          flush=True)
        if pending:
            flush()
        if progress:
            print()
