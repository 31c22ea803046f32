"""What the payment rows check: one fee paid through the API and the emulator's own callback
(the reference for the seeded documents and the bench's callbacks), one seeded order's
callback alone (credited once, then a repeat changing nothing), and the ledger after the loads
(no order credited twice).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from bench import caseseed as cs
from bench import filingseed as fs
from bench import payseed as ps
from bench.seed import SeedError, SignedIn, http_json

Db = Database[dict[str, Any]]
PAID_EVENT = "缴费"  # the case's timeline event of PaymentService._announce_paid
CHUNK = 100  # ids per $in: SecantusDB's $in costs more than linearly (1000 ids: ~2 s)


@dataclass(frozen=True)
class ApiPaid:
    """A fee paid through the API: its case, notice and payment as stored after the credit,
    and the transaction the emulator's callback carried (``/_emulator/pay/notifications``
    shows it decrypted; not the envelope)."""

    case: dict[str, Any]
    notice: dict[str, Any]
    payment: dict[str, Any]
    transaction: dict[str, Any]


def api_paid(api: str, emulator: str, litigant: fs.Filer, clerk: SignedIn, db: Db) -> ApiPaid:
    """A filing accepted through the API (its fee notice issued), ``POST /api/v1/payments``
    as the litigant, the payer's confirmation in the emulator, whose TRANSACTION.SUCCESS
    callbacks (the first and its repeat) must all have been answered 204."""
    case_id = cs.api_case(api, litigant, clerk, db)
    notice = db["fee_notices"].find_one({"case_id": case_id, "status": "pending"})
    if notice is None:
        raise SeedError(f"no pending fee notice for the API's case {case_id}")
    status, order = http_json(
        f"{api}/api/v1/payments", {"fee_notice_id": str(notice["_id"])}, fs.bearer(litigant.token)
    )
    if status != 201 or not order.get("pay_params"):
        raise SeedError(f"POST /api/v1/payments: HTTP {status} {order}")
    prepay_id = order["pay_params"]["package"].removeprefix("prepay_id=")
    status, body = http_json(f"{emulator}/_emulator/pay/confirm", {"prepay_id": prepay_id})
    if status != 200:
        raise SeedError(f"POST /_emulator/pay/confirm: HTTP {status} {body}")
    delivery = delivered(emulator, f"MC{order['payment_id']}")
    payment = db["payments"].find_one({"_id": ObjectId(order["payment_id"])}) or {}
    if payment.get("status") != "paid":
        raise SeedError(f"the API's payment is {payment.get('status')} after its callbacks")
    return ApiPaid(
        case=db["cases"].find_one({"_id": ObjectId(case_id)}) or {},
        notice=db["fee_notices"].find_one({"_id": notice["_id"]}) or {},
        payment=payment,
        transaction=delivery["resource"],
    )


def delivered(emulator: str, out_trade_no: str, timeout: float = 15) -> dict[str, Any]:
    """The emulator's TRANSACTION.SUCCESS for the order once it has made every attempt."""
    url = f"{emulator}/_emulator/pay/notifications?out_trade_no={out_trade_no}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = http_json(url)
        found = [
            n for n in body.get("notifications", []) if n["event_type"] == "TRANSACTION.SUCCESS"
        ]
        if found and found[0]["done"]:
            answers = [a["status"] for a in found[0]["attempts"]]
            if not answers or set(answers) != {204}:
                raise SeedError(f"the emulator's callbacks were answered {answers}")
            return dict(found[0])
        time.sleep(0.1)
    raise SeedError(f"the emulator's callback for {out_trade_no} not done in {timeout:.0f} s")


def check_shapes(api: ApiPaid, db: Db, order: ps.Order, resource: dict[str, Any]) -> None:
    """The seeded case, notice and order (credited by the bench's callback carrying
    ``resource``) have the keys and value types of the API's; the bench's transaction those
    of the emulator's."""
    pairs = [
        (api.case, db["cases"].find_one({"_id": order.case_id}), "case"),
        (api.notice, db["fee_notices"].find_one({"_id": order.notice_id}), "fee notice"),
        (api.payment, db["payments"].find_one({"_id": order.payment["_id"]}), "payment"),
        (api.transaction, resource, "callback's transaction"),
    ]
    problems = [
        f"{what}: {problem}" for theirs, ours, what in pairs
        for problem in fs.shape_diff(theirs, ours or {})
    ]  # fmt: skip
    if problems:
        raise SeedError("seeded payments differ from the API's: " + "; ".join(problems))


def post(api: str, keys: ps.PayKeys, body: str) -> float:
    """One callback delivered now, freshly signed; its seconds. SeedError unless 204."""
    signed = ps.sign(keys, body)
    began = time.perf_counter()
    status, answer = http_json(
        f"{api}{ps.NOTIFY_PATH}", headers=signed.headers(keys), raw=(body.encode(), "")
    )
    took = time.perf_counter() - began
    if status != 204:
        raise SeedError(f"POST {ps.NOTIFY_PATH}: HTTP {status} {answer}")
    return took


# ---- the ledger: every order credited at most once


@dataclass
class Ledger:
    """The seeded orders as the database has them."""

    paid: int = 0
    pending: int = 0
    versions: int = 0  # sum over payments, notices and cases: a no-op changes none
    paid_events: int = 0
    problems: list[str] = field(default_factory=list)

    def same_as(self, other: Ledger) -> bool:
        keys = ("paid", "pending", "versions", "paid_events")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    def summary(self) -> str:
        return f"{self.paid} credited, {self.pending} pending, {self.paid_events} 缴费 events"


def settled_ledger(db: Db, orders: list[ps.Order], limit: float = 120) -> Ledger:
    """The ledger once two readings a second apart agree: the server may still be running
    callbacks wrk gave up on, and one reading's three queries could straddle a commit."""
    began, last = time.monotonic(), ledger(db, orders)
    while time.monotonic() - began < limit:
        time.sleep(1)
        now = ledger(db, orders)
        if now.same_as(last) and now.problems == last.problems:
            return now
        last = now
    raise SeedError(f"the payments still changing {limit:.0f} s after the load")


def ledger(db: Db, orders: list[ps.Order]) -> Ledger:
    """Each order: paid with its notice credited exactly its amount and one 缴费 event on
    its case, or pending with nothing credited and no event; anything else is a problem."""
    out = Ledger()
    for start in range(0, len(orders), CHUNK):
        chunk = orders[start : start + CHUNK]
        payments = _by_id(db, "payments", [o.payment["_id"] for o in chunk], "status")
        notices = _by_id(
            db, "fee_notices", [o.notice_id for o in chunk], "amount_fen paid_fen status"
        )
        cases = _by_id(db, "cases", [o.case_id for o in chunk], "timeline.kind")
        for o in chunk:
            _tally(out, o, payments.get(o.payment["_id"]), notices.get(o.notice_id),
                   cases.get(o.case_id))  # fmt: skip
    return out


def credited_between(db: Db, orders: list[ps.Order], start: dt.datetime, end: dt.datetime) -> int:
    """Orders credited (``updated_at``, set by ``mark_paid``) from ``start`` to ``end``."""
    found = 0
    for i in range(0, len(orders), CHUNK):
        ids = [o.payment["_id"] for o in orders[i : i + CHUNK]]
        for doc in _by_id(db, "payments", ids, "status updated_at").values():
            found += doc["status"] == "paid" and start <= doc["updated_at"] <= end
    return found


def _by_id(db: Db, name: str, ids: list[ObjectId], fields: str) -> dict[ObjectId, Any]:
    projection = dict.fromkeys([*fields.split(), "version"], 1)
    return {d["_id"]: d for d in db[name].find({"_id": {"$in": ids}}, projection)}


def _tally(out: Ledger, order: ps.Order, payment: Any, notice: Any, case: Any) -> None:
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
