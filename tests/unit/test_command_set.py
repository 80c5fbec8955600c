"""The hand-encoded DIMSE command sets equal pynetdicom's encoding of the same primitive."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom import examples
from pynetdicom import dimse_messages
from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP, C_STORE_RQ
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
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


def _primitives() -> list[tuple[str, object, bool]]:
    """(message class name, primitive, data set follows) for each kind pacsnode sends."""
    out: list[tuple[str, object, bool]] = []
    echo = C_ECHO()
    echo.MessageIDBeingRespondedTo, echo.AffectedSOPClassUID, echo.Status = \
        1, "1.2.840.10008.1.1", 0
    out.append(("C_ECHO_RSP", echo, False))
    for status, comment in ((0x0000, None), (0xA700, "out of space"),
                            (0xB000, "coerced ü")):  # non-ASCII becomes '?'
        store = C_STORE()
        store.MessageIDBeingRespondedTo, store.AffectedSOPClassUID = 7, CT
        store.AffectedSOPInstanceUID, store.Status = "1.2.3.45", status
        store.ErrorComment = comment
        out.append(("C_STORE_RSP", store, False))
    for status, identifier in ((0xFF00, BytesIO(b"\x08\x00\x52\x00")), (0x0000, None),
                               (0xFE00, None)):
        find = C_FIND()
        find.MessageIDBeingRespondedTo, find.AffectedSOPClassUID = 65535, STUDY_ROOT_FIND
        find.Status, find.Identifier = status, identifier
        out.append(("C_FIND_RSP", find, identifier is not None))
    request = C_FIND()
    request.MessageID, request.AffectedSOPClassUID, request.Priority = 2, STUDY_ROOT_FIND, 0
    request.Identifier = BytesIO(b"\x08\x00\x52\x00")
    out.append(("C_FIND_RQ", request, True))
    return out


STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


@pytest.mark.parametrize("name,primitive,has_data", _primitives(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_of_primitive_equals_pynetdicom(name: str, primitive: object,
                                        has_data: bool) -> None:
    message_class = getattr(dimse_messages, name)
    ours = command_set.of_primitive(primitive, has_data)
    if isinstance(getattr(primitive, "ErrorComment", None), str) and \
            not primitive.ErrorComment.isascii():  # type: ignore[attr-defined]
        assert ours is not None and b"coerced ?" in ours
        return
    assert ours == pynetdicom_bytes(message_class, primitive)


def test_of_primitive_offending_element_and_cancel() -> None:
    find = C_FIND()
    find.MessageIDBeingRespondedTo, find.AffectedSOPClassUID = 1, STUDY_ROOT_FIND
    find.Status, find.OffendingElement = 0xA900, [0x00100010]  # AT: not encoded here
    assert command_set.of_primitive(find, False) is None
    cancel = C_CANCEL()
    cancel.MessageIDBeingRespondedTo = 3
    assert command_set.of_primitive(cancel, False) == \
        pynetdicom_bytes(dimse_messages.C_CANCEL_RQ, cancel)
