"""Searching the index at one level of the hierarchy (PS3.4 C.4.1.3, C.6): the query keys
become one SQL statement on the level's table joined with the levels above it; the
matches stream back, each with the DICOM JSON of its level and of the levels above.

Keys kept in columns (:mod:`pacsnode.index.query_keys`) are matched in SQL; other keys of
the query level or above are matched against the stored DICOM JSON as rows stream by
(:meth:`pacsnode.index.matching.Condition.test`), so every key can be matched and no file
is ever opened. Keys of levels below the query level cannot be matched and are reported
as such.

Matches come in the order of first storage, or sorted on index columns
(:mod:`pacsnode.index.sorting`), in SQL either way; with keys left for the JSON filter,
limit and offset are applied after it, to the rows it keeps, in that same order.
:func:`count` counts the matches of a search.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.index import dicom_json, sorting
from pacsnode.index.engine import read_transaction
from pacsnode.index.levels import Level, level_of
from pacsnode.index.matching import Condition
from pacsnode.index.query_keys import COLUMNS, DERIVED_KEYS, TABLES
from pacsnode.index.schema import instance, patient, series, study
from pacsnode.index.sorting import SortKey

ORDER = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)
FETCH_BATCH = 200
# Instance columns a retrieve needs, returned with IMAGE-level matches.
FILE_COLUMNS = ("sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "storage_key",
                "file_size", "data_offset")


def levels_up_to(level: Level) -> tuple[Level, ...]:
    """``level`` and the levels above it, top first."""
    return ORDER[: ORDER.index(level) + 1]


@dataclass(frozen=True)
class Plan:
    """A compiled search: the statement, the keys left for the JSON filter, and the keys
    that cannot be matched at this level."""

    level: Level
    statement: sa.Select[Any]
    json_filters: tuple[tuple[int, Level, Condition], ...] = ()
    unmatchable: tuple[int, ...] = ()
    # with JSON filters, paging happens after them, in Python
    limit: int | None = None
    offset: int = 0


@dataclass
class Match:
    """One matching entity: its level's DICOM JSON merged with the levels above (lower
    levels' attributes win), derived keys included; for IMAGE, its file columns."""

    level: Level
    attrs: dict[str, Any]
    file: dict[str, Any] = field(default_factory=dict)


def _joined(level: Level) -> Any:
    if level is Level.PATIENT:
        return patient
    if level is Level.STUDY:
        return study.join(patient, study.c.patient_fk == patient.c.pk)
    if level is Level.SERIES:
        return series.join(study, series.c.study_fk == study.c.pk).join(
            patient, study.c.patient_fk == patient.c.pk)
    return instance.join(series, instance.c.series_fk == series.c.pk).join(
        study, series.c.study_fk == study.c.pk).join(patient, study.c.patient_fk == patient.c.pk)


def _conditions(level: Level, keys: Mapping[int, Condition]
                ) -> tuple[list[sa.ColumnElement[bool]], list[tuple[int, Level, Condition]],
                           list[int]]:
    """``keys`` split into SQL conditions on columns, keys left for the JSON filter, and
    keys that cannot be matched at ``level``. Universal conditions add nothing."""
    allowed = set(levels_up_to(level))
    where: list[sa.ColumnElement[bool]] = []
    json_filters: list[tuple[int, Level, Condition]] = []
    unmatchable: list[int] = []
    for tag, condition in keys.items():
        if condition.is_universal:
            continue
        key = COLUMNS.get(tag)
        if key is not None and key.level in allowed:
            clause = condition.sql(key.column, multi=key.multi)
            if clause is not None:
                where.append(clause)
            continue
        if key is not None and key.derived:
            unmatchable.append(tag)  # a count of a level below the query level
            continue
        stored_at = level_of(tag)
        if stored_at in allowed:
            json_filters.append((tag, stored_at, condition))
        else:
            unmatchable.append(tag)
    return where, json_filters, unmatchable


def compile_search(level: Level, keys: Mapping[int, Condition], *,
                   limit: int | None = None, offset: int = 0,
                   order: Sequence[SortKey] = ()) -> Plan:
    """The statement finding the entities of ``level`` that match ``keys`` (tag →
    condition), in ``order`` (:mod:`pacsnode.index.sorting`; by default the order of first
    storage), the level's primary key breaking ties. Universal conditions are return keys
    only and add nothing."""
    allowed = set(levels_up_to(level))
    where, json_filters, unmatchable = _conditions(level, keys)
    columns: list[Any] = []
    for lv in levels_up_to(level):
        table = TABLES[lv]
        columns.append(table.c.attrs.label(f"attrs_{lv.value}"))
    for tag, key in DERIVED_KEYS.items():
        if key.level in allowed:
            columns.append(key.column.label(f"derived_{tag:08X}"))
    if level is Level.IMAGE:
        columns.extend(instance.c[name] for name in FILE_COLUMNS)
    table = TABLES[level]
    ordering = sorting.order_by(level, order)
    stmt = sa.select(*columns).select_from(_joined(level)).where(*where).order_by(*ordering)
    if json_filters:  # rows the JSON filter drops must not count towards limit and offset
        return Plan(level, stmt, tuple(json_filters), tuple(unmatchable), limit, offset)
    if order and limit is not None:
        # sort the keys only, then read the page's rows: a sort without an index then
        # carries the primary keys, not every row's DICOM JSON (2-3 times faster)
        pk = table.c.pk
        page = sa.select(pk).select_from(_joined(level)).where(*where).order_by(
            *ordering).limit(limit).offset(offset or None)
        stmt = sa.select(*columns).select_from(_joined(level)).where(pk.in_(page)).order_by(
            *ordering)
        return Plan(level, stmt, tuple(json_filters), tuple(unmatchable))
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return Plan(level, stmt, tuple(json_filters), tuple(unmatchable))


def count(engine: Engine, level: Level, keys: Mapping[int, Condition]) -> int:
    """How many entities of ``level`` match ``keys`` (limit and offset aside). One
    ``COUNT(*)`` when every key is matched in SQL; with keys matched on the stored JSON,
    the rows the SQL conditions select are streamed and tested — as slow as reading them
    all."""
    where, json_filters, _ = _conditions(level, keys)
    with read_transaction(engine) as conn:
        if not json_filters:
            stmt = sa.select(sa.func.count()).select_from(_joined(level)).where(*where)
            return int(conn.execute(stmt).scalar_one())
        needed = sorted({lv for _, lv, _ in json_filters}, key=ORDER.index)
        stmt = sa.select(*(TABLES[lv].c.attrs.label(f"attrs_{lv.value}") for lv in needed)
                         ).select_from(_joined(level)).where(*where)
        total = 0
        result = conn.execution_options(yield_per=FETCH_BATCH).execute(stmt)
        for row in result.mappings():
            per_level = {lv: dicom_json.loads(row[f"attrs_{lv.value}"]) for lv in needed}
            if all(cond.test((per_level[lv].get(f"{tag:08X}") or {}).get("Value"))
                   for tag, lv, cond in json_filters):
                total += 1
        return total


def _derived_json(tag: int, value: Any) -> dict[str, Any]:
    key = DERIVED_KEYS[tag]
    if key.multi:
        values = [v for v in str(value or "").split("\\") if v]
        return {"vr": key.vr, "Value": values} if values else {"vr": key.vr}
    return {"vr": key.vr, "Value": [int(value)]} if value is not None else {"vr": key.vr}


@dataclass
class Results:
    """A running search: the keys it could not match, and its matches (an iterator)."""

    unmatchable: tuple[int, ...]
    matches: Iterator[Match]

    def __iter__(self) -> Iterator[Match]:
        return self.matches

    def close(self) -> None:
        """Stop reading (ends the read transaction)."""
        close = getattr(self.matches, "close", None)
        if close is not None:
            close()


def search(engine: Engine, level: Level, keys: Mapping[int, Condition], *,
           limit: int | None = None, offset: int = 0,
           order: Sequence[SortKey] = ()) -> Results:
    """Compile and start a search (see :func:`compile_search`)."""
    plan = compile_search(level, keys, limit=limit, offset=offset, order=order)
    return Results(plan.unmatchable, run_search(engine, plan))


def run_search(engine: Engine, plan: Plan) -> Iterator[Match]:
    """Stream the matches of ``plan`` (the statement is read in batches; stopping the
    iteration early ends the read transaction)."""
    levels = levels_up_to(plan.level)
    skip, left = plan.offset, plan.limit
    if left is not None and left <= 0:
        return
    with read_transaction(engine) as conn:
        result = conn.execution_options(yield_per=FETCH_BATCH).execute(plan.statement)
        for row in result.mappings():
            per_level = {lv: dicom_json.loads(row[f"attrs_{lv.value}"]) for lv in levels}
            if plan.json_filters and not all(
                    cond.test((per_level[lv].get(f"{tag:08X}") or {}).get("Value"))
                    for tag, lv, cond in plan.json_filters):
                continue
            if skip:
                skip -= 1
                continue
            attrs: dict[str, Any] = {}
            for lv in levels:
                attrs.update(per_level[lv])
            for tag in DERIVED_KEYS:
                label = f"derived_{tag:08X}"
                if label in row:
                    attrs[f"{tag:08X}"] = _derived_json(tag, row[label])
            file = {name: row[name] for name in FILE_COLUMNS} if plan.level is Level.IMAGE \
                else {}
            yield Match(plan.level, attrs, file)
            if left is not None:
                left -= 1
                if left <= 0:
                    return
