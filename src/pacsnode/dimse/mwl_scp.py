"""C-FIND SCP of the Modality Worklist Information Model – FIND SOP Class
(1.2.840.10008.5.1.4.31; PS3.4 Annex K, Basic Worklist Management), answered from the
worklist kept in the index (:mod:`pacsnode.core.worklist`).

* **Request** (K.4.1.1, K.6.1.2): the Identifier is decoded in its own Specific Character
  Set and parsed with the C-FIND key parser (:func:`pacsnode.dimse.find_scp.parse_keys`);
  no Query/Retrieve Level is needed (there is none in this model). Matching follows
  C.2.2.2 as K.2.2.1 asks (:mod:`pacsnode.index.worklist_search`): keys of the Scheduled
  Procedure Step Sequence (0040,0100) item are sequence matching on the item, person names
  are case-insensitive, ``*``/``?`` wildcards, DA/TM ranges (each key on its own: no
  combined date-time matching), ``""`` matches empty values. Only SCHEDULED and IN PROGRESS
  items answer.
* **Responses** (K.4.1.2.3, K.6.1.2.2): one Pending (0xFF00) per match, in scheduled order,
  holding every key of the request — matching keys with their stored value (K.2.2.1.2),
  return keys likewise — and nothing else but Specific Character Set. A requested key the
  item lacks is returned with zero length (Type 2 behaviour; for a Type 1 key too rather
  than leaving it out). A sequence key with an item returns, for each stored item, the
  requested keys of that item (zero length when absent), recursively; a sequence key with
  no or an empty item returns the whole stored sequence. Then Success without Identifier.
* Character set, C-CANCEL (0xFE00, checked before each response) and backpressure (the
  next match is read once the previous response has gone out) as for the Query/Retrieve
  C-FIND (:mod:`pacsnode.dimse.find_scp`, :mod:`pacsnode.dimse.backpressure`). An
  Identifier that cannot be decoded: 0xC000 (Unable to process); the index unavailable:
  0xA700 (Out of resources).

pynetdicom has one EVT_C_FIND handler per association for every C-FIND SOP class, so
:meth:`WorklistService.handlers` binds one that serves the worklist model here and hands
every other model to the Query/Retrieve :class:`~pacsnode.dimse.find_scp.FindService`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from pacsnode.core.archive import Archive
from pacsnode.core.worklist import ACTIVE
from pacsnode.dimse import charsets, statuses
from pacsnode.dimse.find_scp import (
    CHARSET,
    QUERY_LEVEL,
    FindService,
    encoded_identifier,
    install,
    parse_keys,
    requested_charset,
    stream_responses,
    texts,
)
from pacsnode.dimse.requestor import requestor
from pacsnode.index.worklist_search import search_worklist

log = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
WORKLIST_SOP_CLASSES = (MODALITY_WORKLIST_FIND,)
_NOT_RETURNED = frozenset({CHARSET, QUERY_LEVEL})


def _absent(vr: str) -> dict[str, Any]:
    return {"vr": vr if vr and " or " not in vr else "UN"}


def requested_json(attrs: dict[str, Any], request: Dataset) -> dict[str, Any]:
    """The DICOM JSON of every key of ``request`` from a stored item ``attrs`` (K.6.1.2.2):
    stored value, or zero length when the item lacks it; sequence keys with an item
    recursively (see the module documentation)."""
    out: dict[str, Any] = {}
    for elem in request:
        tag = int(elem.tag)
        if (tag & 0xFFFF) == 0 or tag in _NOT_RETURNED:
            continue
        key = f"{tag:08X}"
        stored = attrs.get(key)
        vr = str(elem.VR)
        if stored is None or "BulkDataURI" in stored:
            out[key] = _absent(stored["vr"] if stored else vr)
            continue
        if vr == "SQ" and elem.value and len(elem.value[0]):
            query_item = elem.value[0]
            items = [requested_json(item, query_item)
                     for item in stored.get("Value") or [] if isinstance(item, dict)]
            out[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            continue
        out[key] = stored
    return out


def build_response(attrs: dict[str, Any], request: Dataset, charset: list[str],
                   transfer_syntax: str | None = None) -> Dataset:
    """The Identifier of one Pending response (K.4.1.2.3): the requested keys, in the
    request's character set if it holds every value, else UTF-8; already encoded for a
    little endian ``transfer_syntax`` when nothing in it needs pydicom."""
    wanted = requested_json(attrs, request)
    chosen = charsets.choose(charset, texts(wanted))
    fast = encoded_identifier(wanted, chosen, transfer_syntax)
    if fast is not None:
        return fast
    ds = Dataset.from_json(wanted)
    if chosen and chosen != [""]:
        ds.SpecificCharacterSet = chosen if len(chosen) > 1 else chosen[0]
    return ds


class WorklistService:
    """The Modality Worklist C-FIND handler bound to one archive."""

    def __init__(self, archive: Archive, aet: str) -> None:
        self.archive = archive
        self.aet = aet
        self.query_retrieve: FindService | None = None
        install()  # encoded identifiers pass through pynetdicom as they are

    def handlers(self, query_retrieve: FindService | None = None) -> list[tuple[Any, Any]]:
        """The EVT_C_FIND handler for every C-FIND SOP class: the worklist model here, the
        others to ``query_retrieve`` (refused with 0xA900 without one)."""
        self.query_retrieve = query_retrieve
        return [(evt.EVT_C_FIND, self.on_find)]

    def on_find(self, event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        """EVT_C_FIND: a generator of (status, identifier) pairs (pynetdicom's protocol)."""
        model = str(event.request.AffectedSOPClassUID)
        if model == MODALITY_WORKLIST_FIND:
            yield from self.on_worklist_find(event)
        elif self.query_retrieve is not None:
            yield from self.query_retrieve.on_find(event)
        else:
            yield statuses.with_comment(statuses.IDENTIFIER_DOES_NOT_MATCH,
                                        f"C-FIND of {model} is not served"), None

    def on_worklist_find(self, event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        """One Modality Worklist C-FIND (PS3.4 K.4.1.3), to its last response."""
        who = requestor(event.assoc)
        try:
            identifier = event.identifier
            keys = parse_keys(identifier)
            charset = requested_charset(identifier)
        except Exception as exc:  # pydicom raises many types on undecodable data
            log.warning("MWL C-FIND from %s: identifier cannot be decoded: %s", who, exc)
            yield statuses.with_comment(statuses.UNABLE_TO_PROCESS,
                                        f"cannot decode the identifier: {exc}"), None
            return
        matches = search_worklist(self.archive.engine, keys,
                                  states={s.value for s in ACTIVE})
        yield from stream_responses(
            event, "C-FIND Modality Worklist", who, matches,
            lambda row: (statuses.PENDING, build_response(row.attrs, identifier, charset,
                                                          str(event.context.transfer_syntax))),
            matches.close)
