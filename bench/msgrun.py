"""The messages part of the run (联系法官): POST /messages and GET /messages against the raw
driver; the escalation sweep's rate over ``--open-orders`` orders past a deadline; the
statistics over ``--orders`` work orders, through the API and raw."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from bench import filingseed as fs
from bench import msgraw, raw, shapes
from bench import msgseed as ms
from bench.filingrun import BENCH, WRK_TIMEOUT, Filings, call_api, probe, serially, settle
from bench.loadgen import LoadResult, WrkRun
from bench.report import size_label
from bench.seed import SeedError, http_json
from bench.stack import DATABASE, Stack
from server.platform.mongo import change_one
from server.workorders.messages import SUMMARY_EXCLUDE, mine_filter
from server.workorders.rules import to_ms

if TYPE_CHECKING:
    from bench.run import Bench

MINE = 60  # messages of the reader whose list is loaded: three pages
KEYS = {
    "POST /messages": "message_post",
    "raw message create": "raw_message_post",
    "GET /messages": "message_list",
    "raw message list": "raw_message_list",
}
FAR = dt.timedelta(days=30)


def run_messages(bench: Bench, stack: Stack, filings: Filings, user_ids: list[ObjectId]) -> None:
    o = bench.opts
    litigant, reader = filings.filers[0], filings.filers[1]
    with fs.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("messages: a judge and a supervisor (API sign-in), judges inserted"):
            staff = ms.make_staff(stack.api, db)
        with bench.stage("messages: a case of the litigant through the API, assigned"):
            case_id = ms.api_case_with_judge(stack.api, litigant, filings.clerk, staff.judge, db)
            case = db["cases"].find_one({"_id": ObjectId(case_id)}) or {}
        seeder = ms.OrderSeeder(db, [str(i) for i in user_ids], staff.assignees)
        with bench.stage("check a message sent through the API against a seeded one"):
            sent = ms.api_message(stack.api, litigant, case_id)
            on_case = (case_id, str(case["case_no"]))
            like = seeder.order(
                dt.datetime.now(dt.UTC), sender=litigant.user_id,
                assignee=staff.judge.user_id, case=on_case,
            )  # fmt: skip
            ms.check_shape(db, sent["id"], like)
        with bench.stage(f"insert {MINE} messages of a reader; GET /messages against raw"):
            now, judge = dt.datetime.now(dt.UTC), staff.judge.user_id
            mine = [
                seeder.order(now - dt.timedelta(minutes=i), sender=reader.user_id, assignee=judge)
                for i in range(MINE)
            ]
            seeder.insert(mine)
            ms.check_list(stack.api, reader.token, db, reader.user_id)
        load_post(bench, stack, filings, litigant.token, ObjectId(case_id), staff.judge.user_id)
        load_list(bench, stack, filings, reader.token, reader.user_id)
        sweep_rate(bench, stack, filings, seeder, o.open_orders)
        statistics(bench, stack, filings, seeder, staff.supervisor.token)
    bench.fact("work orders", {"seeded": seeder.count, "seconds": round(seeder.seconds, 1)})


def _ops(call: Callable[[raw.Db], Awaitable[bool]]) -> raw.OpFactory:
    def factory(db: raw.Db, phase: str) -> raw.Op:
        return lambda: call(db)

    return factory


def _pair(
    bench: Bench, stack: Stack, filings: Filings, names: tuple[str, str], url: str,
    run: WrkRun, raw_call: Callable[[raw.Db], Awaitable[bool]],
) -> None:  # fmt: skip
    bench.record_wrk(run, names[0], url, KEYS[names[0]])
    settle(bench, stack, filings, f"the {names[0]} load")
    bench.record_raw(names[1], KEYS[names[1]], _ops(raw_call))
    settle(bench, stack, filings, f"the {names[1]} load")


# ---- POST /messages and GET /messages


def load_post(
    bench: Bench, stack: Stack, filings: Filings, token: str, case_id: ObjectId, judge: str
) -> None:
    url = f"{stack.api}{ms.MESSAGES_PATH}"
    body = ms.message_body(str(case_id))
    rng = random.Random(3)

    def api_call() -> None:
        status, answer = http_json(url, body, fs.bearer(token))
        if status != 201:
            raise SeedError(f"POST {ms.MESSAGES_PATH}: {status} {answer}")

    async def raw_call(db: raw.Db) -> bool:
        return await create(db, case_id, judge, rng)

    names = ("POST /messages", "raw message create")
    if not probe(bench, stack, names, api_call, raw_call, KEYS):
        return
    o = bench.opts
    tokens, payload = bench.workdir / "message-token.txt", bench.workdir / "message.json"
    tokens.write_text(f"{token}\n")
    payload.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    run = WrkRun(bench.wrk, o.threads, o.connections, o.duration, BENCH / "post.lua",
                 (str(tokens), str(payload)), WRK_TIMEOUT)  # fmt: skip
    _pair(bench, stack, filings, names, url, run, raw_call)


def load_list(bench: Bench, stack: Stack, filings: Filings, token: str, sender: str) -> None:
    url = f"{stack.api}{ms.MESSAGES_PATH}"

    async def raw_call(db: raw.Db) -> bool:
        return len(await my_page(db, sender)) > 0

    names = ("GET /messages", "raw message list")
    if not probe(bench, stack, names, lambda: call_api(url, token, None), raw_call, KEYS):
        return
    o = bench.opts
    tokens = bench.workdir / "reader-token.txt"
    tokens.write_text(f"{token}\n")
    run = WrkRun(bench.wrk, o.threads, o.connections, o.duration, BENCH / "me.lua",
                 (str(tokens),), WRK_TIMEOUT)  # fmt: skip
    _pair(bench, stack, filings, names, url, run, raw_call)


async def my_page(db: raw.Db, sender: str) -> list[dict[str, Any]]:
    """``MessageService.list_mine``'s first page."""
    cursor = db["workorders"].find(mine_filter(sender), SUMMARY_EXCLUDE).sort("_id", -1)
    return await cursor.limit(ms.PAGE + 1).to_list()


async def create(db: raw.Db, case_id: ObjectId, judge: str, rng: random.Random) -> bool:
    """``MessageService.create``'s database calls, in order: the case, then one transaction:
    the number (``change_one``), the order, the judge's notice (``NotificationService``
    itself). The content check is WeChat's (an HTTP call), not the database's."""
    case = await db["cases"].find_one({"_id": case_id})
    if case is None:
        return False
    now = to_ms(dt.datetime.now(dt.UTC))
    key = f"workorder_no|{shapes.COURT}|{now.astimezone(shapes.SHANGHAI).year}"

    async def work(session: AsyncClientSession) -> None:
        counter = await change_one(db["counters"], {"_id": key}, {"$inc": {"seq": 1}},
                                         upsert=True, session=session)  # fmt: skip
        doc = ms.order_doc(rng, int((counter or {})["seq"]), now, case["filer_id"], judge,
                           (str(case_id), case["case_no"]))  # fmt: skip
        await db["workorders"].insert_one(doc, session=session)
        await raw.notifier(db).notify([judge], **ms.notice(doc), session=session)

    async with db.client.start_session() as session:
        await session.with_transaction(work)
    return True


# ---- the escalation sweep


def sweep_rate(
    bench: Bench, stack: Stack, filings: Filings, seeder: ms.OrderSeeder, count: int
) -> None:
    """Hold the server's sweep lease while ``count`` unassigned orders past their
    assignment deadline go in, give it back, and time the server's sweep through them."""
    label = size_label(count)
    now = dt.datetime.now(dt.UTC)
    due, far = to_ms(now - dt.timedelta(minutes=1)), now + FAR
    with fs.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage(f"insert {count} open orders past their assignment deadline"):
            ms.hold_sweep(db, True)
            docs = [ms.overdue_doc(seeder, due, far) for _ in range(count)]
            seeder.insert(docs)
        with bench.stage(f"escalation sweep through {label} orders (the server's own)"):
            ms.hold_sweep(db, False)
            since, began = dt.datetime.now(dt.UTC), time.perf_counter()
            ms.wait_swept(db, [d["_id"] for d in docs[-10:]], timeout=max(600.0, count / 20))
            took = time.perf_counter() - began
            waits = ms.escalation_waits(db, far, since, count)
        bench.note(
            f"escalation sweep: {count} orders past their deadline, inserted while the bench "
            f"held the sweep's lease, escalated by the server's periodic sweep (one pass, "
            f"200 orders a transaction) in {took:.1f} s after the lease was given back: "
            f"{count / took:.0f} orders/s; each escalated once and its supervisor told once; "
            "p50/p99 = wait from then to each order's escalation"
        )
    result = LoadResult(f"escalation sweep {label}", requests=count, seconds=took,
                        rps=count / took, p50_ms=waits[0], p99_ms=waits[1])  # fmt: skip
    bench.record(result, "sweep")
    settle(bench, stack, filings, "the escalation sweep", limit=max(300.0, count / 50))


# ---- statistics


def statistics(
    bench: Bench, stack: Stack, filings: Filings, seeder: ms.OrderSeeder, token: str
) -> None:
    o = bench.opts
    label = size_label(o.orders)
    now = dt.datetime.now(dt.UTC)
    with bench.stage(f"insert work orders to {label} (a year of messages in every state)"):
        took = seeder.history(o.orders, now)
    bench.note(f"work orders grown to {o.orders} in {took:.1f} s")
    first, last = (now - dt.timedelta(days=400)).date(), now.date()
    url = f"{stack.api}{ms.STATS_PATH}?from={first}&to={last}&group_by=assignee"
    head = msgraw.stats_head(first, last)
    names = (f"GET workorder stats {label}", f"raw stats aggregation {label}")
    keys = {names[0]: "stats", names[1]: "raw_stats"}
    with bench.stage(f"check GET {ms.STATS_PATH} against the raw aggregations at {label}"):
        began = time.perf_counter()
        status, report = http_json(url, headers=fs.bearer(token), timeout=3600)
        api_s = time.perf_counter() - began
        if status != 200:
            raise SeedError(f"GET {ms.STATS_PATH}: HTTP {status} {report}")
        found: dict[str, Any] = {}

        async def raw_call(db: raw.Db) -> bool:
            found.update(await msgraw.raw_stats(db, head))
            return True

        raw_s = asyncio.run(raw.time_once(stack.db_uri, DATABASE, raw_call))
        msgraw.compare_stats(report["total"], found)
    bench.note(f"{names[0]}, one request alone: API {api_s:.2f} s, raw {raw_s:.2f} s; "
               f"plan of the first stage: {msgraw.explain_stats(stack.db_uri, head)}")  # fmt: skip
    if max(api_s, raw_s) * o.connections * 2 > o.duration:
        bench.note(f"{names[0]}: measured one request at a time (requests/s = 1 / latency)")
        serially(bench, names, (api_s, raw_s), keys)
        return
    tokens = bench.workdir / "supervisor-token.txt"
    tokens.write_text(f"{token}\n")
    run = WrkRun(bench.wrk, o.threads, o.connections, o.duration, BENCH / "me.lua",
                 (str(tokens),), WRK_TIMEOUT)  # fmt: skip
    bench.record_wrk(run, names[0], url, "stats")
    settle(bench, stack, filings, f"the {names[0]} load")
    bench.record_raw(names[1], "raw_stats", _ops(lambda db: _stats_once(db, head)))


async def _stats_once(db: raw.Db, head: list[dict[str, Any]]) -> bool:
    return bool(await msgraw.raw_stats(db, head))
