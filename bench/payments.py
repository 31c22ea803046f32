"""Fee payment: seeded orders, WeChat Pay's callbacks and the loads (README); the ledger they
are checked against is ``bench.ledger``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import cases as cs
from bench import paced, raw, seed, shapes
from bench.filing import Filings
from bench.ledger import CHUNK, PAID_EVENT, by_id, check_ledger, ledger
from bench.raw import round_fits, settle, wrk
from bench.stack import DATABASE, Stack
from miniapp_stubs.wechatpay_crypto import load_private
from miniapp_stubs.wechatpay_notify import envelope, signed_headers
from miniapp_stubs.wechatpay_state import Order as PayOrder
from miniapp_stubs.wechatpay_state import transaction_id
from models.fee_notices import FeeNoticeDoc, NoticeStatus
from models.payments import PaymentDoc, PaymentStatus
from models.users import Role
from server.cases.store import CaseStore
from server.fees.payments import PaymentService
from server.fees.store import FeeStore
from server.platform.audit import AuditLog
from server.platform.clock import SystemClock
from server.platform.db import PARALLEL_TRANSACTIONS, in_transaction
from server.wechat.pay_config import dev_public_key_id

if TYPE_CHECKING:
    from bench.run import Bench


Doc = dict[str, Any]
Docs = dict[str, Doc]  # case, notice, payment, transaction
Payer = tuple[str, str]  # user id, openid
NOTIFY_PATH = "/api/v1/payments/wechat/notify"
ORDER_MINUTES = 30  # wechatpay.order_expire_minutes
RECENT_DAYS = 3  # the seeded cases were accepted (and their notices issued) this recently
PAYERS = 1000  # seeded litigants who pay, round-robin
LEDGER = ("cases", "fee_notices", "payments")  # an order's documents, as inserted
FEE_FIELDS = ("fee_kind", "basis_amount_fen", "procedure", "full_fee_fen", "amount_fen")


@dataclass(frozen=True)
class PayKeys:
    """The emulator's development keys (from the server's data directory), the merchant's
    and app's ids (from a transaction the emulator ``sent``)."""

    platform_key: rsa.RSAPrivateKey
    key_id: str
    apiv3_key: str
    mchid: str
    appid: str

    @classmethod
    def of(cls, data_dir: Path, sent: dict[str, Any]) -> PayKeys:
        stored = json.loads((data_dir / "secrets.json").read_text())
        key = load_private(stored["wechatpay_platform_key"])
        ids = (sent["mchid"], sent["appid"])
        return cls(key, dev_public_key_id(key), stored["wechatpay_apiv3_key"], *ids)

    def transaction(self, payment: dict[str, Any], paid: dt.datetime) -> dict[str, Any]:
        """TRANSACTION.SUCCESS's resource for ``payment``, by the emulator's ``Order``."""
        request = {"appid": self.appid, "out_trade_no": payment["out_trade_no"], "attach": ""}
        request |= {"amount": {"total": payment["amount_fen"]}, "openid": payment["payer_openid"]}
        at = paid.timestamp()
        order = PayOrder(self.mchid, request, at, at, "", at, "SUCCESS", transaction_id(at), at)
        return order.as_json()

    def callback(self, resource: dict[str, Any], now: dt.datetime) -> str:
        """The notification's JSON body, by the emulator's ``envelope``."""
        kind, at = "TRANSACTION.SUCCESS", now.timestamp()
        return envelope(self.apiv3_key, kind, resource, at, str(uuid.uuid4()))

    def headers(self, body: str) -> dict[str, str]:
        """A delivery of ``body`` now, by the emulator's ``signed_headers``."""
        signed = signed_headers(self.platform_key, self.key_id, body, time.time())
        return {"Content-Type": "application/json", **signed}

    def line(self, body: str) -> str:
        """One line of notify.lua's file, signed now (a JSON body holds no tab, no newline)."""
        h = self.headers(body)
        parts = ("Timestamp", "Nonce", "Signature")
        return "\t".join([*(h[f"Wechatpay-{p}"] for p in parts), body]) + "\n"


@dataclass
class Order:
    payment: dict[str, Any]
    notice_id: ObjectId
    case_id: ObjectId


@dataclass
class PaySeeder:
    """Inserts cases, notices and orders in batches; ``orders`` in insertion order."""

    db: seed.Db
    cipher: shapes.Cipher
    fees: dict[str, Any]  # the API's notice: amounts and breakdown
    court_name: str
    staff_id: str
    orders: list[Order] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def insert(self, count: int) -> None:
        now, numbers = dt.datetime.now(dt.UTC), cs.case_numbers(self.db)
        found = self.db["users"].find({"role": "litigant"}, {"openid": 1}).limit(PAYERS)
        payers = [(str(d["_id"]), d["openid"]) for d in found if d.get("openid")]
        made = [self._order(now, numbers, payers[i % len(payers)]) for i in range(count)]
        for name, docs in zip(LEDGER, zip(*made, strict=True), strict=True):
            seed.insert_batches(self.db[name], docs)
        numbers.commit()
        self.orders += [Order(p, n["_id"], c["_id"]) for c, n, p in made]

    def _order(self, now: dt.datetime, numbers: seed.Numbers, payer: Payer) -> tuple[Doc, Doc, Doc]:
        rng = self.rng
        at = now - dt.timedelta(seconds=rng.uniform(600, RECENT_DAYS * 86400))
        plaintiff, procedure = (shapes.person(rng), payer[0]), self.fees["procedure"]
        case = cs.case_doc(self.cipher, rng, numbers, at, plaintiff, self.staff_id, procedure)
        case["amount_fen"] = self.fees["basis_amount_fen"]
        notice = self.notice(case, payer[0], at)
        ordered = now - dt.timedelta(seconds=rng.uniform(0, 60))
        return case, notice, self.payment(notice, payer, ordered)

    def notice(self, case: Doc, payer_id: str, issued: dt.datetime) -> Doc:
        """``FeeNoticeService.issue``'s document, the amounts of ``fees`` (the API's notice)."""
        return FeeNoticeDoc(
            id=ObjectId(),
            case_id=str(case["_id"]),
            **{k: case[k] for k in ("case_no", "court_id")},
            **{k: self.fees[k] for k in FEE_FIELDS},
            breakdown=self.fees["breakdown"],
            status=NoticeStatus.pending,
            payer_ids=[payer_id],
            issued_at=issued,
            due_at=shapes.review_deadline(issued, shapes.court().deadlines.fee_due_days),
        ).model_dump(by_alias=True)

    def payment(self, notice: Doc, payer: Payer, made: dt.datetime) -> Doc:
        """``PaymentService.create``'s document (with ``open_for`` and the prepay_id)."""
        oid = ObjectId()
        stamp = made.astimezone(shapes.SHANGHAI).strftime("%Y%m%d%H%M%S")
        doc = PaymentDoc(
            id=oid,
            out_trade_no=f"MC{oid}",
            fee_notice_id=str(notice["_id"]),
            **{k: notice[k] for k in ("case_id", "case_no", "court_id")},
            payer_id=payer[0],
            payer_openid=payer[1],
            amount_fen=notice["amount_fen"] - notice["paid_fen"],
            description=f"{self.court_name}诉讼费-{notice['case_no']}"[:120],
            status=PaymentStatus.pending,
            prepay_id=f"wx{stamp}{secrets.token_hex(10)}",
            expires_at=made + dt.timedelta(minutes=ORDER_MINUTES),
            **dict.fromkeys(("created_at", "updated_at"), made),
        )
        return {**doc.model_dump(by_alias=True), "open_for": str(notice["_id"])}


KEYS = {
    "POST notify first": "notify_first",
    "raw notify first": "raw_notify_first",
    "POST notify repeat": "notify_repeat",
}
REPEATS = 2000  # most credited orders the repeat load cycles through
SERIAL = 20  # callbacks of a row measured one at a time
INSTEAD = f"one callback at a time instead, {SERIAL} callbacks (requests/s = 1 / mean latency)"


def run_payments(bench: Bench, stack: Stack, filings: Filings) -> None:
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("pay one fee through the API and the emulator's callback"):
            api = api_paid(stack, filings, db)
        keys = PayKeys.of(stack.data_dir, api["transaction"])
        # the court's name, as the API's order describes itself ({court}诉讼费-{case_no})
        court = str(api["payment"]["description"]).rsplit("诉讼费-", 1)[0]
        seeder = PaySeeder(db, stack.cipher, api["notice"], court, filings.clerk.user_id)
        o = bench.opts  # orders for the first-delivery warm-up and load: at --pay-cap a second
        warm, measured = (o.pay_cap * s + o.connections for s in (o.warmup, o.duration))
        both = 1 + 2 * (warm + measured)  # the API's and the raw row's, then the peak row's
        with bench.inserting(both + paced.count(bench), "cases, fee notices and pending orders"):
            seeder.insert(both + paced.count(bench))
        with bench.stage("check one seeded callback: 204, credited once; again: 204, no change"):
            lone = check_one(bench, stack.api, keys, db, (api, seeder.orders[0]))
        bench.note(f"one callback alone: first {lone[0]:.3f} s, repeat {lone[1]:.3f} s")
        command = {"find": "payments", "filter": {"out_trade_no": "MC0"}, "limit": 1}
        seed.check_plan(bench, db, "the callback's order lookup", command)
        calls, rest = Callbacks(bench, stack.api, keys), seeder.orders[1:]
        api_orders, raw_orders = rest[: warm + measured], rest[warm + measured : both - 1]
        pool, began = first_delivery(calls, (api_orders[:warm], api_orders[warm:]), lone[0])
        settle(bench, "the first-delivery callbacks")
        raw_first(bench, (raw_orders[:warm], raw_orders[warm:]), serial=began is None)
        settle(bench, "the raw first deliveries")
        at_peak(calls, seeder.orders[both:])
        first = bench.results[KEYS["POST notify first"]]
        before = check_ledger(bench, db, seeder.orders, "first deliveries", (pool, first))
        if began is not None:
            credited_in_window(bench, db, pool, began)
        repeat(calls, db, lone[1])
        settle(bench, "the repeated callbacks")
        after = check_ledger(bench, db, seeder.orders, "repeats", None)
        with bench.stage("check: the repeated callbacks changed nothing"):
            if after != before:
                raise seed.SeedError(f"before {before.summary()}; after {after.summary()}")
            audits = db["audit"].count_documents({"action": "payment.paid"})
            paid = db["payments"].count_documents({"status": "paid"})  # the API's one too
            if audits != paid:
                raise seed.SeedError(f"{paid} payments paid, {audits} payment.paid audit entries")
    bench.fact("payments", {"orders": len(seeder.orders), "credited": after.paid})


def check_one(
    bench: Bench, api_url: str, keys: PayKeys, db: seed.Db, pair: tuple[Docs, Order]
) -> tuple[float, float]:
    """One seeded callback twice (credited once, then nothing); the seconds of each."""
    api, order = pair
    resource = keys.transaction(order.payment, dt.datetime.now(dt.UTC))
    body = keys.callback(resource, dt.datetime.now(dt.UTC))
    first = post(api_url, keys, body)
    once = ledger(db, [order])
    if once.paid != 1 or once.problems:
        raise seed.SeedError(f"after one callback: {once.summary()} {once.problems}")
    ids = (order.case_id, order.notice_id, order.payment["_id"])
    ours = [db[c].find_one({"_id": i}) for c, i in zip(LEDGER, ids, strict=True)] + [resource]
    seed.check_shapes("payments", [(api[k], d, k) for k, d in zip(api, ours, strict=True)])
    again = post(api_url, keys, body)
    if ledger(db, [order]) != once:
        raise seed.SeedError("a repeated callback changed the order")
    bench.fact("notify alone (s)", {"first": first, "repeat": again})
    return first, again


@dataclass
class Callbacks:
    """Each order's callback body (signed afresh at each delivery), in the order first sent."""

    bench: Bench
    api: str
    keys: PayKeys
    bodies: dict[str, str] = field(default_factory=dict)

    def body(self, order: Order) -> str:
        number = order.payment["out_trade_no"]
        if number not in self.bodies:
            now = dt.datetime.now(dt.UTC)
            self.bodies[number] = self.keys.callback(self.keys.transaction(order.payment, now), now)
        return self.bodies[number]

    def write(self, name: str, bodies: list[str]) -> str:
        path = self.bench.workdir / f"callbacks-{name}.txt"
        path.write_text("".join(self.keys.line(b) for b in bodies), encoding="utf-8")
        return str(path)

    def wrk(self, path: str, seconds: int, mode: str) -> raw.WrkRun:
        args = (path, str(self.bench.opts.threads), self.keys.key_id, mode)
        return wrk(self.bench, "notify.lua", args, seconds)

    def serially(self, name: str, bodies: list[str]) -> None:
        try:
            took = sorted(post(self.api, self.keys, b) for b in bodies)
        except seed.SeedError as e:
            self.bench.record(raw.LoadResult(name, problem=str(e)), KEYS[name])
            return
        self.bench.record(raw.result(name, raw.Tally(took), sum(took)), KEYS[name])


def first_delivery(
    calls: Callbacks, pools: tuple[list[Order], list[Order]], lone: float
) -> tuple[list[Order], dt.datetime | None]:
    """wrk over the warm-up's orders, then the load's (or SERIAL serially); those, and when."""
    bench, name = calls.bench, "POST notify first"
    if not round_fits(bench, name, lone, INSTEAD, at_once=PARALLEL_TRANSACTIONS):
        calls.serially(name, [calls.body(o) for o in pools[1][:SERIAL]])
        return pools[1][:SERIAL], None
    o = bench.opts
    warm = calls.wrk(calls.write("warm", [calls.body(x) for x in pools[0]]), o.warmup, "once")
    measured = calls.wrk(str(bench.workdir / "callbacks-measured.txt"), o.duration, "once")
    started: list[dt.datetime] = []

    def warm_up() -> None:  # then the load's callbacks, signed now (±5 minutes allowed)
        warm.run(name, calls.api, 0)
        settle(bench, "the first-delivery warm-up")
        calls.write("measured", [calls.body(x) for x in pools[1]])
        started.append(dt.datetime.now(dt.UTC))

    bench.record_wrk(measured, name, calls.api, KEYS[name], warm_up)
    return pools[1], started[0] if started else None


def at_peak(calls: Callbacks, orders: list[Order]) -> None:
    """First deliveries at the national peak's rate (``bench.paced``), each signed now."""
    signed = [(b.encode(), calls.keys.headers(b)) for b in map(calls.body, orders)]
    name = f"POST notify first {calls.bench.opts.peak_rate}/s"
    url = f"{calls.api}{NOTIFY_PATH}"
    paced.run(calls.bench, paced.Peak(name, "notify_peak", url, signed.__getitem__, 204))


def raw_first(bench: Bench, pools: tuple[list[Order], list[Order]], serial: bool) -> None:
    """The first delivery's raw row, on orders of its own: as the API's row, loaded (a
    warm-up, then the load) or ``SERIAL`` one at a time."""
    name = "raw notify first"
    if serial:
        numbers = [o.payment["out_trade_no"] for o in pools[1][:SERIAL]]
        took = sorted(asyncio.run(_one_by_one(bench.db_uri, numbers)))
        bench.record(raw.result(name, raw.Tally(took), sum(took)), KEYS[name])
        return
    queues = {"warmup": iter(pools[0]), "measured": iter(pools[1])}

    def ops(db: raw.Db, phase: str) -> raw.Op:
        orders = queues[phase]

        async def op() -> bool:
            order = next(orders, None)
            if order is None:
                raise raw.Exhausted()
            return await credit(db, order.payment["out_trade_no"])

        return op

    bench.record_raw(name, KEYS[name], ops)


async def _one_by_one(uri: str, numbers: list[str]) -> list[float]:
    took = []
    async with raw.connect(uri) as client:
        for number in numbers:
            began = time.perf_counter()
            if not await credit(client[DATABASE], number):
                raise seed.SeedError(f"raw notify first: {number} not credited")
            took.append(time.perf_counter() - began)
    return took


async def credit(db: raw.Db, number: str) -> bool:
    """``PaymentService.on_notify``'s database calls once the callback is verified and
    decrypted: the order by its number, then ``mark_paid``'s transaction (the payment, the
    notice, the case's event, the clerks when the case has none, both notices, the audit)."""
    fees, now = FeeStore(db), dt.datetime.now(dt.UTC)
    paid_as = transaction_id(now.timestamp())
    doc = await fees.payments.by_trade_no(number)
    if doc is None:
        return False

    async def work(session: raw.Session) -> bool:
        if not await fees.payments.mark_paid(doc, paid_as, now, now, session):
            return False
        notice = await fees.notices.credit(doc.fee_notice_id, doc.amount_fen, now, session)
        note, notifier = PaymentService.paid_note(doc), raw.notifier(db)
        changes = {"fee_overdue": False} if notice.status == "paid" else {}
        event = {"at": now, "kind": PAID_EVENT, "by": doc.payer_id, "note": note}
        case = await CaseStore(db).add_event(ObjectId(doc.case_id), [event], changes, {}, session)
        clerks = [case.clerk_id] if case and case.clerk_id else []
        if not clerks:
            clerks = await notifier.court_staff(doc.court_id, [Role.clerk.value], session=session)
        await notifier.notify_many(PaymentService.paid_notices(doc, clerks, note), session=session)
        audit = AuditLog(db, SystemClock())
        details = {"case_id": doc.case_id, "amount_fen": doc.amount_fen}
        await audit.record(doc.payer_id, "payment.paid", str(doc.id), session, **details)
        return True

    return await in_transaction(db, work)


def credited_in_window(bench: Bench, db: seed.Db, pool: list[Order], began: dt.datetime) -> None:
    seconds, found = bench.opts.duration, 0
    end = began + dt.timedelta(seconds=seconds)
    for i in range(0, len(pool), CHUNK):
        ids = [o.payment["_id"] for o in pool[i : i + CHUNK]]
        for doc in by_id(db, "payments", ids, "status updated_at").values():
            found += doc["status"] == "paid" and began <= doc["updated_at"] <= end
    answered = bench.results[KEYS["POST notify first"]].requests
    bench.fact("notify first credited while wrk ran", found)
    bench.note(
        f"POST notify first: the server credited {found} orders while wrk ran "
        f"({found / seconds:.1f}/s); wrk counted {answered} answers"
    )


def repeat(calls: Callbacks, db: seed.Db, lone: float) -> None:
    bench, name = calls.bench, "POST notify repeat"
    paid = {d["out_trade_no"] for d in db["payments"].find({"status": "paid"}, {"out_trade_no": 1})}
    bodies = [b for number, b in calls.bodies.items() if number in paid][:REPEATS]
    if not bodies:
        bench.record(raw.LoadResult(name, problem="no order was credited"), KEYS[name])
    elif not round_fits(bench, name, lone, INSTEAD, at_once=PARALLEL_TRANSACTIONS):
        calls.serially(name, (bodies * SERIAL)[:SERIAL])
    else:
        run = calls.wrk(calls.write("repeat", bodies), bench.opts.duration, "cycle")
        bench.record_wrk(run, name, calls.api, KEYS[name])


def api_paid(stack: Stack, filings: Filings, db: seed.Db) -> Docs:
    """A fee paid through the API: case, notice, payment, the callback's transaction."""
    api, emulator, litigant = stack.api, stack.emulator, filings.filers[0]
    case_id = cs.api_case(api, litigant, filings.clerk, db)
    notice = db["fee_notices"].find_one({"case_id": case_id, "status": "pending"})
    if notice is None:
        raise seed.SeedError(f"no pending fee notice for the API's case {case_id}")
    body = {"fee_notice_id": str(notice["_id"])}
    order = seed.call(f"{api}/api/v1/payments", body, litigant.token, status=201)
    prepay_id = order["pay_params"]["package"].removeprefix("prepay_id=")
    seed.call(f"{emulator}/_emulator/pay/confirm", {"prepay_id": prepay_id})
    delivery = delivered(emulator, f"MC{order['payment_id']}")
    payment = db["payments"].find_one({"_id": ObjectId(order["payment_id"])}) or {}
    if payment.get("status") != "paid":
        raise seed.SeedError(f"the API's payment is {payment.get('status')} after its callbacks")
    case = db["cases"].find_one({"_id": ObjectId(case_id)}) or {}
    notice = db["fee_notices"].find_one({"_id": notice["_id"]}) or {}
    return {"case": case, "notice": notice, "payment": payment, "transaction": delivery["resource"]}


def delivered(emulator: str, out_trade_no: str, timeout: float = 15) -> dict[str, Any]:
    """The emulator's TRANSACTION.SUCCESS once done; every attempt must have had a 204."""
    url = f"{emulator}/_emulator/pay/notifications?out_trade_no={out_trade_no}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = seed.call(url).get("notifications", [])
        found = [n for n in sent if n["event_type"] == "TRANSACTION.SUCCESS"]
        if found and found[0]["done"]:
            answers = [a["status"] for a in found[0]["attempts"]]
            if not answers or set(answers) != {204}:
                raise seed.SeedError(f"the emulator's callbacks were answered {answers}")
            return dict(found[0])
        time.sleep(0.1)
    raise seed.SeedError(f"the emulator's callback for {out_trade_no} not done in {timeout:.0f} s")


def post(api: str, keys: PayKeys, body: str) -> float:
    """One callback delivered now, freshly signed; its seconds. SeedError unless 204."""
    began = time.perf_counter()
    seed.call(f"{api}{NOTIFY_PATH}", body.encode(), headers=keys.headers(body), status=204)
    return time.perf_counter() - began
