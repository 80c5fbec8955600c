"""Latency of the REST study list (``GET /api/studies``) with ``sort`` and ``count=true``
on a big index.

The index holds ``--studies`` studies of one series of one instance each, written by
``query_load.py`` (index rows only, no files; study ``s`` belongs to patient ``s // 2``), in
``--data-dir`` (kept: a second run reuses it). Each request goes through the FastAPI app
in-process (TestClient: routing, the query, the JSON answer; no sockets) ``--repeat``
times; the median and the fastest are reported in milliseconds.

    .venv/bin/python bench/api_list.py --data-dir /tmp/pacsnode-list --studies 100000
    .venv/bin/python bench/api_list.py --data-dir /tmp/pg-list --studies 100000 \\
        --db postgresql://postgres@127.0.0.1:5432/pacsnode_list
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
import query_load as ql

from pacsnode import Archive
from pacsnode.web import api_resources, problems

# name → query string of /api/studies
QUERIES = {
    "first page, storage order": "limit=25",
    "first page, sort=-StudyDate": "limit=25&sort=-StudyDate",
    "first page, sort=-StudyDate,-StudyTime (UI)": "limit=25&sort=-StudyDate,-StudyTime",
    "  + count=true": "limit=25&sort=-StudyDate,-StudyTime&count=true",
    "name prefix (10 patients), sorted, count": "limit=25&PatientName=MUELLER00001*"
                                                "&sort=-StudyDate,-StudyTime&count=true",
    "name prefix M* (12,500 studies), sorted, count": "limit=25&PatientName=M*"
                                                     "&sort=PatientName&count=true",
    "name prefix M*, sort=-StudyDate, count": "limit=25&PatientName=M*&sort=-StudyDate"
                                              "&count=true",
    "sort=-created": "limit=25&sort=-created",
    "sort=PatientName": "limit=25&sort=PatientName",
    "sort=StudyDescription (no index)": "limit=25&sort=StudyDescription",
    "sort=-NumberOfStudyRelatedInstances (no index)":
        "limit=25&sort=-NumberOfStudyRelatedInstances",
    "page 2,001, sort=-StudyDate": "limit=25&offset=50000&sort=-StudyDate",
    "count=true alone": "limit=1&count=true",
    "JSON-matched key + count (streams)": "limit=25&RequestedProcedureDescription=HEAD"
                                          "&sort=-StudyDate&count=true",
}


def load(data_dir: Path, db: str | None, studies: int) -> None:
    """Grow the index to ``studies`` studies of one instance each."""
    ql.SERIES_PER_STUDY = ql.INSTANCES_PER_SERIES = ql.INSTANCES_PER_STUDY = 1
    seconds = ql.load(data_dir, db, studies, batch=5000, progress=True)
    print(f"index ready in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    load(args.data_dir, args.db, args.studies)
    with Archive.open(args.data_dir, db=args.db, fsync=False) as archive:
        app = FastAPI()
        app.state.archive, app.state.settings = archive, archive.settings
        problems.install(app)
        app.include_router(api_resources.router)
        print(f"{archive.counts()['studies']:,} studies, "
              f"{archive.engine.dialect.name}; milliseconds (median, fastest)")
        with TestClient(app) as client:
            for name, query in QUERIES.items():
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    answer = client.get(f"/api/studies?{query}")
                    times.append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
                body = answer.json()
                total = f"  total {body['total']:,}" if "total" in body else ""
                print(f"  {name:50s} {statistics.median(times):8.1f} {min(times):8.1f}"
                      f"  ({len(body['items'])} items){total}")


if __name__ == "__main__":
    main()
