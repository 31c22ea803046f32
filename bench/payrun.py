"""The fee-payment part of the run: WeChat Pay's payment callbacks,
``POST /api/v1/payments/wechat/notify``, signature check and decryption included.

One fee is paid through the API and the emulator's own callback (the reference); then
``--pay-cap`` orders a second are seeded (cases, fee notices, pending orders), one seeded
callback is checked alone, and two loads run with wrk and ``notify.lua``:

- **first delivery**: every callback credits an order of its own (the transaction:
  payment, notice, the case's 缴费 event, the payer's and the clerk's notices, the audit);
- **repeat**: the orders just credited, delivered again round and round (as WeChat Pay
  repeats them): verify, decrypt, the order's lookup and a conditional update matching none.

After each load, the ledger: every order credited at most once, its notice paid exactly its
amount, one 缴费 event; the repeats changed nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.database import Database

from bench import caseseed as cs
from bench import filingseed as fs
from bench import payseed as ps
from bench import raw, shapes
from bench.filingrun import Filings
from bench.loadgen import LoadResult, WrkRun
from bench.pairs import client, round_fits, settle, wrk
from bench.seed import SeedError, SignedIn, call, explain
from bench.seed import check_shapes as check_shapes_of
from bench.stack import DATABASE, Stack

if TYPE_CHECKING:
    from bench.run import Bench

KEYS = {"POST notify first": "notify_first", "POST notify repeat": "notify_repeat"}
REPEATS = 2000  # most credited orders the repeat load cycles through
SERIAL = 20  # callbacks of a row measured one at a time
INSTEAD = f"one callback at a time instead, {SERIAL} callbacks (requests/s = 1 / mean latency)"


def run_payments(bench: Bench, stack: Stack, filings: Filings) -> None:
    keys = ps.PayKeys.from_data_dir(stack.data_dir)
    with client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("pay one fee through the API and the emulator's callback"):
            api = api_paid(stack.api, stack.emulator, filings.filers[0], filings.clerk, db)
        keys = replace(keys, mchid=api.transaction["mchid"], appid=api.transaction["appid"])
        cipher = shapes.Cipher(stack.keys.data_key, stack.keys.hash_key.encode())
        # the court's name, as the API's order describes itself ({court}诉讼费-{case_no})
        court = str(api.payment["description"]).rsplit("诉讼费-", 1)[0]
        seeder = ps.PaySeeder(db, cipher, api.notice, court, filings.clerk.user_id)
        o = bench.opts  # orders for the first-delivery warm-up and load: at --pay-cap a second
        warm, measured = (o.pay_cap * s + o.connections for s in (o.warmup, o.duration))
        seed_orders(bench, seeder, 1 + warm + measured)
        with bench.stage("check one seeded callback: 204, credited once; again: 204, no change"):
            lone = check_one(bench, stack.api, keys, db, (api, seeder.orders[0]))
        bench.note(
            f"one callback alone: first delivery {lone[0] * 1000:.0f} ms, repeat "
            f"{lone[1] * 1000:.0f} ms"
        )
        explain_lookup(bench, db)
        calls = Callbacks(bench, stack.api, keys)
        rest = seeder.orders[1:]
        pool, began = first_delivery(calls, (rest[:warm], rest[warm:]), lone[0])
        settle(bench, "the first-delivery callbacks")
        first = bench.results[KEYS["POST notify first"]]
        before = check_ledger(bench, db, seeder.orders, "first deliveries", (pool, first))
        if began is not None:
            credited_in_window(bench, db, pool, began)
        repeat(calls, db, lone[1])
        settle(bench, "the repeated callbacks")
        after = check_ledger(bench, db, seeder.orders, "repeats", None)
        with bench.stage("check: the repeated callbacks changed nothing"):
            check_unchanged(db, before, after)
    bench.fact(
        "payments",
        {"orders": len(seeder.orders), "seconds": round(seeder.seconds, 1), "credited": after.paid},
    )


def seed_orders(bench: Bench, seeder: ps.PaySeeder, count: int) -> None:
    with bench.stage(f"insert {count} cases, fee notices and pending orders"):
        seeder.insert(count)
    bench.note(
        f"seeded {len(seeder.orders)} cases, each with a fee notice and a pending order of "
        f"{seeder.fees['amount_fen']} fen, in {seeder.seconds:.1f} s"
    )


def explain_lookup(bench: Bench, db: Db) -> None:
    with bench.stage("explain the callback's order lookup: IXSCAN"):
        plan = explain(db, {"find": "payments", "filter": {"out_trade_no": "MC0"}, "limit": 1})
        bench.fact("order lookup plan", plan)
        bench.note(f"the callback's order lookup: {plan}")
        if "IXSCAN" not in plan:  # without an index every callback reads every order
            raise SeedError(f"the callback's order lookup uses no index: {plan}")


def check_unchanged(db: Db, before: Ledger, after: Ledger) -> None:
    """The repeats left the ledger as it was, and each payment has one audit entry."""
    if not after.same_as(before):
        raise SeedError(f"before {before.summary()}; after {after.summary()}")
    audits = db["audit"].count_documents({"action": "payment.paid"})
    paid = db["payments"].count_documents({"status": "paid"})
    if audits != paid:
        raise SeedError(f"{paid} payments paid, {audits} payment.paid audit entries")


def check_one(
    bench: Bench, api_url: str, keys: ps.PayKeys, db: Any, pair: tuple[ApiPaid, ps.Order]
) -> tuple[float, float]:
    """A seeded order's callback: 204 and credited once (with the shapes the API writes);
    the same callback again (signed afresh): 204 and nothing changed. The seconds of each."""
    api, order = pair
    resource = keys.transaction(order.payment, dt.datetime.now(dt.UTC))
    body = keys.callback(resource, dt.datetime.now(dt.UTC))
    first = post(api_url, keys, body)
    once = ledger(db, [order])
    if once.paid != 1 or once.problems:
        raise SeedError(f"after one callback: {once.summary()} {once.problems}")
    check_shapes(api, db, order, resource)
    again = post(api_url, keys, body)
    twice = ledger(db, [order])
    if not twice.same_as(once):
        raise SeedError(f"a repeated callback changed the order: {twice.summary()}")
    bench.fact("notify alone (s)", {"first": first, "repeat": again})
    return first, again


# ---- the loads


@dataclass
class Callbacks:
    """The callbacks sent so far: each order's body (one notification, delivered again
    as it is, signed afresh each time), in the order first sent."""

    bench: Bench
    api: str
    keys: ps.PayKeys
    bodies: dict[str, str] = field(default_factory=dict)

    def body(self, order: ps.Order) -> str:
        number = order.payment["out_trade_no"]
        if number not in self.bodies:
            now = dt.datetime.now(dt.UTC)
            self.bodies[number] = self.keys.callback(self.keys.transaction(order.payment, now), now)
        return self.bodies[number]

    def write(self, name: str, bodies: list[str]) -> str:
        """``notify.lua``'s file of ``bodies``, each signed now."""
        path = self.bench.workdir / f"callbacks-{name}.txt"
        with path.open("w", encoding="utf-8") as out:
            out.writelines(self.keys.line(b) for b in bodies)
        return str(path)

    def wrk(self, path: str, seconds: int, mode: str) -> WrkRun:
        args = (path, str(self.bench.opts.threads), self.keys.key_id, mode)
        return wrk(self.bench, "notify.lua", args, seconds)

    def serially(self, name: str, bodies: list[str]) -> None:
        """The row from ``bodies`` posted one at a time (requests/s = 1 / mean latency)."""
        try:
            took = sorted(post(self.api, self.keys, b) for b in bodies)
        except SeedError as e:
            self.bench.record(LoadResult(name, problem=str(e)), KEYS[name])
            return
        self.bench.record(raw.result(name, raw.Tally(took), sum(took)), KEYS[name])


def first_delivery(
    calls: Callbacks, pools: tuple[list[ps.Order], list[ps.Order]], lone: float
) -> tuple[list[ps.Order], dt.datetime | None]:
    """Each callback once, crediting its order: wrk over the warm-up's orders, then (once
    the server has finished them) the load's; or ``SERIAL`` of them one at a time. The
    orders of the measured part, and when wrk started on them."""
    bench, name = calls.bench, "POST notify first"
    if not round_fits(bench, name, lone, INSTEAD):
        calls.serially(name, [calls.body(o) for o in pools[1][:SERIAL]])
        return pools[1][:SERIAL], None
    o = bench.opts
    warm = calls.wrk(calls.write("warm", [calls.body(x) for x in pools[0]]), o.warmup, "once")
    measured = calls.wrk(str(bench.workdir / "callbacks-measured.txt"), o.duration, "once")
    started: list[dt.datetime] = []

    def between() -> None:
        """The warm-up's callbacks still running would share the load; and the load's are
        signed now, as the server allows five minutes."""
        settle(bench, "the first-delivery warm-up")
        began = time.perf_counter()
        calls.write("measured", [calls.body(x) for x in pools[1]])
        took = time.perf_counter() - began
        bench.note(f"built and signed {len(pools[1])} first-delivery callbacks in {took:.1f} s")
        started.append(dt.datetime.now(dt.UTC))

    bench.record_wrk(measured, name, calls.api, KEYS[name], warm, between)
    return pools[1], started[0] if started else None


def credited_in_window(bench: Bench, db: Any, pool: list[ps.Order], began: dt.datetime) -> None:
    """How many of the load's orders the server credited (by its ``updated_at``) while wrk
    ran: wrk counts only answers within the load, and when every callback takes seconds, the
    answers come in rounds."""
    seconds = bench.opts.duration
    found = credited_between(db, pool, began, began + dt.timedelta(seconds=seconds))
    answered = bench.results[KEYS["POST notify first"]].requests
    bench.fact("notify first credited while wrk ran", found)
    bench.note(
        f"POST notify first: the server credited {found} orders while wrk ran "
        f"({found / seconds:.1f}/s); wrk counted {answered} answers"
    )


def repeat(calls: Callbacks, db: Any, lone: float) -> None:
    """The callbacks of orders already credited, again, each signed afresh: wrk cycling
    through up to ``REPEATS`` of them, or ``SERIAL`` one at a time."""
    bench, name = calls.bench, "POST notify repeat"
    paid = {d["out_trade_no"] for d in db["payments"].find({"status": "paid"}, {"out_trade_no": 1})}
    bodies = [b for number, b in calls.bodies.items() if number in paid][:REPEATS]
    if not bodies:
        bench.record(LoadResult(name, problem="no order was credited"), KEYS[name])
        return
    if not round_fits(bench, name, lone, INSTEAD):
        calls.serially(name, (bodies * SERIAL)[:SERIAL])
        return
    bench.note(f"repeat load: {len(bodies)} credited orders, each callback signed afresh")
    run = calls.wrk(calls.write("repeat", bodies), bench.opts.duration, "cycle")
    bench.record_wrk(run, name, calls.api, KEYS[name])


def check_ledger(
    bench: Bench,
    db: Any,
    orders: list[ps.Order],
    after: str,
    load: tuple[list[ps.Order], LoadResult] | None,
) -> Ledger:
    """Every seeded order credited at most once; with ``load`` (its orders and result), at
    least as many of those orders credited as answers were counted."""
    with bench.stage(f"check after the {after}: no order credited twice"):
        found = settled_ledger(db, orders)
        if found.problems:
            raise SeedError(f"{len(found.problems)} orders wrong: {found.problems[:3]}")
        if load is not None and load[1].ok:
            credited = ledger(db, load[0]).paid
            if credited < load[1].requests:
                raise SeedError(f"{load[1].requests} callbacks answered, {credited} credited")
    bench.note(f"after the {after}: {found.summary()}")
    return found


# ---- what the payment rows check: one fee paid through the API and the emulator's own
# callback (the reference for the seeded documents and the bench's callbacks), and the ledger


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
    body = {"fee_notice_id": str(notice["_id"])}
    order = call(f"{api}/api/v1/payments", body, litigant.token, status=201)
    prepay_id = order["pay_params"]["package"].removeprefix("prepay_id=")
    call(f"{emulator}/_emulator/pay/confirm", {"prepay_id": prepay_id})
    delivery = delivered(emulator, f"MC{order['payment_id']}")
    payment = db["payments"].find_one({"_id": ObjectId(order["payment_id"])}) or {}
    if payment.get("status") != "paid":
        raise SeedError(f"the API's payment is {payment.get('status')} after its callbacks")
    case = db["cases"].find_one({"_id": ObjectId(case_id)}) or {}
    notice = db["fee_notices"].find_one({"_id": notice["_id"]}) or {}
    return ApiPaid(case, notice, payment, delivery["resource"])


def delivered(emulator: str, out_trade_no: str, timeout: float = 15) -> dict[str, Any]:
    """The emulator's TRANSACTION.SUCCESS for the order once it has made every attempt."""
    url = f"{emulator}/_emulator/pay/notifications?out_trade_no={out_trade_no}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            n
            for n in call(url).get("notifications", [])
            if n["event_type"] == "TRANSACTION.SUCCESS"
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
    check_shapes_of(
        "payments",
        [
            (api.case, db["cases"].find_one({"_id": order.case_id}), "case"),
            (api.notice, db["fee_notices"].find_one({"_id": order.notice_id}), "fee notice"),
            (api.payment, db["payments"].find_one({"_id": order.payment["_id"]}), "payment"),
            (api.transaction, resource, "callback's transaction"),
        ],
    )


def post(api: str, keys: ps.PayKeys, body: str) -> float:
    """One callback delivered now, freshly signed; its seconds. SeedError unless 204."""
    began = time.perf_counter()
    call(f"{api}{ps.NOTIFY_PATH}", headers=keys.headers(body), raw=(body.encode(), ""), status=204)
    return time.perf_counter() - began


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
            _tally(
                out,
                o,
                payments.get(o.payment["_id"]),
                notices.get(o.notice_id),
                cases.get(o.case_id),
            )
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
