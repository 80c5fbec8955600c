"""An association's reactor thread takes no DIMSE message off the queue while a sender has
closed its checkpoint (the race that let ``pacsnode send`` wait for a response the reactor
had taken and dropped)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider

from pacsnode.dimse import reactor

RESPONSE = (1, "a C-STORE response")


@pytest.fixture
def assoc(monkeypatch: pytest.MonkeyPatch) -> Iterator[Association]:
    monkeypatch.setattr(DIMSEServiceProvider, "get_msg", DIMSEServiceProvider.get_msg)
    reactor.install()
    association = Association(AE(), "requestor")
    reactor.adopt(association)
    association.dimse.msg_queue.put(RESPONSE)
    yield association


def take_in_reactor_thread(assoc: Association) -> Any:
    """``get_msg(block=False)`` called the way pynetdicom's reactor calls it: from the
    association's own thread."""
    taken: list[Any] = []
    assoc.run = lambda: taken.append(assoc.dimse.get_msg(block=False))  # type: ignore[method-assign]
    assoc.start()
    assoc.join(5)
    return taken[0]


def test_closed_checkpoint_keeps_the_message_for_the_sender(assoc: Association) -> None:
    assoc._reactor_checkpoint.clear()
    assert take_in_reactor_thread(assoc) == (None, None)
    assert assoc.dimse.get_msg(block=True) == RESPONSE  # the sender still gets it


def test_open_checkpoint_lets_the_reactor_serve(assoc: Association) -> None:
    assert take_in_reactor_thread(assoc) == RESPONSE


def test_other_threads_take_messages_whatever_the_checkpoint(assoc: Association) -> None:
    assoc._reactor_checkpoint.clear()
    assert assoc.dimse.get_msg(block=False) == RESPONSE


def test_adopt_keeps_an_existing_checkpoint(assoc: Association) -> None:
    checkpoint = assoc._reactor_checkpoint
    assert isinstance(checkpoint, reactor.ReactorCheckpoint)
    reactor.adopt(assoc)
    assert assoc._reactor_checkpoint is checkpoint
