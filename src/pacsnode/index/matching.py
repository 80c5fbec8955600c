"""DICOM attribute matching (PS3.4 C.2.2.2), in one place for C-FIND, QIDO-RS and the worklist.

A query key's value is parsed once into a :class:`Condition` — universal, single value, list
of UID, wildcard, range, empty-value or sequence matching — which then renders itself either
as an SQL expression on an index column (:meth:`Condition.sql`) or as a test of values taken
from a level's DICOM JSON (:meth:`Condition.test`), with the same meaning:

* **Universal** (C.2.2.2.3): a zero-length value, or ``*`` alone (C.2.2.2.4), matches
  everything; the key is only a return key.
* **Single value** (C.2.2.2.1): equality. Non-PN attributes match case-sensitively; PN
  attributes case-insensitively (left to the implementation by the standard; see
  ``docs/conformance.md``). A person name matches if the query equals the whole stored value
  or its alphabetic component group; a query value with non-ASCII characters may also
  equal the ideographic or the phonetic group. (ASCII queries so keep to the name's index;
  the others scan the names.) Wildcards follow the same rule.
* **List of UID** (C.2.2.2.2): a UI value with several values matches any of them.
* **Wildcard** (C.2.2.2.4): ``*`` (any sequence of characters, including none) and ``?``
  (exactly one character, also one non-ASCII character) for every VR except DA, TM, DT, UI,
  the numeric, binary and AS/AT VRs, where ``*`` and ``?`` are ordinary characters.
  SQL's own wildcards (``%``, ``_``) and the escape character in a value are escaped.
* **Range** (C.2.2.2.5): ``a-b``, ``a-`` and ``-b`` for DA, TM and DT, inclusive at both
  ends. A bound of reduced precision covers its whole period (``-1200`` includes 12:00:59).
  A TM range never crosses midnight: a lower bound after the upper bound matches nothing.
* **Empty value** (C.2.2.2.1.1): the value ``""`` matches attributes that are empty or absent.
* **Sequence** (C.2.2.2.6): a sequence key with one item matches if any item of the stored
  sequence matches every key of the query item; an empty item is universal matching.

A value with several values of a non-UID VR matches if any of them does (the standard
defines multiple values only for UIDs; accepting them as alternatives is an extension).
Stored multi-valued attributes (Modalities in Study, say) match if any stored value does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlalchemy as sa

ESCAPE = "!"
NO_WILDCARD_VRS = frozenset({"DA", "TM", "DT", "UI", "SL", "SS", "US", "UL", "SV", "UV",
                             "FL", "FD", "OB", "OW", "OD", "OF", "OL", "OV", "UN", "AT", "DS",
                             "IS", "AS"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
NUMERIC_VRS = frozenset({"IS", "SL", "SS", "US", "UL", "SV", "UV"})
# Sorts after every character a DA/TM/DT value may contain: "1200~" is the end of 12:00.
_PERIOD_END = "~"


class Kind(Enum):
    UNIVERSAL = "universal"
    SINGLE = "single"
    UID_LIST = "uid list"
    WILDCARD = "wildcard"
    RANGE = "range"
    EMPTY = "empty"
    SEQUENCE = "sequence"


@dataclass(frozen=True)
class Condition:
    """A parsed matching key value; see the module documentation for the rules."""

    kind: Kind
    vr: str
    values: tuple[str, ...] = ()
    low: str = ""
    high: str = ""
    items: tuple[tuple[int, Condition], ...] = field(default=())

    @property
    def is_universal(self) -> bool:
        return self.kind is Kind.UNIVERSAL

    # -- SQL --------------------------------------------------------------------------------

    def sql(self, column: Any, *, multi: bool = False) -> sa.ColumnElement[bool] | None:
        """This condition on ``column`` (text, or integer for numeric VRs), or None for
        universal matching. PN columns are expected to hold the upper-cased name.
        ``multi``: the column holds several values joined by backslashes."""
        kind = self.kind
        if kind is Kind.UNIVERSAL or kind is Kind.SEQUENCE:
            return None
        if kind is Kind.EMPTY:
            return sa.or_(column.is_(None), column == "") if self.vr not in NUMERIC_VRS \
                else column.is_(None)
        if kind is Kind.RANGE:
            return self._range_sql(column)
        if self.vr in NUMERIC_VRS:
            numbers = [n for n in (_int(v) for v in self.values) if n is not None]
            return column.in_(numbers) if numbers else sa.false()
        if kind is Kind.UID_LIST:
            return column.in_(self.values)
        alternatives = [self._value_sql(column, v, multi) for v in self.values]
        return alternatives[0] if len(alternatives) == 1 else sa.or_(*alternatives)

    def _value_sql(self, column: Any, value: str, multi: bool) -> sa.ColumnElement[bool]:
        pattern = to_like(value) if self.kind is Kind.WILDCARD else escape_like(value)
        exact = self.kind is not Kind.WILDCARD

        def like(p: str) -> sa.ColumnElement[bool]:
            return column.like(p, escape=ESCAPE)

        whole = column == value if exact else like(pattern)
        if self.vr == "PN":
            # the whole name or its alphabetic group (both use the column's index); a value
            # with non-ASCII characters also the ideographic or phonetic group (a scan)
            alternatives = [whole]
            if exact or not pattern.endswith("%"):
                alternatives.append(like(pattern + "=%"))
            if not value.isascii():
                alternatives += [like("%=" + pattern), like("%=" + pattern + "=%")]
            return sa.or_(*alternatives) if len(alternatives) > 1 else whole
        if multi:
            return sa.or_(whole, like(pattern + "\\%"), like("%\\" + pattern),
                          like("%\\" + pattern + "\\%"))
        return whole

    def _range_sql(self, column: Any) -> sa.ColumnElement[bool]:
        low, high = self.low, self.high
        if low and high and self.vr == "TM" and low > high:
            return sa.false()
        parts = [column != ""]
        if low:
            parts.append(column >= low)
        if high:
            parts.append(column <= high + _PERIOD_END)
        return sa.and_(*parts)

    # -- Python (values from DICOM JSON) ----------------------------------------------------

    def test(self, values: Sequence[Any] | None) -> bool:
        """Whether stored ``values`` (a DICOM JSON ``Value`` list, None when absent) match.
        Sequence conditions expect the list of item dicts."""
        kind = self.kind
        if kind is Kind.UNIVERSAL:
            return True
        present = [v for v in (values or ()) if v is not None and v != ""]
        if kind is Kind.EMPTY:
            return not present
        if kind is Kind.SEQUENCE:
            return any(_item_matches(item, self.items) for item in present
                       if isinstance(item, dict))
        texts = [json_text(v) for v in present]
        if kind is Kind.RANGE:
            return any(self._in_range(t) for t in texts)
        if self.vr in NUMERIC_VRS:
            wanted = {_int(v) for v in self.values} - {None}
            return any(_int(t) in wanted for t in texts)
        if kind is Kind.UID_LIST:
            return any(t in self.values for t in texts)
        return any(self._text_matches(t, v) for t in texts for v in self.values)

    def _text_matches(self, stored: str, value: str) -> bool:
        candidates = [stored]
        if self.vr == "PN":
            stored = stored.upper()
            groups = stored.split("=")
            candidates = [stored, *groups] if not value.isascii() else [stored, groups[0]]
        if self.kind is Kind.WILDCARD:
            return any(wildcard_match(value, c) for c in candidates)
        return value in candidates

    def _in_range(self, stored: str) -> bool:
        if not stored:
            return False
        low, high = self.low, self.high
        if low and high and self.vr == "TM" and low > high:
            return False
        return (not low or stored >= low) and (not high or stored <= high + _PERIOD_END)


def _item_matches(item: dict[str, Any], keys: tuple[tuple[int, Condition], ...]) -> bool:
    for tag, condition in keys:
        elem = item.get(f"{tag:08X}") or {}
        if not condition.test(elem.get("Value")):
            return False
    return True


def json_text(value: Any) -> str:
    """A DICOM JSON value as the text matching compares: person names as
    ``alphabetic=ideographic=phonetic``, numbers as written."""
    if isinstance(value, dict):
        groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def escape_like(value: str) -> str:
    """``value`` as a LIKE pattern matching exactly itself (escape character ``!``)."""
    return (value.replace(ESCAPE, ESCAPE + ESCAPE).replace("%", ESCAPE + "%")
            .replace("_", ESCAPE + "_"))


def to_like(value: str) -> str:
    """A DICOM wildcard value (``*``, ``?``) as a LIKE pattern (escape character ``!``)."""
    return escape_like(value).replace("*", "%").replace("?", "_")


def wildcard_match(pattern: str, text: str) -> bool:
    """DICOM wildcard matching in Python: ``*`` any run of characters, ``?`` exactly one."""
    p, t = 0, 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star != -1:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def like_prefix(value: str) -> str:
    """The literal text before the first wildcard (for diagnostics and tests)."""
    for i, ch in enumerate(value):
        if ch in "*?":
            return value[:i]
    return value


def parse(vr: str, value: Any, items: Sequence[tuple[int, Condition]] = ()) -> Condition:
    """Parse one query key's value (``str``, a list of values, or None) of ``vr``.

    Person names are upper-cased here (PN matching is case-insensitive); nothing else is
    changed: other VRs match case-sensitively.
    """
    if vr == "SQ":
        return Condition(Kind.SEQUENCE if items else Kind.UNIVERSAL, vr,
                         items=tuple(items))
    values = _split(value)
    if not values:
        return Condition(Kind.UNIVERSAL, vr)
    if values == ['""']:
        return Condition(Kind.EMPTY, vr)
    if vr == "PN":
        values = [v.upper() for v in values]
    if vr in RANGE_VRS:
        if len(values) == 1 and "-" in values[0]:
            low, _, high = values[0].partition("-")
            return Condition(Kind.RANGE, vr, low=low.strip(), high=high.strip())
        if vr in ("TM", "DT") and len(values) == 1:  # reduced precision: the whole period
            return Condition(Kind.RANGE, vr, low=values[0], high=values[0])
        return Condition(Kind.SINGLE, vr, values=tuple(values))
    if vr == "UI":
        return Condition(Kind.UID_LIST if len(values) > 1 else Kind.SINGLE, vr,
                         values=tuple(values))
    wildcard = vr not in NO_WILDCARD_VRS and any("*" in v or "?" in v for v in values)
    if wildcard and any(set(v) == {"*"} for v in values):
        return Condition(Kind.UNIVERSAL, vr)
    return Condition(Kind.WILDCARD if wildcard else Kind.SINGLE, vr, values=tuple(values))


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        parts = [str(v) if v is not None else "" for v in value]
    else:
        parts = str(value).split("\\")
    parts = [p.strip() for p in parts]
    return [] if all(p == "" for p in parts) else parts
