"""The hand-encoded DIMSE command sets equal pynetdicom's encoding of the same primitive."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom import examples
from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP, C_STORE_RQ
from pynetdicom.dimse_primitives import C_GET, C_MOVE, C_STORE
from pynetdicom.dsutils import encode, split_dataset

from pacsnode.dimse import command_set
from pacsnode.dimse.store_suboperations import dataset_offset

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def pynetdicom_bytes(message_class: type, primitive: object) -> bytes:
    message = message_class()
    message.primitive_to_message(primitive)
    encoded = encode(message.command_set, True, True)
    assert encoded is not None
    return encoded


@pytest.mark.parametrize("originator", [None, ("MOVESCU", 7), ("ODD", 65535)])
@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45"])  # even and odd lengths
def test_c_store_rq(originator: tuple[str, int] | None, instance: str) -> None:
    req = C_STORE()
    req.MessageID = 12
    req.AffectedSOPClassUID = CT
    req.AffectedSOPInstanceUID = instance
    req.Priority = 2
    aet, msg_id = originator or (None, None)
    req.MoveOriginatorApplicationEntityTitle = aet
    req.MoveOriginatorMessageID = msg_id
    req.DataSet = BytesIO(b"\0")  # a data set follows
    assert command_set.c_store_rq(12, CT, instance, 2, aet, msg_id) == \
        pynetdicom_bytes(C_STORE_RQ, req)


@pytest.mark.parametrize("is_move", [True, False])
@pytest.mark.parametrize("kind", ["pending", "final", "failed", "comment"])
def test_retrieve_rsp(is_move: bool, kind: str) -> None:
    rsp = C_MOVE() if is_move else C_GET()
    rsp.MessageIDBeingRespondedTo = 3
    rsp.AffectedSOPClassUID = STUDY_ROOT_MOVE
    rsp.Status = {"pending": 0xFF00, "final": 0x0000, "failed": 0xB000,
                  "comment": 0xA702}[kind]
    counts = {"completed": 5, "failed": 1 if kind == "failed" else 0, "warning": 0}
    if kind == "pending":
        rsp.NumberOfRemainingSuboperations = 9
    rsp.NumberOfCompletedSuboperations = counts["completed"]
    rsp.NumberOfFailedSuboperations = counts["failed"]
    rsp.NumberOfWarningSuboperations = counts["warning"]
    if kind == "comment":
        rsp.ErrorComment = "unreachable"
    if kind == "failed":
        rsp.Identifier = BytesIO(b"\0")
    expected = pynetdicom_bytes(C_MOVE_RSP if is_move else C_GET_RSP, rsp)
    ours = command_set.retrieve_rsp(
        command_set.C_MOVE_RSP if is_move else command_set.C_GET_RSP, 3, STUDY_ROOT_MOVE,
        int(rsp.Status), data_set=kind == "failed",
        remaining=9 if kind == "pending" else None, error_comment=rsp.ErrorComment,
        **counts)
    assert ours == expected


def test_dataset_offset(tmp_path: Path) -> None:
    ds = examples.ct
    with_meta = tmp_path / "ct.dcm"
    ds.save_as(with_meta, enforce_file_format=True)
    assert dataset_offset(with_meta) == split_dataset(with_meta)[1] > 132
    raw = with_meta.read_bytes()
    no_group_length = tmp_path / "odd.dcm"  # meta information without (0002,0000)
    start = 132 + 12
    no_group_length.write_bytes(raw[:132] + raw[start:])
    assert dataset_offset(no_group_length) == split_dataset(no_group_length)[1]
