"""Backpressure for streamed responses (C-FIND Pending responses, C-MOVE/C-GET progress).

pynetdicom 3's DUL thread either sends one queued primitive *or* reads the socket on each
loop, sending first. A handler that yields responses faster than they go out keeps its send
queue full, so nothing from the peer is read until the last response is sent: a C-CANCEL
(PS3.7 9.3.2.3) is never seen in time, and every queued response sits in memory (a query
matching a million instances would queue a million responses).

:func:`wait_until_sent` lets the handler continue only while a few responses at most wait
in the queue, so the DUL thread gets to read incoming PDUs between responses and memory
stays bounded.
"""

from __future__ import annotations

import time
from typing import Any

_POLL_S = 0.0001


def wait_until_sent(assoc: Any, backlog: int = 4, timeout: float = 60.0) -> None:
    """Block while more than ``backlog`` primitives wait in ``assoc``'s DUL queue (until the
    association ends, or ``timeout`` seconds pass: the DIMSE timeout then applies as
    usual). A small backlog keeps the network busy without a wait per response."""
    dul = getattr(assoc, "dul", None)
    queue = getattr(dul, "to_provider_queue", None)
    if queue is None:
        return
    deadline = time.monotonic() + timeout
    while queue.qsize() > backlog and assoc.is_established:
        if time.monotonic() > deadline:
            return
        time.sleep(_POLL_S)
