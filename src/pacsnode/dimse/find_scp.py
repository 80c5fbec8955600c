"""C-FIND SCP for the Patient Root and Study Root Query/Retrieve Information Models
(PS3.4 C.4.1, C.6.1, C.6.2), answered from the index alone.

* The request's Identifier is decoded in its own Specific Character Set; matching is on the
  decoded text (:mod:`pacsnode.index.matching`, compiled to SQL by
  :mod:`pacsnode.index.search`).
* One Pending response per match, sent as it is read from the database (0xFF00, or 0xFF01
  when a key could not be matched: a key of a level below the query level); then Success
  without an Identifier. The next match is read only once the previous response has gone
  out (:mod:`pacsnode.dimse.backpressure`), so memory stays bounded and a C-CANCEL, checked
  before every response, stops the matches promptly: 0xFE00 (C.4.1.2.2).
* A response carries only the requested keys, plus Query/Retrieve Level, the level's unique
  key, Specific Character Set and Retrieve AE Title (C.4.1.1.3.2), in a character set that
  can hold every value (:mod:`pacsnode.dimse.charsets`).
* A level the model does not have (Study Root at PATIENT), or none, is refused with 0xA900
  (Identifier does not match SOP Class); an Identifier that cannot be decoded with 0xC000
  (Unable to process); an index failure with 0xA700 (Out of resources).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pynetdicom.service_class
import sqlalchemy.exc
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import _config, evt

from pacsnode.core.archive import Archive
from pacsnode.dimse import backpressure, charsets, fast_identifier, qr_models, statuses
from pacsnode.dimse.requestor import requestor
from pacsnode.index import matching
from pacsnode.index.levels import Level
from pacsnode.index.matching import Condition
from pacsnode.index.query_keys import UNIQUE_KEYS
from pacsnode.index.search import Match

log = logging.getLogger(__name__)
T = TypeVar("T")
_pynetdicom_encode = pynetdicom.service_class.encode

QUERY_LEVEL = 0x00080052
CHARSET = 0x00080005
RETRIEVE_AET = 0x00080054
INSTANCE_AVAILABILITY = 0x00080056
# Keys that steer the query rather than match (PS3.4 C.4.1.1.3, C.6.1.1.1).
NOT_MATCHED = frozenset({QUERY_LEVEL, CHARSET, RETRIEVE_AET, INSTANCE_AVAILABILITY,
                         0x00080201})  # Timezone Offset From UTC


def element_value(elem: DataElement) -> Any:
    """An element's value as text(s) matching understands (person names as decoded
    ``alphabetic=ideographic=phonetic``)."""
    value = elem.value
    if value is None or value == "":
        return None
    if isinstance(value, bytes | bytearray):
        return None  # binary values are not matched
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return str(value)


def parse_keys(identifier: Dataset) -> dict[int, Condition]:
    """Every key of ``identifier`` as a condition (sequence items recursively)."""
    keys: dict[int, Condition] = {}
    for elem in identifier:
        assert isinstance(elem, DataElement)
        tag = int(elem.tag)
        if tag in NOT_MATCHED or (tag & 0xFFFF) == 0 or elem.tag.is_private:
            continue
        vr = str(elem.VR)
        if vr == "SQ":
            items = list(elem.value or [])
            sub = parse_keys(items[0]) if items else {}
            keys[tag] = matching.parse("SQ", None, list(sub.items()))
        else:
            keys[tag] = matching.parse(vr, element_value(elem))
    return keys


def _requested_json(attrs: dict[str, Any], request: Dataset) -> dict[str, Any]:
    """The DICOM JSON of the keys the request asked for (empty when not stored)."""
    out: dict[str, Any] = {}
    for elem in request:
        tag = int(elem.tag)
        if (tag & 0xFFFF) == 0 or tag in (QUERY_LEVEL, CHARSET):
            continue
        key = f"{tag:08X}"
        stored = attrs.get(key)
        vr = str(elem.VR)
        if stored is None or "BulkDataURI" in stored:
            out[key] = {"vr": stored["vr"] if stored else vr}
            continue
        if vr == "SQ" and elem.value and len(elem.value[0]):
            wanted = {f"{int(e.tag):08X}" for e in elem.value[0]}
            items = [{k: v for k, v in item.items() if k in wanted}
                     for item in stored.get("Value", []) if isinstance(item, dict)]
            out[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            continue
        out[key] = stored
    return out


def texts(node: Any) -> Iterator[str]:
    """Every text value in a DICOM JSON fragment (person name groups included)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from texts(value)


class EncodedIdentifier(Dataset):
    """A response Identifier already encoded (:mod:`pacsnode.dimse.fast_identifier`) for
    one transfer syntax; pynetdicom's ``encode`` hands the bytes over as they are."""

    encoding: tuple[bool, bool, bool]
    encoded: bytes


def encoded_identifier(elements: dict[str, Any], charset: list[str],
                       transfer_syntax: str | None) -> EncodedIdentifier | None:
    """``elements`` (DICOM JSON) with Specific Character Set ``charset`` encoded for the
    presentation context's ``transfer_syntax`` (:mod:`pacsnode.dimse.fast_identifier`), or
    None when pydicom has to do it (big endian, deflate, a value it does not write)."""
    if transfer_syntax not in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        return None
    if charset != [""] and charset:
        elements = {**elements, f"{CHARSET:08X}": {"vr": "CS", "Value": list(charset)}}
    implicit = transfer_syntax == ImplicitVRLittleEndian
    data = fast_identifier.encode_identifier(elements, charset, implicit)
    if data is None:
        return None
    fast = EncodedIdentifier()
    fast.encoding = (implicit, True, False)
    fast.encoded = data
    return fast


def build_response(match: Match, request: Dataset, level: Level, aet: str,
                   requested_charset: list[str], transfer_syntax: str | None = None
                   ) -> Dataset:
    """The Identifier of one Pending response (PS3.4 C.4.1.1.3.2); already encoded when the
    presentation context's ``transfer_syntax`` is a little endian one and nothing in it
    needs pydicom."""
    wanted = _requested_json(match.attrs, request)
    unique = f"{UNIQUE_KEYS[level]:08X}"
    if unique not in wanted and unique in match.attrs:
        wanted[unique] = match.attrs[unique]
    if INSTANCE_AVAILABILITY in request:
        wanted[f"{INSTANCE_AVAILABILITY:08X}"] = {"vr": "CS", "Value": ["ONLINE"]}
    wanted[f"{RETRIEVE_AET:08X}"] = {"vr": "AE", "Value": [aet]}
    charset = charsets.choose(requested_charset, texts(wanted))
    fast = encoded_identifier(
        {**wanted, f"{QUERY_LEVEL:08X}": {"vr": "CS", "Value": [level.value]}}, charset,
        transfer_syntax)
    if fast is not None:
        return fast
    ds = Dataset.from_json(wanted)
    ds.QueryRetrieveLevel = level.value
    if charset != [""] and charset:
        ds.SpecificCharacterSet = charset if len(charset) > 1 else charset[0]
    return ds


def _encode(ds: Any, implicit: bool, little: bool, deflated: bool = False) -> bytes | None:
    if isinstance(ds, EncodedIdentifier) and ds.encoding == (implicit, little, deflated):
        return ds.encoded
    result: bytes | None = _pynetdicom_encode(ds, implicit, little, deflated)
    return result


def install() -> None:
    """Let pynetdicom's C-FIND SCP send pre-encoded identifiers, and stop it formatting
    every request and response identifier for a debug log nobody reads."""
    pynetdicom.service_class.encode = _encode  # type: ignore[assignment]
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


def requested_charset(identifier: Dataset) -> list[str]:
    value = identifier.get("SpecificCharacterSet")
    if not value:
        return [""]
    return [str(v) for v in value] if not isinstance(value, str) else [value]


class FindService:
    """The C-FIND handler bound to one archive."""

    def __init__(self, archive: Archive, aet: str) -> None:
        self.archive = archive
        self.aet = aet
        install()

    def handlers(self) -> list[tuple[Any, Any]]:
        return [(evt.EVT_C_FIND, self.on_find)]

    def on_find(self, event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        """EVT_C_FIND: a generator of (status, identifier) pairs (pynetdicom's protocol)."""
        who = requestor(event.assoc)
        model = str(event.request.AffectedSOPClassUID)
        try:
            identifier = event.identifier
            level = qr_models.query_level(identifier, model)
            keys = parse_keys(identifier)
            charset = requested_charset(identifier)
        except qr_models.Refused as exc:
            log.warning("C-FIND from %s refused (0x%04X): %s", who, exc.status, exc.comment)
            yield statuses.with_comment(exc.status, exc.comment), None
            return
        except Exception as exc:  # pydicom raises many types on undecodable data
            log.warning("C-FIND from %s: identifier cannot be decoded: %s", who, exc)
            yield statuses.with_comment(statuses.UNABLE_TO_PROCESS,
                                        f"cannot decode the identifier: {exc}"), None
            return
        try:
            results = self.archive.search(level, keys)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            log.error("C-FIND from %s: index unavailable: %s", who, exc)
            yield statuses.with_comment(statuses.OUT_OF_RESOURCES, "index unavailable"), None
            return
        pending = statuses.PENDING_WARNING if results.unmatchable else statuses.PENDING
        label = f"C-FIND {qr_models.model_name(model)} {level.value}"
        yield from stream_responses(
            event, label, who, results,
            lambda match: (pending, build_response(match, identifier, level, self.aet, charset,
                                                   str(event.context.transfer_syntax))),
            results.close)


def stream_responses(event: Any, label: str, who: str, matches: Iterable[T],
                     respond: Callable[[T], tuple[Any, Dataset | None]],
                     close: Callable[[], None]) -> Iterator[tuple[Any, Dataset | None]]:
    """The Pending responses of a C-FIND, one per match as it is read (PS3.4 C.4.1.2.3,
    K.4.1.2.3): the next match is read once the previous response has gone out
    (:mod:`pacsnode.dimse.backpressure`); a C-CANCEL, checked before each response, ends
    them with 0xFE00; an index failure with 0xA700, anything else with 0xC000. ``close``
    ends the read in every case."""
    count = 0
    try:
        for match in matches:
            backpressure.wait_until_sent(event.assoc)
            if event.is_cancelled:
                log.info("%s from %s cancelled after %d matches", label, who, count)
                yield statuses.CANCEL, None
                return
            count += 1
            yield respond(match)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        log.error("%s from %s: index failed after %d matches: %s", label, who, count, exc)
        yield statuses.with_comment(statuses.OUT_OF_RESOURCES, "index unavailable"), None
        return
    except Exception:
        log.exception("%s from %s failed after %d matches", label, who, count)
        yield statuses.with_comment(statuses.UNABLE_TO_PROCESS, "internal error"), None
        return
    finally:
        close()
    log.info("%s from %s: %d matches", label, who, count)
