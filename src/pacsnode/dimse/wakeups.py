"""Event-driven wake-ups for pynetdicom 3's polling threads.

pynetdicom runs two threads per association that poll: the DUL reactor sleeps 1 ms whenever
it has nothing to do, and the association reactor sleeps 1 ms on every loop. A C-STORE
round trip crosses both several times, so each instance waited ~2–3 ms on sleeps alone —
more than pacsnode spends storing a small instance — and 100 idle associations kept a core
busy polling.

Here those sleeps become waits that end as soon as there is work:

* the DUL thread waits in ``select()`` on its socket and on an eventfd that is signalled when
  a primitive or event is queued for it;
* the association thread waits on an Event set when a DIMSE message or a primitive from
  the peer is queued for it.

Both still wake every ``IDLE_WAIT_S`` so pynetdicom's timers (ARTIM, idle timeout, aborts)
are checked as before. Only those two sleeps are changed; any other ``time.sleep`` in
pynetdicom behaves as it did.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import Any

import pynetdicom.association
import pynetdicom.dul
from pynetdicom.transport import AssociationSocket

IDLE_WAIT_S = 0.02
_DUL_DELAY = 0.001  # pynetdicom's DUL _run_loop_delay and association reactor sleep


class _WakingQueue(queue.Queue):
    """A queue that calls ``wake`` after every put."""

    def __init__(self, wake: Callable[[], None], items: Any = ()) -> None:
        super().__init__()
        self.queue.extend(items)
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


def _dul_sleep(seconds: float) -> None:
    dul = threading.current_thread()
    efd = getattr(dul, "_pacsnode_efd", None)
    raw = getattr(getattr(dul, "socket", None), "socket", None)
    if seconds != _DUL_DELAY or efd is None or raw is None:
        time.sleep(seconds)
        return
    if not (dul.to_provider_queue.empty() and dul.event_queue.empty()):  # type: ignore[attr-defined]
        return
    try:
        ready, _, _ = select.select([raw, efd], [], [], IDLE_WAIT_S)
    except (OSError, ValueError):  # the socket was closed meanwhile
        time.sleep(seconds)
        return
    if efd in ready:
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(efd)


def _association_sleep(seconds: float) -> None:
    assoc = threading.current_thread()
    event = getattr(assoc, "_pacsnode_event", None)
    if seconds != _DUL_DELAY or event is None:
        time.sleep(seconds)
        return
    dimse, dul = getattr(assoc, "dimse", None), getattr(assoc, "dul", None)
    if (dimse is not None and not dimse.msg_queue.empty()) or (
            dul is not None and not dul.to_user_queue.empty()):
        return
    if event.wait(IDLE_WAIT_S):
        event.clear()


def _time_with(sleep: Callable[[float], None]) -> types.SimpleNamespace:
    """The ``time`` module, with another ``sleep``."""
    proxy = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time)
                                     if not k.startswith("__")})
    proxy.sleep = sleep
    return proxy


def attach(sock: AssociationSocket) -> None:
    """Give the association of a new socket its wake-up signals (before its threads start)."""
    assoc = getattr(sock, "assoc", None)
    dul = getattr(assoc, "dul", None)
    dimse = getattr(assoc, "dimse", None)
    if assoc is None or dul is None or dimse is None or hasattr(dul, "_pacsnode_efd"):
        return
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    weakref.finalize(dul, os.close, efd)
    event = threading.Event()

    def wake_dul() -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(efd, 1)

    dul._pacsnode_efd = efd
    assoc._pacsnode_event = event
    dul.to_provider_queue = _WakingQueue(wake_dul, dul.to_provider_queue.queue)
    dul.event_queue = _WakingQueue(wake_dul, dul.event_queue.queue)
    dul.to_user_queue = _WakingQueue(event.set, dul.to_user_queue.queue)
    dimse.msg_queue = _WakingQueue(event.set, dimse.msg_queue.queue)


def install() -> None:
    """Replace the two polling sleeps (idempotent)."""
    pynetdicom.dul.time = _time_with(_dul_sleep)  # type: ignore[assignment]
    pynetdicom.association.time = _time_with(_association_sleep)  # type: ignore[assignment]
