"""Storage Commitment Push Model SCP (PS3.4 Annex J) against ``pacsnode serve``, on both
index backends, with pynetdicom as the modality: C-STORE a few instances, then N-ACTION
(Action Type 1) and the N-EVENT-REPORT either on the same association (the SCU keeps it
open) or, when the SCU releases at once, on a new association from pacsnode to a listening
pynetdicom AE declared as a peer (IHE RAD-10). Expected statuses and Failure Reasons come
from PS3.4 J.3, PS3.7 10.1.4 and PS3.3 C.14.1.1, written here, not from pacsnode."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import N_ACTION

from tests.conftest import PacsnodeServer, free_port
from tests.unit.dicomdata import make_dataset

PUSH = "1.2.840.10008.1.20.1"
PUSH_INSTANCE = "1.2.840.10008.1.20.1.1"
MODALITY = "MODALITY"
WAIT_S = 15.0


class Reports:
    """N-EVENT-REPORTs received: (Event Type ID, Event Information, the association
    requestor's AE title)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Dataset, str]] = []
        self.cond = threading.Condition()

    def handler(self, event: Any) -> tuple[int, None]:
        with self.cond:
            self.items.append((int(event.request.EventTypeID), event.event_information,
                               str(event.assoc.requestor.ae_title)))
            self.cond.notify_all()
        return 0x0000, None

    def wait(self, count: int) -> list[tuple[int, Dataset, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, WAIT_S), \
                f"{len(self.items)} N-EVENT-REPORTs after {WAIT_S} s, expected {count}"
            return list(self.items)


@pytest.fixture
def listener() -> Iterator[tuple[int, Reports]]:
    """The modality's listening AE (title MODALITY): the new-association report lands here."""
    reports = Reports()
    port = free_port()
    ae = AE(ae_title=MODALITY)
    ae.add_supported_context(PUSH, scu_role=True, scp_role=True)
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler)])
    assert server is not None
    yield port, reports
    server.shutdown()


@pytest.fixture
def server(pacsnode_server: Callable[..., PacsnodeServer], tmp_path: Path,
           listener: tuple[int, Reports]) -> PacsnodeServer:
    config = tmp_path / "pacsnode.toml"
    config.write_text(f'[peers.modality]\naet = "{MODALITY}"\nhost = "127.0.0.1"\n'
                      f"port = {listener[0]}\n")
    return pacsnode_server("--config", str(config))


def associate(server: PacsnodeServer, reports: Reports | None = None) -> Association:
    ae = AE(ae_title=MODALITY)
    for sop_class in (CTImageStorage, MRImageStorage, PUSH, "1.2.840.10008.1.1"):
        ae.add_requested_context(sop_class)
    handlers: list[Any] = [(evt.EVT_N_EVENT_REPORT, reports.handler)] if reports else []
    assoc = ae.associate("127.0.0.1", server.port, ae_title="PACSNODE", evt_handlers=handlers)
    assert assoc.is_established
    return assoc


def request(transaction_uid: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    items = []
    for sop_class, sop_uid in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return ds


def n_action(assoc: Association, info: Dataset, action: int = 1,
             instance: str = PUSH_INSTANCE) -> int:
    rsp, _reply = assoc.send_n_action(info, action, PUSH, instance)
    return int(rsp.Status)


def raw_n_action(assoc: Association, payload: bytes) -> int:
    """An N-ACTION whose Action Information is ``payload`` as is (not a valid data set)."""
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == PUSH)
    req = N_ACTION()
    req.MessageID = 7
    req.RequestedSOPClassUID = PUSH
    req.RequestedSOPInstanceUID = PUSH_INSTANCE
    req.ActionTypeID = 1
    req.ActionInformation = BytesIO(payload)
    assoc._reactor_checkpoint.clear()
    try:
        assoc.dimse.send_msg(req, int(cx.context_id or 0))
        _cx, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    assert rsp is not None and rsp.Status is not None
    return int(rsp.Status)


def refs_of(info: Dataset, keyword: str) -> list[tuple[str, ...]]:
    return [(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID),
             *([f"{int(i.FailureReason):04X}"] if "FailureReason" in i else []))
            for i in info.get(keyword, [])]


def test_storage_commitment(server: PacsnodeServer, listener: tuple[int, Reports]) -> None:
    _port, at_listener = listener
    ct1, ct2 = make_dataset(), make_dataset(instance_number=2)
    mr = make_dataset(sop_class=MRImageStorage, modality="MR")
    ct1_uid, ct2_uid, mr_uid = (str(d.SOPInstanceUID) for d in (ct1, ct2, mr))
    unknown = generate_uid()

    # Same association: the SCU stays until the report has come.
    same = Reports()
    assoc = associate(server, same)
    try:
        for ds in (ct1, ct2, mr):
            assert assoc.send_c_store(ds).Status == 0x0000
        first = generate_uid()
        assert n_action(assoc, request(first, [(CTImageStorage, ct1_uid),
                                               (MRImageStorage, mr_uid),
                                               (CTImageStorage, unknown),
                                               (MRImageStorage, ct2_uid)])) == 0x0000
        [(event_type, info, calling)] = same.wait(1)
        # 2: failures exist (J.3.3.1); on our own association (we are its requestor)
        assert (event_type, calling) == (2, MODALITY)
        assert info.TransactionUID == first
        assert info.RetrieveAETitle == "PACSNODE"
        assert refs_of(info, "ReferencedSOPSequence") == [(CTImageStorage, ct1_uid),
                                                          (MRImageStorage, mr_uid)]
        assert refs_of(info, "FailedSOPSequence") == [
            (CTImageStorage, unknown, "0112"),  # no such object instance
            (MRImageStorage, ct2_uid, "0119"),  # class/instance conflict
        ]

        # Requests refused with a DIMSE status, no report follows (PS3.7 10.1.4).
        good = request(generate_uid(), [(CTImageStorage, ct1_uid)])
        assert n_action(assoc, good, action=2) == 0x0123  # no such action
        assert n_action(assoc, good, instance="1.2.3.4") == 0x0112  # no such SOP instance
        no_uid = request("1.2.3", [(CTImageStorage, ct1_uid)])
        del no_uid.TransactionUID
        assert n_action(assoc, no_uid) == 0x0120  # missing attribute
        assert n_action(assoc, request(generate_uid(), [])) == 0x0120
        # A Referenced SOP Sequence of undefined length whose "item" is not one (not
        # (FFFE,E000)) and has no delimiter: cannot be decoded
        garbage = (struct.pack("<HHI", 0x0008, 0x1195, 4) + b"1.2\0"
                   + struct.pack("<HHIHHI", 0x0008, 0x1199, 0xFFFFFFFF, 0x1234, 0x5678, 8)
                   + b"garbage!")
        assert raw_n_action(assoc, garbage) == 0x0110  # processing failure
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    assert len(same.items) == 1

    # New association: the SCU releases right after the N-ACTION response; the report goes
    # to the peer declared with the SCU's AE title (the listener).
    second = generate_uid()
    assoc = associate(server)
    try:
        assert n_action(assoc, request(second, [(CTImageStorage, ct1_uid),
                                                (CTImageStorage, ct2_uid)])) == 0x0000
    finally:
        assoc.release()
    [(event_type, info, calling)] = at_listener.wait(1)
    assert (event_type, calling) == (1, "PACSNODE")  # 1: all committed; pacsnode called us
    assert info.TransactionUID == second
    assert refs_of(info, "ReferencedSOPSequence") == [(CTImageStorage, ct1_uid),
                                                      (CTImageStorage, ct2_uid)]
    assert "FailedSOPSequence" not in info

    # Both reports are recorded as completed jobs; the server still serves.
    found = httpx.get(f"{server.url}/api/jobs").json()["items"]
    commitments = [j for j in found if j["kind"] == "commitment"]
    assert sorted((j["state"], j["progress"]["completed"], j["progress"]["failed"])
                  for j in commitments) == [("completed", 2, 0), ("completed", 2, 2)]
    assoc = associate(server)
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    assert server.alive()
