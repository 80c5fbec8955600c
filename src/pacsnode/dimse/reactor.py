"""Sending on an association from a thread other than its reactor's (pynetdicom 3).

Every association runs a reactor thread that takes DIMSE messages off its queue and serves
them as requests, while pynetdicom's ``send_*`` methods (and pacsnode's senders) wait on the
same queue, from another thread, for the responses to what they sent. pynetdicom parks the
reactor at a checkpoint for the length of a send, but its "parked" flag is stale for a
moment after the previous send lets the reactor go: a send right after another starts while
the reactor runs one more loop, and if the response arrives then, the reactor takes it
("Received unexpected C-STORE service message", dropped) and the send waits for the DIMSE
timeout — seen as ``pacsnode send`` stalling now and then on a busy machine. Here every
association gets a :class:`ReactorCheckpoint`, and the reactor thread takes a message only
while the checkpoint is open (:func:`install`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider

REACTOR_PAUSE_TIMEOUT_S = 5.0


class ReactorCheckpoint:
    """A drop-in for an association's ``_reactor_checkpoint`` (a ``threading.Event`` its
    reactor thread waits on at the top of each loop) that also tells whether the reactor is
    parked on it.

    pynetdicom's ``send_c_store`` from another thread clears the checkpoint and waits for
    the reactor's ``_is_paused`` flag; but that flag stays true for a moment after the
    previous send set the checkpoint again, so a send right after another may start while
    the reactor runs one more loop — and the reactor then takes the C-STORE response off
    the queue as if it were a request ("Received unexpected C-STORE service message"),
    leaving the send to wait for a DIMSE timeout. :func:`pause_reactor` waits for
    ``parked`` instead, which is true only while the reactor really waits here."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._flag = True
        self.parked = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._cond:
            self._flag = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            if not self._flag:
                self.parked = True
                try:
                    self._cond.wait_for(lambda: self._flag, timeout)
                finally:
                    self.parked = False
            return self._flag

    def unless_closed(self, take: Callable[[], Any], closed: Any) -> Any:
        """``take()`` if the checkpoint is open, else ``closed``; atomic with respect to
        :meth:`clear`, so nothing is taken once a sender has closed it."""
        with self._cond:
            return take() if self._flag else closed


def adopt(assoc: Association) -> None:
    """Give ``assoc`` a :class:`ReactorCheckpoint` (before its reactor thread starts)."""
    if not isinstance(assoc._reactor_checkpoint, ReactorCheckpoint):
        assoc._reactor_checkpoint = ReactorCheckpoint()  # type: ignore[assignment]


_original_get_msg = DIMSEServiceProvider.get_msg
_NOTHING = (None, None)


def _get_msg(self: DIMSEServiceProvider, block: bool = False) -> Any:
    assoc = self.assoc
    checkpoint = getattr(assoc, "_reactor_checkpoint", None)
    # Only the reactor polls without blocking; senders block for their responses.
    if block or threading.current_thread() is not assoc or \
            not isinstance(checkpoint, ReactorCheckpoint):
        return _original_get_msg(self, block)
    return checkpoint.unless_closed(lambda: _original_get_msg(self, False), _NOTHING)


def install() -> None:
    """A reactor whose checkpoint is closed takes no message off the queue (idempotent)."""
    DIMSEServiceProvider.get_msg = _get_msg  # type: ignore[method-assign]


def pause_reactor(assoc: Association) -> None:
    """Park ``assoc``'s reactor thread before sending on it from another thread (pynetdicom's
    ``send_*`` methods then find it parked, and let it go when done).

    The reactor is woken as well: with pacsnode's event-driven wake-ups
    (:mod:`pacsnode.dimse.wakeups`) an idle reactor sleeps up to ``IDLE_WAIT_S`` before it
    reaches the checkpoint, which would delay every C-STORE of a C-MOVE that long."""
    adopt(assoc)
    checkpoint: Any = assoc._reactor_checkpoint
    checkpoint.clear()
    wake = getattr(assoc, "_pacsnode_event", None)
    if wake is not None:
        wake.set()
    deadline = time.monotonic() + REACTOR_PAUSE_TIMEOUT_S
    while not checkpoint.parked and assoc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.00005)
