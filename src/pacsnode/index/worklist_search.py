"""Searching the Modality Worklist (PS3.4 K.6.1, Table K.6-1) with the matching rules of
:mod:`pacsnode.index.matching` (PS3.4 C.2.2.2, which K.2.2.1 refers to).

The keys a modality sends become one SQL statement on the ``worklist`` table:

* keys kept in columns — Patient's Name, Patient ID, Accession Number, Requested Procedure
  ID, Study Instance UID at the top level, and inside the Scheduled Procedure Step Sequence
  (0040,0100) item: Scheduled Station AE Title, Modality, Scheduled Procedure Step Start
  Date and Start Time, Scheduled Performing Physician's Name, Scheduled Procedure Step ID —
  are matched in SQL (:meth:`Condition.sql`);
* every other key, at the top level or inside the sequence item (nested sequences
  included), is tested on the stored DICOM JSON as rows stream by (:meth:`Condition.test`).

Every worklist row holds exactly one Scheduled Procedure Step item (checked when items are
added, :mod:`pacsnode.core.worklist`), so matching the sequence item's keys on that item's
columns plus the rest on that item's JSON is sequence matching as C.2.2.2.6 defines it (one
item matching every key of the query item).

Each DA and TM key is matched on its own; combined date-time range matching of Scheduled
Procedure Step Start Date and Time (C.2.2.2.5.1) is not done, as for C-FIND (§6a of the
conformance statement). Only items in the given states answer (by default SCHEDULED and
IN PROGRESS).
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.index import dicom_json
from pacsnode.index.engine import read_transaction
from pacsnode.index.matching import Condition, Kind
from pacsnode.index.schema import worklist

FETCH_BATCH = 200
SPS_SEQUENCE = 0x00400100  # Scheduled Procedure Step Sequence

# top-level keys kept in columns: tag -> column
TOP_COLUMNS: dict[int, Any] = {
    0x00100010: worklist.c.patient_name_norm,  # Patient's Name (PN, upper-cased)
    0x00100020: worklist.c.patient_id,
    0x00080050: worklist.c.accession_number,
    0x00401001: worklist.c.requested_procedure_id,
    0x0020000D: worklist.c.study_instance_uid,
}
# keys of the Scheduled Procedure Step Sequence item kept in columns
SPS_COLUMNS: dict[int, Any] = {
    0x00400001: worklist.c.station_aet,  # Scheduled Station AE Title
    0x00080060: worklist.c.modality,
    0x00400002: worklist.c.start_date,  # Scheduled Procedure Step Start Date
    0x00400003: worklist.c.start_time,  # Scheduled Procedure Step Start Time
    0x00400006: worklist.c.performing_physician_name_norm,  # (PN, upper-cased)
    0x00400009: worklist.c.sps_id,  # Scheduled Procedure Step ID
}


@dataclass(frozen=True)
class WorklistPlan:
    """A compiled worklist search: the statement and the keys left for the JSON filter
    (top-level tag → condition; the sequence's own leftover keys as one sequence
    condition)."""

    statement: sa.Select[Any]
    json_filters: tuple[tuple[int, Condition], ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class WorklistRow:
    """One matching worklist item: its row (without ``attrs``) and its DICOM JSON."""

    pk: int
    state: str
    attrs: dict[str, Any]
    created_at: str
    updated_at: str


def compile_worklist_search(keys: Mapping[int, Condition], *,
                            states: Collection[str] | None = None,
                            limit: int | None = None, offset: int = 0) -> WorklistPlan:
    """The statement finding the worklist items that match ``keys`` (tag → condition, as
    :func:`pacsnode.dimse.find_scp.parse_keys` gives them) in one of ``states`` (None: any
    state), in scheduled order (start date, start time, then order of creation)."""
    where: list[sa.ColumnElement[bool]] = []
    json_filters: list[tuple[int, Condition]] = []
    if states is not None:
        where.append(worklist.c.state.in_(sorted(states)))
    for tag, condition in keys.items():
        if condition.is_universal:
            continue
        column = TOP_COLUMNS.get(tag)
        if column is not None:
            clause = condition.sql(column)
            if clause is not None:
                where.append(clause)
            continue
        if tag == SPS_SEQUENCE and condition.kind is Kind.SEQUENCE:
            rest: list[tuple[int, Condition]] = []
            for sub_tag, sub in condition.items:
                sub_column = SPS_COLUMNS.get(sub_tag)
                clause = sub.sql(sub_column) if sub_column is not None else None
                if clause is not None:
                    where.append(clause)
                elif sub_column is None and not sub.is_universal:
                    rest.append((sub_tag, sub))
            if rest:
                json_filters.append((tag, Condition(Kind.SEQUENCE, "SQ", items=tuple(rest))))
            continue
        json_filters.append((tag, condition))
    stmt = (sa.select(worklist.c.pk, worklist.c.state, worklist.c.attrs,
                      worklist.c.created_at, worklist.c.updated_at)
            .where(*where)
            .order_by(worklist.c.start_date, worklist.c.start_time, worklist.c.pk))
    if json_filters:  # paging after the JSON filter, in Python
        return WorklistPlan(stmt, tuple(json_filters), limit, offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return WorklistPlan(stmt)


def matches_json(attrs: Mapping[str, Any], json_filters: tuple[tuple[int, Condition], ...]
                 ) -> bool:
    """Whether an item's DICOM JSON passes every JSON filter of a plan."""
    return all(cond.test((attrs.get(f"{tag:08X}") or {}).get("Value"))
               for tag, cond in json_filters)


def run_worklist_search(engine: Engine, plan: WorklistPlan
                        ) -> Generator[WorklistRow, None, None]:
    """Stream the matches of ``plan`` (read in batches in one read transaction; stopping
    the iteration early ends it)."""
    skip, left = plan.offset, plan.limit
    if left is not None and left <= 0:
        return
    with read_transaction(engine) as conn:
        result = conn.execution_options(yield_per=FETCH_BATCH).execute(plan.statement)
        for row in result.mappings():
            attrs = dicom_json.loads(row["attrs"])
            if plan.json_filters and not matches_json(attrs, plan.json_filters):
                continue
            if skip:
                skip -= 1
                continue
            yield WorklistRow(int(row["pk"]), str(row["state"]), attrs,
                              str(row["created_at"]), str(row["updated_at"]))
            if left is not None:
                left -= 1
                if left <= 0:
                    return


def search_worklist(engine: Engine, keys: Mapping[int, Condition], *,
                    states: Collection[str] | None = None, limit: int | None = None,
                    offset: int = 0) -> Generator[WorklistRow, None, None]:
    """Compile and run a worklist search (see :func:`compile_worklist_search`)."""
    return run_worklist_search(engine, compile_worklist_search(
        keys, states=states, limit=limit, offset=offset))
