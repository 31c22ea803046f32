"""Deadlines and escalation steps of work orders, as pure functions (no I/O).

Each order gets three deadlines at creation, counted in the court's working time
(``CourtCalendar.add_working_hours``: 09:00-12:00 and 13:30-17:30 on working days):

- assign: ``assign_working_hours`` (a message without a case waits at the service desk);
- first reply: ``first_reply_working_days``;
- close: ``close_working_days``.

Each deadline has two escalation steps: level 1 (督办, to the court's supervisors) at the
deadline, level 2 (to the division heads) at "twice the time": the same span of working time
again, counted on from the deadline. A deadline applies while its stage is open: assignment
while the order is pending, the first reply until it is made, closing until it is done.
``sweep_at`` is the earliest step of an applicable deadline not yet escalated: the sweep's
index finds the orders whose next step has come.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from models.workorders import DeadlineKind, Step, WorkOrderDoc, WorkOrderStatus
from server.platform.calendar import CourtCalendar
from server.platform.config import WorkOrderDeadlines

DUE_FIELDS = {
    DeadlineKind.assign: "assign_due_at",
    DeadlineKind.reply: "first_reply_due_at",
    DeadlineKind.close: "close_due_at",
}


def to_ms(when: dt.datetime) -> dt.datetime:
    """BSON keeps milliseconds: what is compared after a round trip must be cut the same."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def spans(cal: CourtCalendar, rules: WorkOrderDeadlines) -> dict[DeadlineKind, float]:
    """Working hours of each deadline."""
    return {
        DeadlineKind.assign: rules.assign_working_hours,
        DeadlineKind.reply: rules.first_reply_working_days * cal.day_hours,
        DeadlineKind.close: rules.close_working_days * cal.day_hours,
    }


def deadlines(
    cal: CourtCalendar, rules: WorkOrderDeadlines, created_at: dt.datetime
) -> dict[str, Any]:
    """The three deadlines (stored fields) and the six escalation steps of a new order."""
    fields: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    for kind, hours in spans(cal, rules).items():
        due = to_ms(cal.add_working_hours(created_at, hours))
        twice = to_ms(cal.add_working_hours(due, hours))
        fields[DUE_FIELDS[kind]] = due
        steps += [
            {"kind": kind.value, "level": 1, "at": due},
            {"kind": kind.value, "level": 2, "at": twice},
        ]
    fields["steps"] = steps
    return fields


def applicable(status: WorkOrderStatus, replied: bool) -> set[DeadlineKind]:
    """The deadlines still running in a state."""
    if status == WorkOrderStatus.closed:
        return set()
    kinds = {DeadlineKind.close}
    if not replied:
        kinds.add(DeadlineKind.reply)
    if status == WorkOrderStatus.pending:
        kinds.add(DeadlineKind.assign)
    return kinds


def _open_steps(
    steps: Iterable[Step], kinds: set[DeadlineKind], done: set[tuple[DeadlineKind, int]]
) -> list[Step]:
    return [s for s in steps if s.kind in kinds and (s.kind, s.level) not in done]


def schedule(
    order: WorkOrderDoc,
    status: WorkOrderStatus,
    replied: bool,
    done: set[tuple[DeadlineKind, int]] | None = None,
) -> dict[str, Any]:
    """``overdue_at`` and ``sweep_at`` of ``order`` once it is in ``status``; ``done`` are
    the steps escalated (those of ``order`` by default)."""
    taken = done if done is not None else {(e.kind, e.level) for e in order.escalations}
    kinds = applicable(status, replied)
    pending = _open_steps(order.steps, kinds, taken)
    firsts = [s.at for s in order.steps if s.kind in kinds and s.level == 1]
    return {
        "overdue_at": min(firsts) if firsts else None,
        "sweep_at": min(s.at for s in pending) if pending else None,
    }


def due_steps(order: WorkOrderDoc, now: dt.datetime) -> list[Step]:
    """Steps whose time has come and that are not escalated yet, earliest first."""
    kinds = applicable(order.status, order.first_replied_at is not None)
    done = {(e.kind, e.level) for e in order.escalations}
    return sorted(
        (s for s in _open_steps(order.steps, kinds, done) if s.at <= now),
        key=lambda s: (s.at, s.level),
    )


def overdue(order: WorkOrderDoc, now: dt.datetime) -> bool:
    return order.overdue_at is not None and order.overdue_at <= now
