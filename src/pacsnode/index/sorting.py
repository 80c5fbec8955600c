"""Ordering search results by index columns: ``sort=-StudyDate,PatientName``.

A sort specification is a comma-separated list of attributes, each a DICOM keyword or 8
hexadecimal digits, ``-`` in front for descending order. Only attributes kept in a column of
the level's table or of a level above it (:data:`pacsnode.index.query_keys.COLUMNS`) can be
sorted on, so that the order is applied in SQL together with the filters, limit and offset;
at the study level ``created`` (when the study was first stored) is accepted too. Person
names sort on their upper-cased column, i.e. case-insensitively; other text by the
database's collation (byte order on SQLite). Empty numeric values come last in ascending
order, first in descending.

The primary key of the level's table is always the last key, in the direction of the last
key given, so that ties keep one stable order and paging neither repeats nor skips rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from pacsnode.index.levels import Level
from pacsnode.index.query_keys import COLUMNS, TABLES
from pacsnode.index.schema import study

_ORDER = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)
# multi-valued UID lists: no meaningful order
_NOT_SORTABLE = frozenset({0x00080062})
# sortable values that are not DICOM attributes: name → (level, column)
EXTRA_KEYS: dict[str, tuple[Level, Any]] = {
    "created": (Level.STUDY, study.c.created_at),
}


@dataclass(frozen=True)
class SortKey:
    """One key of an order: its name as given back to users, its column, the direction."""

    name: str
    column: Any
    descending: bool = False


def _levels_up_to(level: Level) -> tuple[Level, ...]:
    return _ORDER[: _ORDER.index(level) + 1]


def sortable(level: Level) -> dict[str, Any]:
    """The attributes a search at ``level`` can be sorted on: name (keyword, or the extra
    names) → column, in the order of :data:`COLUMNS`."""
    allowed = set(_levels_up_to(level))
    out: dict[str, Any] = {}
    for tag, key in COLUMNS.items():
        if key.level in allowed and tag not in _NOT_SORTABLE:
            out[keyword_for_tag(tag) or f"{tag:08X}"] = key.column
    for name, (lv, column) in EXTRA_KEYS.items():
        if lv in allowed:
            out[name] = column
    return out


def _name(text: str) -> str:
    """The keyword of an attribute given by keyword or tag; extra names as they are."""
    if text.lower() in EXTRA_KEYS:
        return text.lower()
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        return keyword_for_tag(int(text, 16)) or text.upper()
    return text if tag_for_keyword(text) is not None else ""


def parse(level: Level, spec: str) -> tuple[SortKey, ...]:
    """The keys of a sort specification (``-StudyDate,PatientName``) for a search at
    ``level``; an empty specification is the default order (``()``). ValueError, naming
    the sortable attributes, for anything else."""
    choices = sortable(level)
    keys: list[SortKey] = []
    seen: set[str] = set()
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        descending = part.startswith("-")
        text = part.lstrip("+-").strip()
        name = _name(text)
        if name not in choices:
            raise ValueError(f"cannot sort {level.value.lower()} results by {text!r}; "
                             f"sortable: {', '.join(choices)}")
        if name in seen:
            raise ValueError(f"{name} is given twice in sort={spec!r}")
        seen.add(name)
        keys.append(SortKey(name, choices[name], descending))
    return tuple(keys)


def _nullable(column: Any) -> bool:
    return bool(getattr(column, "nullable", False))


def order_by(level: Level, keys: Sequence[SortKey]) -> list[Any]:
    """The ORDER BY clauses of ``keys`` for a search at ``level``, the level's primary
    key last (default order, storage order, when ``keys`` is empty)."""
    pk = TABLES[level].c.pk
    clauses: list[Any] = []
    for key in keys:
        clause = key.column.desc() if key.descending else key.column.asc()
        if _nullable(key.column):  # same place for empty numbers on every backend
            clause = clause.nulls_first() if key.descending else clause.nulls_last()
        clauses.append(clause)
    descending = bool(keys) and keys[-1].descending
    clauses.append(pk.desc() if descending else pk.asc())
    return clauses


def describe(keys: Sequence[SortKey]) -> str:
    """``keys`` written back as a sort specification."""
    return ",".join(("-" if k.descending else "") + k.name for k in keys)

