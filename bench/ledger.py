"""The seeded fee orders as the database has them: each paid once or pending, nothing half
credited (``bench.payments`` checks it after each load)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from bench import seed

if TYPE_CHECKING:
    from bench.payments import Order
    from bench.run import Bench

PAID_EVENT = "缴费"  # the case's timeline event of PaymentService._announce_paid
CHUNK = 100  # ids per $in: SecantusDB's $in costs more than linearly (1000 ids: ~2 s)


def check_ledger(bench: Bench, db: seed.Db, orders: list[Order], after: str, load: Any) -> Ledger:
    """No order credited twice; with ``load`` (orders, result): no fewer credited than answered."""
    with bench.stage(f"check after the {after}: no order credited twice"):
        found = settled_ledger(db, orders)
        if found.problems:
            raise seed.SeedError(f"{len(found.problems)} orders wrong: {found.problems[:3]}")
        if load is not None and load[1].ok and ledger(db, load[0]).paid < load[1].requests:
            raise seed.SeedError(f"{load[1].requests} callbacks answered, fewer credited")
    bench.note(f"after the {after}: {found.summary()}")
    return found


@dataclass
class Ledger:
    """The seeded orders as the database has them (equal: nothing changed)."""

    paid: int = 0
    pending: int = 0
    versions: int = 0  # sum over payments, notices and cases: a no-op changes none
    paid_events: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.paid} credited, {self.pending} pending, {self.paid_events} 缴费 events"


def settled_ledger(db: seed.Db, orders: list[Order], limit: float = 120) -> Ledger:
    """The ledger once two readings a second apart agree (callbacks may still be running)."""
    began, last = time.monotonic(), ledger(db, orders)
    while time.monotonic() - began < limit:
        time.sleep(1)
        now = ledger(db, orders)
        if now == last:
            return now
        last = now
    raise seed.SeedError(f"the payments still changing {limit:.0f} s after the load")


def ledger(db: seed.Db, orders: list[Order]) -> Ledger:
    """Each order paid (its notice credited its amount, one 缴费 event) or pending (nothing
    credited, no event); anything else is a problem."""
    out = Ledger()
    for start in range(0, len(orders), CHUNK):
        chunk = orders[start : start + CHUNK]
        pays = by_id(db, "payments", [o.payment["_id"] for o in chunk], "status")
        fees = by_id(db, "fee_notices", [o.notice_id for o in chunk], "amount_fen paid_fen status")
        cases = by_id(db, "cases", [o.case_id for o in chunk], "timeline.kind")
        for o in chunk:
            _tally(out, o, pays.get(o.payment["_id"]), fees.get(o.notice_id), cases.get(o.case_id))
    return out


def by_id(db: seed.Db, name: str, ids: list[ObjectId], fields: str) -> dict[ObjectId, Any]:
    projection = dict.fromkeys([*fields.split(), "version"], 1)
    return {d["_id"]: d for d in db[name].find({"_id": {"$in": ids}}, projection)}


def _tally(out: Ledger, order: Order, payment: Any, notice: Any, case: Any) -> None:
    number = order.payment["out_trade_no"]
    if payment is None or notice is None or case is None:
        out.problems.append(f"{number}: payment, notice or case missing")
        return
    paid = payment["status"] == "paid"
    events = sum(e.get("kind") == PAID_EVENT for e in case.get("timeline", []))
    out.paid += paid
    out.pending += payment["status"] == "pending"
    out.paid_events += events
    out.versions += payment["version"] + notice["version"] + case["version"]
    owed = notice["amount_fen"] if paid else 0
    if notice["paid_fen"] != owed or (notice["status"] == "paid") != paid or events != paid:
        out.problems.append(
            f"{number} {payment['status']}: notice {notice['status']} paid_fen "
            f"{notice['paid_fen']} of {notice['amount_fen']}, {events} 缴费 events"
        )
