"""The message rows: POST and GET /messages and raw, the escalation sweep, the statistics."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
import time
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from bench import filingseed as fs
from bench import msgseed as ms
from bench import raw, shapes
from bench.filingrun import Filings
from bench.loadgen import LoadResult
from bench.pairs import pair, settle, token_file, wrk
from bench.report import size_label
from bench.seed import SeedError, call, client, explain
from bench.stack import DATABASE, Stack
from models.workorders import GroupBy, WorkOrderDoc
from server.platform.mongo import change_one
from server.workorders.messages import announcement
from server.workorders.rules import to_ms
from server.workorders.service import WorkOrderService
from server.workorders.stats import KEYS, _quantiles
from server.workorders.store import (
    SUMMARY_EXCLUDE,
    counts_pipeline,
    match_stage,
    mine_filter,
    percentile_pipeline,
)

if TYPE_CHECKING:
    from bench.run import Bench

MINE = 60  # messages of the reader whose list is loaded: three pages
FAR = dt.timedelta(days=30)


def run_messages(bench: Bench, stack: Stack, filings: Filings, user_ids: list[ObjectId]) -> None:
    o = bench.opts
    litigant, reader = filings.filers[0], filings.filers[1]
    with client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("messages: a judge and a supervisor (API sign-in), judges inserted"):
            staff = ms.make_staff(stack.api, db)
        with bench.stage("messages: a case of the litigant through the API, assigned"):
            case_id = ms.api_case_with_judge(stack.api, litigant, filings.clerk, staff.judge, db)
            case = db["cases"].find_one({"_id": ObjectId(case_id)}) or {}
        seeder = ms.OrderSeeder(db, [str(i) for i in user_ids], staff.assignees)
        judge = staff.judge.user_id
        with bench.stage("check a message sent through the API against a seeded one"):
            sent, now = ms.api_message(stack.api, litigant, case_id), dt.datetime.now(dt.UTC)
            on_case = (case_id, str(case["case_no"]))
            like = seeder.order(now, sender=litigant.user_id, assignee=judge, case=on_case)
            ms.check_shape(db, sent["id"], like)
        with bench.stage(f"insert {MINE} messages of a reader; GET /messages against raw"):
            now = dt.datetime.now(dt.UTC)
            at = [now - dt.timedelta(minutes=i) for i in range(MINE)]
            seeder.insert([seeder.order(t, sender=reader.user_id, assignee=judge) for t in at])
            ms.check_list(stack.api, reader.token, db, reader.user_id)
        message_pairs(bench, stack, case_id, judge, litigant, reader)
        sweep_rate(bench, seeder, o.open_orders)
        statistics(bench, stack, seeder, staff.supervisor.token)
    bench.fact("work orders", {"seeded": seeder.count, "seconds": round(seeder.seconds, 1)})


def message_pairs(
    bench: Bench, stack: Stack, case_id: str, judge: str, litigant: fs.Filer, reader: fs.Filer
) -> None:
    url, rng = f"{stack.api}{ms.MESSAGES_PATH}", random.Random(3)
    body = ms.message_body(case_id)
    payload = bench.workdir / "message.json"
    payload.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    post_args = (token_file(bench, litigant.token, "message"), str(payload))
    names, keys = ("POST /messages", "raw message create"), ("message_post", "raw_message_post")
    pair(
        bench,
        names,
        keys,
        url,
        litigant.token,
        lambda d: create(d, ObjectId(case_id), judge, rng),
        api_call=lambda: call(url, body, litigant.token, status=201),
        run=wrk(bench, "post.lua", post_args),
    )
    names, keys = ("GET /messages", "raw message list"), ("message_list", "raw_message_list")
    pair(bench, names, keys, url, reader.token, lambda d: my_page(d, reader.user_id))


async def my_page(db: raw.Db, sender: str) -> list[dict[str, Any]]:
    """``MessageService.list_mine``'s first page."""
    cursor = db["workorders"].find(mine_filter(sender), SUMMARY_EXCLUDE).sort("_id", -1)
    return await cursor.limit(ms.PAGE + 1).to_list()


async def create(db: raw.Db, case_id: ObjectId, judge: str, rng: random.Random) -> bool:
    """``MessageService.create``'s database calls, in order (the content check is WeChat's)."""
    case = await db["cases"].find_one({"_id": case_id})
    if case is None:
        return False
    now = to_ms(dt.datetime.now(dt.UTC))
    key = f"workorder_no|{shapes.COURT}|{now.astimezone(shapes.SHANGHAI).year}"

    async def work(session: AsyncClientSession) -> None:
        counter = await change_one(
            db["counters"], {"_id": key}, {"$inc": {"seq": 1}}, upsert=True, session=session
        )
        seq, on_case = int((counter or {})["seq"]), (str(case_id), case["case_no"])
        doc = ms.order_doc(rng, seq, now, case["filer_id"], judge, on_case)
        await db["workorders"].insert_one(doc, session=session)
        order = WorkOrderDoc.model_validate(doc)
        for n in WorkOrderService.notices([judge], order, announcement(order), set()):
            more = {k: getattr(n, k) for k in ("data", "template", "page", "dedupe_key")}
            await raw.notifier(db).notify(
                n.user_ids, n.kind, n.title, n.body, **more, session=session
            )

    async with db.client.start_session() as session:
        await session.with_transaction(work)
    return True


def sweep_rate(bench: Bench, seeder: ms.OrderSeeder, count: int) -> None:
    """Hold the sweep's lease while ``count`` overdue orders go in, give it back, and time
    the server's sweep through them."""
    label = size_label(count)
    now = dt.datetime.now(dt.UTC)
    due, far = to_ms(now - dt.timedelta(minutes=1)), now + FAR
    db = seeder.db
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
    bench.note(f"escalation sweep: {count} orders in {took:.1f} s, each escalated and told once")
    name = f"escalation sweep {label}"
    bench.record(LoadResult(name, count, took, count / took, waits[0], waits[1]), "sweep")
    settle(bench, "the escalation sweep", limit=max(300.0, count / 50))


def statistics(bench: Bench, stack: Stack, seeder: ms.OrderSeeder, token: str) -> None:
    """Grow the orders to ``--orders``; check the API's totals against the raw aggregations
    (one request alone each), then the pair."""
    o = bench.opts
    label = size_label(o.orders)
    now = dt.datetime.now(dt.UTC)
    with bench.stage(f"insert work orders to {label} (a year of messages in every state)"):
        took = seeder.history(o.orders, now)
    bench.note(f"work orders grown to {o.orders} in {took:.1f} s")
    first, last = (now - dt.timedelta(days=400)).date(), now.date()
    url = f"{stack.api}{ms.STATS_PATH}?from={first}&to={last}&group_by=assignee"
    head = stats_head(first, last)
    names = (f"GET workorder stats {label}", f"raw stats aggregation {label}")
    found: dict[str, Any] = {}

    async def raw_call(db: raw.Db) -> bool:
        found.update(await raw_stats(db, head))
        return True

    with bench.stage(f"check GET {ms.STATS_PATH} against the raw aggregations at {label}"):
        began = time.perf_counter()
        report = call(url, token=token, timeout=3600)
        api_s = time.perf_counter() - began
        raw_s = asyncio.run(raw.time_once(stack.db_uri, DATABASE, raw_call))
        compare_stats(report["total"], found)
    plan = explain(seeder.db, explain_command(head))
    bench.note(
        f"{names[0]}, one request alone: API {api_s:.2f} s, raw {raw_s:.2f} s; "
        f"plan of the first stage: {plan}"
    )
    pair(bench, names, ("stats", "raw_stats"), url, token, raw_call, lone=(api_s, raw_s))


KEY = KEYS[GroupBy.assignee]


def stats_head(first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    return [match_stage(shapes.calendar(), [shapes.COURT], first, last)]


async def raw_stats(db: raw.Db, head: list[dict[str, Any]]) -> dict[str, Any]:
    """``WorkOrderStats.stats``' two aggregations by assignee; the totals compared."""
    now = dt.datetime.now(dt.UTC)
    totals = {"received": 0, "replied": 0, "rated": 0, "groups": 0}
    async for row in await db["workorders"].aggregate(counts_pipeline(head, KEY, now)):
        for key in ("received", "replied", "rated"):
            totals[key] += int(row[key])
        totals["groups"] += 1
    n, values = 0, {}
    pipeline = percentile_pipeline(head, KEY, totals["groups"] > 1)
    cursor = await db["workorders"].aggregate(pipeline, allowDiskUse=True)
    async for row in cursor:
        n = int(row["all_n"])
        values[int(row["all_up"])] = float(row["s"])
    found = _quantiles(n, values)
    return {**totals, "p50": found.get("p50"), "p90": found.get("p90")}


def compare_stats(api_total: dict[str, Any], raw: dict[str, Any]) -> None:
    """The API's totals are the raw aggregations' (the counts that do not move with time)."""
    names = {"median_first_reply_seconds": "p50", "p90_first_reply_seconds": "p90"}
    names |= {k: k for k in ("received", "replied", "rated")}
    pairs = {k: (api_total[k], raw[r]) for k, r in names.items()}
    wrong = {k: v for k, v in pairs.items() if not _same(*v)}
    if wrong:
        raise SeedError(f"GET /workorders/stats differs from the raw aggregations: {wrong}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def explain_command(head: list[dict[str, Any]]) -> dict[str, Any]:
    return {"aggregate": "workorders", "pipeline": [*head, {"$count": "n"}], "cursor": {}}
