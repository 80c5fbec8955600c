"""Who may query and retrieve: association acceptance for Query/Retrieve (PS3.8 9.3.4).

By default anyone may query, retrieve with C-GET and store (like most PACS); C-MOVE only
ever sends to declared peers (``dimse/retrieve_scp.py``). With ``restrict_qr_to_peers``
an association that proposes any Query/Retrieve presentation context is accepted only from
a calling AE title declared as a peer (TOML or ``pacsnode peers add``) — and, with
``check_peer_host``, only from that peer's host (its address, or any address its name
resolves to). Anything else is rejected with A-ASSOCIATE-RJ result 1 (rejected-permanent),
source 1 (DICOM UL service-user), reason 3 (calling-AE-title-not-recognized). Associations
proposing only storage and verification are not affected.

pynetdicom decides acceptance in ``ACSE._negotiate_as_acceptor``; :func:`install` wraps it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pynetdicom import evt
from pynetdicom.acse import ACSE

from pacsnode.config import Peer

log = logging.getLogger(__name__)

QR_PREFIX = "1.2.840.10008.5.1.4.1.2."  # Query/Retrieve information models (PS3.4 C.6)
REJECT_CALLING_AET = (0x01, 0x01, 0x03)

Lookup = Callable[[str], Peer | None]
_original = ACSE._negotiate_as_acceptor


class _Policy:
    lookup: Lookup | None = None
    check_host: bool = False


@lru_cache(maxsize=256)
def _addresses(host: str) -> frozenset[str]:
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    except OSError:
        return frozenset({host})


def proposes_query_retrieve(primitive: Any) -> bool:
    """Whether an A-ASSOCIATE request proposes a Query/Retrieve abstract syntax."""
    for context in getattr(primitive, "presentation_context_definition_list", None) or []:
        if str(context.abstract_syntax or "").startswith(QR_PREFIX):
            return True
    return False


def refusal(calling_aet: str, address: str, lookup: Lookup, check_host: bool) -> str | None:
    """Why a Query/Retrieve association from ``calling_aet`` at ``address`` is refused, or
    None if it is allowed."""
    peer = lookup(calling_aet.strip())
    if peer is None:
        return f"calling AE title {calling_aet.strip()!r} is not a declared peer"
    if check_host and address not in _addresses(peer.host) | {peer.host}:
        return f"{calling_aet.strip()} must connect from {peer.host}, not {address}"
    return None


def _negotiate(self: ACSE) -> None:
    lookup = _Policy.lookup
    assoc = self.assoc
    primitive = getattr(self.requestor, "primitive", None)
    if lookup is not None and primitive is not None and proposes_query_retrieve(primitive):
        calling = str(primitive.calling_ae_title or "")
        address = str(getattr(self.requestor, "address", "") or "")
        why = refusal(calling, address, lookup, _Policy.check_host)
        if why is not None:
            log.warning("association from %s@%s rejected (permanent): %s", calling.strip(),
                        address, why)
            self.requestor.ae_title = calling
            self.send_reject(*REJECT_CALLING_AET)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
    _original(self)


def install(lookup: Lookup | None, *, check_host: bool = False) -> None:
    """Restrict Query/Retrieve associations to the peers ``lookup`` knows (None: anyone)."""
    _Policy.lookup = lookup
    _Policy.check_host = check_host
    ACSE._negotiate_as_acceptor = _negotiate  # type: ignore[method-assign]
