"""HL7 v2 orders into the Modality Worklist, end to end, on both index backends:
``pacsnode serve --hl7-port`` receives real-format ORM^O01 (v2.3.1) and OMI^O23 (v2.5.1)
messages over MLLP (a raw socket, tests/hl7_messages.py), each ACK's MSA-1/MSA-2 is checked,
and the worklist is then queried with DCMTK ``findscu -W``. Expected results are written
out here, not computed by pacsnode.

One server per backend for the module; the steps build on each other, so they run as one
test per backend, in order: new orders (NW) → change (XO) → duplicate → cancel (CA) →
discontinue (DC) → malformed and unsupported messages (nothing changes).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.conftest import (
    PacsnodeServer,
    free_port,
    pg_database,
    require_postgres,
)
from tests.findscu import find_worklist
from tests.hl7_messages import ack_fields, omi, orm, pid, send

pytestmark = pytest.mark.dcmtk

MWL_FIND = "1.2.840.10008.5.1.4.31"
SPS_KEYS = ("ScheduledStationAETitle", "Modality", "ScheduledProcedureStepStartDate",
            "ScheduledProcedureStepStartTime", "ScheduledProcedureStepID")
TOP_KEYS = ("AccessionNumber", "PatientName", "PatientID", "RequestedProcedureDescription",
            "StudyInstanceUID")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[PacsnodeServer]:
    with ExitStack() as stack:
        db = None
        if request.param == "postgresql":
            require_postgres()
            db = stack.enter_context(pg_database())
        base = tmp_path_factory.mktemp("hl7")
        srv = PacsnodeServer(data_dir=base / "data", db=db, port=free_port(),
                             extra=("--hl7-port", str(free_port()),
                                    "--hl7-station-aet", "DEFAULTAE"))
        srv.start()
        stack.callback(srv.stop)
        yield srv


def hl7_port(server: PacsnodeServer) -> int:
    return int(server.extra[1])


def acked(sock: socket.socket, raw: bytes, codec: str = "utf-8") -> tuple[str, str]:
    """MSA-1 and MSA-2 of the ACK to ``raw``."""
    msa = ack_fields(send(sock, raw), codec)["MSA"]
    return msa[1], msa[2]


def findscu(server: PacsnodeServer, work: Path, **match: str) -> list[tuple[Any, ...]]:
    """The worklist as findscu -W sees it: one tuple (TOP_KEYS values, SPS_KEYS values) per
    response, sorted; ``match`` gives matching keys (SPS keys go into the sequence item)."""
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    item = Dataset()
    for keyword in TOP_KEYS:
        setattr(query, keyword, match.get(keyword, ""))
    for keyword in SPS_KEYS:
        setattr(item, keyword, match.get(keyword, ""))
    query.ScheduledProcedureStepSequence = [item]
    responses, _ = find_worklist(server, work, query)
    rows = []
    for rsp in responses:
        (step,) = rsp.ScheduledProcedureStepSequence
        rows.append((*(str(rsp.get(k, "")) for k in TOP_KEYS),
                     *(str(step.get(k, "")) for k in SPS_KEYS)))
    return sorted(rows)


def states(server: PacsnodeServer) -> dict[str, str]:
    """SPS ID → state of every item (``pacsnode worklist list --all --json``)."""
    cmd = [sys.executable, "-m", "pacsnode", "worklist", "list", *server.archive_args(),
           "--all", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return {i["sps_id"]: i["state"] for i in json.loads(out)}


STUDY_A, STUDY_C = "1.2.826.0.1.3680043.10.511.7.1", "1.2.826.0.1.3680043.10.511.9"
ROW_A = ("ACC1", "DOE^JOHN", "P100", "CT HEAD", STUDY_A,
         "CT01", "CT", "20240315", "093000", "SPS1")
ROW_B = ("ACC2", "Müller^Jürgen", "P200", "MR SPINE", "",
         "DEFAULTAE", "MR", "20240315", "100000", "SPS2")
ROW_C1 = ("ACC9", "ROE^JANE", "P300", "MR KNEE", STUDY_C,
          "MR01", "MR", "20240316", "141500", "S9A")
ROW_C2 = ("ACC9", "ROE^JANE", "P300", "MR KNEE", STUDY_C,
          "DEFAULTAE", "MR", "20240316", "141500", "S9B")


def test_orders_over_mllp(server: PacsnodeServer, tmp_path: Path) -> None:
    john, jane = pid("P100", "DOE^JOHN"), pid("P300", "ROE^JANE", sex="F")
    order_b = orm("B1", "NW", placer="PL2", filler="FL2", accession="ACC2", rp_id="RP2",
                  sps_id="SPS2", station="", modality="MR", start="202403151000",
                  procedure="MR010^MR SPINE^LOCAL", charset="8859/1",
                  patient=pid("P200", "Müller^Jürgen"))
    with socket.create_connection(("127.0.0.1", hl7_port(server)), timeout=30) as sock:
        # new orders: ORM (UTF-8 and ISO 8859-1) and OMI with two steps, one connection
        assert acked(sock, orm("A1", "NW", patient=john, study_uid=STUDY_A)) == ("AA", "A1")
        assert acked(sock, order_b, "latin-1") == ("AA", "B1")
        assert acked(sock, omi("C1", "NW", patient=jane, study_uid=STUDY_C,
                               steps=(("S9A", "MR", "MR01"), ("S9B", "MR", "")))
                     ) == ("AA", "C1")
        rows = findscu(server, tmp_path / "q1")
        b_row = next(r for r in rows if r[0] == "ACC2")
        assert b_row[4].startswith("2.25.")  # no ZDS: a Study Instance UID was made
        assert rows == sorted([ROW_A, (*ROW_B[:4], b_row[4], *ROW_B[5:]), ROW_C1, ROW_C2])
        assert findscu(server, tmp_path / "q2", ScheduledStationAETitle="DEFAULTAE",
                       Modality="MR") == sorted([(*ROW_B[:4], b_row[4], *ROW_B[5:]),
                                                 ROW_C2])
        # change order A: another station, time and procedure; no SPS ID, no Study UID
        assert acked(sock, orm("A2", "XO", patient=john, station="CT02", sps_id="",
                               start="202403151100", procedure="CT002^CT CHEST^LOCAL")
                     ) == ("AA", "A2")
        assert findscu(server, tmp_path / "q3", AccessionNumber="ACC1") == [
            ("ACC1", "DOE^JOHN", "P100", "CT CHEST", STUDY_A,
             "CT02", "CT", "20240315", "110000", "SPS1")]
        assert findscu(server, tmp_path / "q4", ScheduledStationAETitle="CT01") == []
        # a duplicate new order, a change of an unknown order: errors, nothing changes
        assert acked(sock, orm("A3", "NW", patient=john)) == ("AE", "A3")
        assert acked(sock, orm("A4", "XO", patient=john, placer="NOPE", filler="NOPE")
                     ) == ("AE", "A4")
        # cancel A, discontinue C
        assert acked(sock, orm("A5", "CA", patient=john)) == ("AA", "A5")
        assert acked(sock, omi("C2", "DC", patient=jane)) == ("AA", "C2")
        assert acked(sock, orm("A6", "CA", patient=john)) == ("AE", "A6")  # already
    remaining = [(*ROW_B[:4], b_row[4], *ROW_B[5:])]
    assert findscu(server, tmp_path / "q5") == remaining
    assert states(server) == {"SPS1": "CANCELLED", "SPS2": "SCHEDULED",
                              "S9A": "DISCONTINUED", "S9B": "DISCONTINUED"}

    # malformed and unsupported messages, on one connection: each answered, nothing changes
    bad = [
        (b"this is not HL7", ("AR", "")),
        (orm("E1", "NW", kind="ADT^A01", placer="PL5", filler="FL5"), ("AR", "E1")),
        (orm("E2", "NW", kind="ORM^O02", placer="PL5", filler="FL5"), ("AR", "E2")),
        (orm("E3", "NW", version="2.1", placer="PL5", filler="FL5"), ("AR", "E3")),
        (orm("E4", "NW", processing="T", placer="PL5", filler="FL5"), ("AR", "E4")),
        (orm("E5", "NW", patient=pid(patient_id=""), placer="PL5", filler="FL5"),
         ("AE", "E5")),
        (orm("E6", "NW", start="20240230", placer="PL5", filler="FL5"), ("AE", "E6")),
        (orm("E7", "ZZ", placer="PL5", filler="FL5"), ("AE", "E7")),
        (b"MSH|^~\\&|RIS||PACS||||ORM^O01|E8|P|2.3.1\rP\x01D|broken\r", ("AE", "E8")),
        (orm("E9", "DC", placer="UNKNOWN", filler=""), ("AE", "E9")),
    ]
    with socket.create_connection(("127.0.0.1", hl7_port(server)), timeout=30) as sock:
        for raw, expected in bad:
            assert acked(sock, raw) == expected, raw
        assert findscu(server, tmp_path / "q6") == remaining
        # still serving on the same connection after all that
        assert acked(sock, orm("F1", "NW", placer="PL6", filler="FL6", accession="ACC6",
                               sps_id="SPS6", patient=pid("P600", "LAST^ONE"))) == ("AA", "F1")
    assert [r[0] for r in findscu(server, tmp_path / "q7")] == ["ACC2", "ACC6"]
    assert server.alive()
    log = server.log()
    assert "HL7 AR" in log and "HL7 AE" in log and "unsupported message type 'ADT'" in log
