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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import caseseed as cs
from bench import filingseed as fs
from bench import payseed as ps
from bench import raw, shapes
from bench.filingrun import WRK_TIMEOUT, Filings, settle
from bench.loadgen import LoadResult, WrkRun
from bench.paycheck import (
    ApiPaid,
    Ledger,
    api_paid,
    check_shapes,
    credited_between,
    ledger,
    post,
    settled_ledger,
)
from bench.seed import SeedError
from bench.stack import DATABASE, Stack

if TYPE_CHECKING:
    from bench.run import Bench

BENCH = Path(__file__).resolve().parent
KEYS = {"POST notify first": "notify_first", "POST notify repeat": "notify_repeat"}
REPEATS = 2000  # most credited orders the repeat load cycles through
SERIAL = 20  # callbacks of a row measured one at a time


def run_payments(bench: Bench, stack: Stack, filings: Filings) -> None:
    keys = ps.PayKeys.from_data_dir(stack.data_dir)
    with fs.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("pay one fee through the API and the emulator's callback"):
            api = api_paid(stack.api, stack.emulator, filings.filers[0], filings.clerk, db)
        keys = replace(keys, mchid=api.transaction["mchid"], appid=api.transaction["appid"])
        cipher = shapes.Cipher(stack.keys.data_key, stack.keys.hash_key.encode())
        seeder = seed(bench, ps.PaySeeder(db, cipher, api.notice, court_name(api),
                                          filings.clerk.user_id))  # fmt: skip
        with bench.stage("check one seeded callback: 204, credited once; again: 204, no change"):
            lone = check_one(bench, stack.api, keys, db, (api, seeder.orders[0]))
        bench.note(
            f"one callback alone: first delivery {lone[0] * 1000:.0f} ms, repeat "
            f"{lone[1] * 1000:.0f} ms"
        )
        with bench.stage("explain the callback's order lookup: IXSCAN"):
            explain(bench, db)
        calls = Callbacks(
            bench, stack.api, keys, lambda after: settle(bench, stack, filings, after)
        )
        pool, began = first_delivery(calls, pools(bench, seeder), lone[0])
        calls.quiet("the first-delivery callbacks")
        first = bench.results[KEYS["POST notify first"]]
        before = check_ledger(bench, db, seeder.orders, "first deliveries", (pool, first))
        if began is not None:
            credited_in_window(bench, db, pool, began)
        repeat(calls, db, lone[1])
        settle(bench, stack, filings, "the repeated callbacks")
        after = check_ledger(bench, db, seeder.orders, "repeats", None)
        check_unchanged(bench, db, before, after)
    bench.fact("payments", {"orders": len(seeder.orders), "seconds": round(seeder.seconds, 1),
                            "credited": after.paid})  # fmt: skip


def check_unchanged(bench: Bench, db: Any, before: Ledger, after: Ledger) -> None:
    with bench.stage("check: the repeated callbacks changed nothing"):
        if not after.same_as(before):
            raise SeedError(f"before {before.summary()}; after {after.summary()}")
        audits = db["audit"].count_documents({"action": "payment.paid"})
        paid = db["payments"].count_documents({"status": "paid"})
        if audits != paid:
            raise SeedError(f"{paid} payments paid, {audits} payment.paid audit entries")


def court_name(api: ApiPaid) -> str:
    """The court's name, as the API's order describes itself (``{court}诉讼费-{case_no}``)."""
    return str(api.payment["description"]).rsplit("诉讼费-", 1)[0]


def seed(bench: Bench, seeder: ps.PaySeeder) -> ps.PaySeeder:
    o = bench.opts
    count = 1 + sum(pool_sizes(o.pay_cap, o.warmup, o.duration, o.connections))
    with bench.stage(f"insert {count} cases, fee notices and pending orders with pymongo"):
        seeder.insert(count)
    bench.note(
        f"seeded {count} cases, each with a fee notice and a pending order of "
        f"{seeder.fees['amount_fen']} fen, in {seeder.seconds:.1f} s"
    )
    return seeder


def pool_sizes(cap: int, warmup: int, duration: int, connections: int) -> tuple[int, int]:
    """Orders for the first-delivery warm-up and load: the most credited at ``cap`` a second."""
    return cap * warmup + connections, cap * duration + connections


def pools(bench: Bench, seeder: ps.PaySeeder) -> tuple[list[ps.Order], list[ps.Order]]:
    o = bench.opts
    warm, _ = pool_sizes(o.pay_cap, o.warmup, o.duration, o.connections)
    rest = seeder.orders[1:]
    return rest[:warm], rest[warm:]


def check_one(
    bench: Bench, api_url: str, keys: ps.PayKeys, db: Any, pair: tuple[ApiPaid, ps.Order]
) -> tuple[float, float]:
    """A seeded order's callback: 204 and credited once (with the shapes the API writes);
    the same callback again (signed afresh): 204 and nothing changed. The seconds of each."""
    api, order = pair
    resource = ps.transaction(keys, order.payment, dt.datetime.now(dt.UTC))
    body = ps.callback_body(keys, resource, dt.datetime.now(dt.UTC))
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


def explain(bench: Bench, db: Any) -> None:
    """The plan of ``PaymentService.on_notify``'s ``find_one({out_trade_no})``: without an
    index every callback would read every order."""
    command = {"find": "payments", "filter": {"out_trade_no": "MC0"}, "limit": 1}
    plan = cs.explain(db, command)
    bench.fact("order lookup plan", plan)
    bench.note(f"the callback's order lookup: {plan}")
    if "IXSCAN" not in plan:
        raise SeedError(f"the callback's order lookup uses no index: {plan}")


# ---- the loads


@dataclass
class Callbacks:
    """The callbacks sent so far: each order's body (one notification, delivered again
    as it is, signed afresh each time), in the order first sent."""

    bench: Bench
    api: str
    keys: ps.PayKeys
    quiet: Callable[[str], None]  # waits for the work a load left behind (filingrun.settle)
    bodies: dict[str, str] = field(default_factory=dict)

    def body(self, order: ps.Order) -> str:
        number = order.payment["out_trade_no"]
        if number not in self.bodies:
            now = dt.datetime.now(dt.UTC)
            resource = ps.transaction(self.keys, order.payment, now)
            self.bodies[number] = ps.callback_body(self.keys, resource, now)
        return self.bodies[number]

    def path(self, name: str) -> Path:
        return self.bench.workdir / f"callbacks-{name}.txt"

    def write(self, name: str, bodies: list[str]) -> Path:
        """``notify.lua``'s file of ``bodies``, each signed now."""
        path = self.path(name)
        with path.open("w", encoding="utf-8") as out:
            out.writelines(ps.sign(self.keys, b).line() for b in bodies)
        return path

    def wrk(self, path: Path, seconds: int, mode: str) -> WrkRun:
        o = self.bench.opts
        args = (str(path), str(min(o.threads, o.connections)), self.keys.key_id, mode)
        script = BENCH / "notify.lua"
        return WrkRun(self.bench.wrk, o.threads, o.connections, seconds, script, args, WRK_TIMEOUT)

    def serially(self, name: str, bodies: list[str]) -> None:
        """The row from ``bodies`` posted one at a time (requests/s = 1 / mean latency)."""
        try:
            took = sorted(post(self.api, self.keys, b) for b in bodies)
        except SeedError as e:
            self.bench.record(LoadResult(name, problem=str(e)), KEYS[name])
            return
        self.bench.record(
            LoadResult(name, requests=len(took), seconds=sum(took), rps=len(took) / sum(took),
                       p50_ms=raw.percentile_ms(took, 50), p99_ms=raw.percentile_ms(took, 99)),
            KEYS[name],
        )  # fmt: skip


def concurrent(bench: Bench, name: str, lone: float) -> bool:
    """Whether wrk can load the row: as for the filing rows, SecantusDB serves one query at
    a time, so ``connections`` callbacks in flight take about ``connections`` times one; if
    that is more than half the load, few rounds (or none) would complete in it."""
    o = bench.opts
    round_s = lone * o.connections
    if round_s * 2 <= o.duration:
        return True
    bench.note(
        f"{name}: {o.connections} connections x {lone:.2f} s = ~{round_s:.0f} s per round on "
        f"the database, more than half the {o.duration} s load: measured one callback at a "
        f"time instead, {SERIAL} callbacks (the row's requests/s is 1 / mean latency)"
    )
    return False


def first_delivery(
    calls: Callbacks, pools: tuple[list[ps.Order], list[ps.Order]], lone: float
) -> tuple[list[ps.Order], dt.datetime | None]:
    """Each callback once, crediting its order: wrk over the warm-up's orders, then (once
    the server has finished them) the load's; or ``SERIAL`` of them one at a time. The
    orders of the measured part, and when wrk started on them."""
    bench, name = calls.bench, "POST notify first"
    if not concurrent(bench, name, lone):
        calls.serially(name, [calls.body(o) for o in pools[1][:SERIAL]])
        return pools[1][:SERIAL], None
    o = bench.opts
    warm = calls.wrk(calls.write("warm", [calls.body(x) for x in pools[0]]), o.warmup, "once")
    measured = calls.wrk(calls.path("measured"), o.duration, "once")
    started: list[dt.datetime] = []

    def between() -> None:
        """The warm-up's callbacks still running would share the load; and the load's are
        signed now, as the server allows five minutes."""
        calls.quiet("the first-delivery warm-up")
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
    if not concurrent(bench, name, lone):
        calls.serially(name, (bodies * SERIAL)[:SERIAL])
        return
    bench.note(f"repeat load: {len(bodies)} credited orders, each callback signed afresh")
    run = calls.wrk(calls.write("repeat", bodies), bench.opts.duration, "cycle")
    bench.record_wrk(run, name, calls.api, KEYS[name])


def check_ledger(
    bench: Bench, db: Any, orders: list[ps.Order], after: str,
    load: tuple[list[ps.Order], LoadResult] | None,
) -> Ledger:  # fmt: skip
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
