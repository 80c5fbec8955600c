"""Transfer syntax choice as association acceptor: the requestor's preference wins.

PS3.8 9.3.2.2 lets the acceptor pick any one of the transfer syntaxes proposed in a
presentation context. pynetdicom 3 picks the first of *its own* list that was proposed,
so with our list beginning with Implicit VR Little Endian a storescu proposing
[Explicit LE, Big Endian, Implicit LE] — or a compressed syntax and the uncompressed ones
— was given Implicit VR and converted what it sent; a C-GET requestor likewise got
everything converted. pacsnode accepts the first syntax *in the requestor's order* that it
supports, so data arrive (and leave) as the requestor prefers, usually as they are stored.
"""

from __future__ import annotations

import copy
from typing import Any

import pynetdicom.acse
from pynetdicom.presentation import negotiate_as_acceptor as _pynetdicom_negotiate


def negotiate_as_acceptor(rq_contexts: list[Any], ac_contexts: list[Any],
                          roles: Any = None) -> Any:
    """pynetdicom's negotiation, with each supported context's transfer syntaxes ordered
    as the requestor proposed them (the others after, unchanged)."""
    supported = {cx.abstract_syntax: cx for cx in ac_contexts}
    ordered: dict[str, Any] = {}
    for rq in rq_contexts:
        ac = supported.get(rq.abstract_syntax)
        if ac is None or rq.abstract_syntax in ordered:
            continue
        ours = list(ac.transfer_syntax)
        first = [ts for ts in rq.transfer_syntax if ts in ours]
        if not first or ours[: len(first)] == first:
            continue
        mine = copy.copy(ac)  # the AE's own context objects are shared by every association
        mine._transfer_syntax = [*first, *(ts for ts in ours if ts not in first)]
        ordered[rq.abstract_syntax] = mine
    if ordered:
        ac_contexts = [ordered.get(cx.abstract_syntax, cx) for cx in ac_contexts]
    return _pynetdicom_negotiate(rq_contexts, ac_contexts, roles)


def install() -> None:
    """Use :func:`negotiate_as_acceptor` for every association pacsnode accepts."""
    pynetdicom.acse.negotiate_as_acceptor = negotiate_as_acceptor
