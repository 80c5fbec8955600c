"""Orders of an ORM^O01 (HL7 v2.3.1–2.4 chapter 4.4.1) or OMI^O23 (v2.5.1 chapter 4.4.10)
message and what they do to the Modality Worklist (IHE RAD TF-2 RAD-4 "Procedure
Scheduled" and RAD-13 "Procedure Update"). No network code.

**Orders**: each ORC starts an order; the OBR (and for OMI the TQ1, the IPC segments, and
for ORM the ZDS) after it belong to it. One OBR is one worklist item, or, in OMI, one IPC is
(an OBR without IPC: one item). The PID (required) and PV1 apply to every order.

**Order control** (ORC-1, HL7 Table 0119):

* ``NW`` new order: its items are added (SCHEDULED); an order already known (same placer
  or filler order number, any state) is an error (AE, 205);
* ``XO`` change: each item replaces, keeping its state, the known item with the same
  Scheduled Procedure Step ID, or without one the known item at the same position; an
  unknown order or step (AE, 204) or a COMPLETED/DISCONTINUED/CANCELLED item (AE, 207) is
  an error;
* ``CA`` cancel / ``DC`` discontinue: the order's SCHEDULED and IN PROGRESS items become
  CANCELLED / DISCONTINUED (items already final are left as they are); an unknown order, or
  one with no item left to change, is an error (AE, 204 / 207);
* any other code: AE (103).

An order is found by its placer (ORC-2, else OBR-2) and filler (ORC-3, else OBR-3) order
numbers among the patient's items (:func:`pacsnode.core.worklist.find_by_order`). Every
order of a message is read and checked against the worklist before anything is changed;
the changes themselves are one transaction per item.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.engine import Engine

from pacsnode.core import worklist
from pacsnode.hl7 import mapping
from pacsnode.hl7.mapping import JsonDict, MappingError
from pacsnode.hl7.messages import (
    DATA_TYPE_ERROR,
    DUPLICATE_KEY,
    INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    Message,
    Segment,
)

log = logging.getLogger("pacsnode.hl7")
CONTROLS = ("NW", "XO", "CA", "DC")
OrderError = MappingError  # same fields: message, HL7 Table 0357 code, location


@dataclass
class Order:
    """One ORC group: order control, order numbers and the worklist items it describes."""

    control: str
    placer: str
    filler: str
    orc: Segment
    items: list[JsonDict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.placer or self.filler


@dataclass
class _Group:
    orc: Segment
    tq1: Segment | None = None
    zds: Segment | None = None
    obrs: list[tuple[Segment, list[Segment]]] = field(default_factory=list)


def _groups(msg: Message) -> list[_Group]:
    groups: list[_Group] = []
    for seg in msg.segments[1:]:
        if seg.name == "ORC":
            groups.append(_Group(seg))
        elif seg.name in ("OBR", "TQ1", "IPC", "ZDS"):
            if not groups or (seg.name == "IPC" and not groups[-1].obrs):
                raise OrderError(f"{seg.name} segment out of place (it must follow an "
                                 f"{'OBR' if seg.name == 'IPC' else 'ORC'})",
                                 SEGMENT_SEQUENCE_ERROR, seg.name)
            group = groups[-1]
            if seg.name == "OBR":
                group.obrs.append((seg, []))
            elif seg.name == "IPC":
                group.obrs[-1][1].append(seg)
            elif seg.name == "TQ1":
                group.tq1 = group.tq1 or seg
            else:
                group.zds = seg
    return groups


def read(msg: Message, station_aet: str = "") -> tuple[str, list[Order]]:
    """The patient ID and the orders of ``msg``, each with its mapped items (for NW and
    XO); :class:`OrderError` when something required is missing or bad."""
    pid, pv1 = msg.first("PID"), msg.first("PV1")
    if pid is None:
        raise OrderError("no PID segment", SEGMENT_SEQUENCE_ERROR, "PID")
    base = mapping.patient(pid, pv1)
    orders = []
    groups = _groups(msg)
    if not groups:
        raise OrderError("no ORC segment", SEGMENT_SEQUENCE_ERROR, "ORC")
    for group in groups:
        orc = group.orc
        control = orc.get(1).upper()
        if control not in CONTROLS:
            raise OrderError(f"order control {control or '(empty)'!r} is not supported "
                             f"(ORC-1: {', '.join(CONTROLS)})", TABLE_VALUE_NOT_FOUND,
                             "ORC-1")
        first_obr = group.obrs[0][0] if group.obrs else None
        placer = orc.get(2) or (first_obr.get(2) if first_obr else "")
        filler = orc.get(3) or (first_obr.get(3) if first_obr else "")
        if not (placer or filler):
            raise OrderError("the order has no placer or filler order number (ORC-2, "
                             "ORC-3)", REQUIRED_FIELD_MISSING, "ORC-2")
        order = Order(control, placer, filler, orc)
        if control in ("NW", "XO"):
            if not group.obrs:
                raise OrderError(f"order {order.name}: {control} needs an OBR segment",
                                 SEGMENT_SEQUENCE_ERROR, "OBR")
            for obr, ipcs in group.obrs:
                steps: list[Segment | None] = [*ipcs] if ipcs else [None]
                for ipc in steps:
                    attrs = mapping.item(base, orc, obr, tq1=group.tq1, ipc=ipc, pv1=pv1,
                                         zds=group.zds, station_aet=station_aet)
                    try:  # the checks add_json makes, before anything is changed
                        worklist.check_item(copy.deepcopy(attrs))
                    except worklist.WorklistError as exc:
                        raise OrderError(f"order {order.name}: {exc}", DATA_TYPE_ERROR,
                                         "OBR") from None
                    order.items.append(attrs)
        orders.append(order)
    return base["00100020"]["Value"][0], orders


Action = Callable[[], str]


def _add(engine: Engine, attrs: JsonDict) -> str:
    return f"added item {worklist.add_json(engine, attrs).pk}"


def _set_state(engine: Engine, pk: int, state: worklist.State) -> str:
    return f"item {pk} {worklist.set_state(engine, pk, state).state.value}"


def _change(engine: Engine, pk: int, attrs: JsonDict) -> str:
    return f"changed item {worklist.update_json(engine, pk, attrs).pk}"


def _item(attrs: JsonDict) -> worklist.WorklistItem:
    return worklist.WorklistItem(0, worklist.State.SCHEDULED, attrs, "", "")


def _plan(engine: Engine, patient_id: str, order: Order) -> list[Action]:
    accession = next((_item(a).text(worklist.ACCESSION) for a in order.items), "")
    known = worklist.find_by_order(engine, patient_id=patient_id, placer=order.placer,
                                   filler=order.filler, accession=accession)
    name = order.name
    if order.control == "NW":
        if known:
            raise OrderError(f"order {name} already exists (worklist item "
                             f"{known[0].pk}, {known[0].state.value})", DUPLICATE_KEY,
                             "ORC-2")
        return [partial(_add, engine, attrs) for attrs in order.items]
    if not known:
        raise OrderError(f"unknown order {name}", UNKNOWN_KEY, "ORC-2")
    if order.control in ("CA", "DC"):
        state = worklist.State.CANCELLED if order.control == "CA" else \
            worklist.State.DISCONTINUED
        active = [i for i in known if i.state in worklist.ACTIVE]
        if not active:
            raise OrderError(f"order {name} is already {known[-1].state.value}",
                             INTERNAL_ERROR, "ORC-1")
        return [partial(_set_state, engine, i.pk, state) for i in active]
    actions: list[Action] = []
    for position, attrs in enumerate(order.items):
        sps_id = _item(attrs).sps_text(worklist.SPS_ID)
        if sps_id:
            match = next((i for i in known if i.sps_text(worklist.SPS_ID) == sps_id), None)
        else:
            match = known[position] if position < len(known) else None
        if match is None:
            raise OrderError(f"order {name} has no step "
                             f"{sps_id or f'number {position + 1}'}", UNKNOWN_KEY,
                             "OBR-20")
        if match.state in worklist.FINAL:
            raise OrderError(f"order {name}: worklist item {match.pk} is already "
                             f"{match.state.value}", INTERNAL_ERROR, "ORC-1")
        actions.append(partial(_change, engine, match.pk, attrs))
    return actions


def apply(engine: Engine, patient_id: str, orders: list[Order]) -> str:
    """Check every order against the worklist, then carry them out; what was done, or
    :class:`OrderError` (before any change). A
    :class:`pacsnode.core.worklist.WorklistError` from a change made concurrently is
    passed on."""
    plans = [(order, _plan(engine, patient_id, order)) for order in orders]
    done = []
    for order, actions in plans:
        results = [action() for action in actions]
        done.append(f"{order.control} order {order.name}: {', '.join(results)}")
    return "; ".join(done)
