"""Messages to the court: work orders, staff, checks, message rows, sweep, statistics (README)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
import secrets
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import bson
from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from bench import cases as cs
from bench import filing as fs
from bench import paced, raw, rollups, seed, shapes
from bench.filing import Filings
from bench.raw import Row, pair, settle, token_file, wrk
from bench.report import size_label
from bench.stack import DATABASE, Stack
from models.workorders import Category, GroupBy, WorkOrderDoc, WorkOrderStatus
from server.platform.counters import Counters
from server.platform.group_commit import GroupCommits
from server.workorders import rollups as rollups_of
from server.workorders import rules
from server.workorders import store as wo
from server.workorders.messages import announcement
from server.workorders.rules import to_ms
from server.workorders.service import WorkOrderService
from server.workorders.stats import KEYS, _quantiles
from server.workorders.store import WorkOrderStore

if TYPE_CHECKING:
    from bench.run import Bench


MESSAGES_PATH = "/api/v1/messages"
STATS_PATH = "/api/v1/workorders/stats"
PAGE = 20
ASSIGNEES = 20  # judges the seeded orders are spread over
STAFF_BASE = (1 << 16) - 16  # X-Real-Ip numbers of the staff sign-ins
KEY = KEYS[GroupBy.assignee]  # the statistics, by assignee
ZONES = rollups_of.zones(shapes.settings())  # the courts' days, as the server's
#: what only a desk order (1+N) or held content writes: not a mini-program message's
DESK_ONLY: Any = {
    **dict.fromkeys(("callbacks", "called_back", "caller_phone", "held", "link_token"), True),
    **dict.fromkeys(("opened_by", "sms"), True),
    "thread": {"__all__": {"held"}},
}
MINE = 60  # messages of the reader whose list is loaded: three pages
FAR = dt.timedelta(days=30)  # the overdue orders' other steps: out of the sweep's way


def swept(doc: dict[str, Any], now: dt.datetime) -> None:
    """What the sweep would have left by ``now`` (``schedule`` and ``_escalate``)."""
    replied = doc["first_replied_at"] is not None
    kinds = {k.value for k in rules.applicable(WorkOrderStatus(doc["status"]), replied)}
    steps = [s for s in doc["steps"] if s["kind"] in kinds]
    due = [s for s in steps if s["at"] <= now]
    doc["escalations"] = [
        {"kind": s["kind"], "level": s["level"], "due_at": s["at"], "at": s["at"]} for s in due
    ]
    doc["escalation_level"] = max([0, *(s["level"] for s in due)])
    doc["overdue_at"] = min((s["at"] for s in steps if s["level"] == 1), default=None)
    doc["sweep_at"] = min((s["at"] for s in steps if s["at"] > now), default=None)


def make_staff(api: str, db: seed.Db) -> tuple[seed.SignedIn, seed.SignedIn, list[str]]:
    """The judge, the supervisor, and the judges orders are spread over (the judge first)."""
    judge = seed.staff_login(api, db, shapes.staff_doc("judge", "王法官"), STAFF_BASE)
    supervisor_doc = shapes.staff_doc("clerk", "赵督办", supervisor=True)
    supervisor = seed.staff_login(api, db, supervisor_doc, STAFF_BASE + 1)
    others = [shapes.staff_doc("judge", f"法官{i}") for i in range(ASSIGNEES - 1)]
    ids = db["users"].insert_many(others).inserted_ids
    return judge, supervisor, [judge.user_id, *(str(i) for i in ids)]


MESSAGE = {"category": "庭审安排", "content": "请问本案何时开庭？能否线上开庭？"}


class Who(NamedTuple):
    """An order's sender, its assignee (None: pending) and case (id and number), if any."""

    sender: str
    assignee: str | None = None
    case: tuple[str, str] | None = None


def order_doc(rng: random.Random, seq: int, created: dt.datetime, who: Who) -> dict[str, Any]:
    """What ``MessageService.create`` inserts (number ``seq`` of its year)."""
    sender, assignee, case = who
    year = created.astimezone(shapes.SHANGHAI).year
    question = f"请问第{rng.randrange(1, 999)}号问题如何处理？"
    content = question + "请尽快答复。" * rng.randrange(1, 8)
    first = {"id": str(ObjectId()), "by": sender, "side": "sender", "content": content}
    doc = WorkOrderDoc(
        id=ObjectId(),
        no=wo.workorder_number(year, shapes.court().code, seq),
        **{"seq": seq, "year": year, "court_id": shapes.COURT, "sender_id": sender},
        sender_name=shapes.person_name(rng),
        case_id=case[0] if case else None,
        case_no=case[1] if case else None,
        case_staff_ids=[assignee] if case and assignee else [],
        category=rng.choice(tuple(Category)),
        status="assigned" if assignee else "pending",
        assignee_id=assignee,
        assigned_at=created if assignee else None,
        thread=[{**first, "at": created}],
        excerpt=content[:60],
        content_check={"suggest": "pass", "label": 100, "trace_id": secrets.token_hex(8)},
        **rules.deadlines(shapes.calendar(), shapes.court().deadlines.workorder, created),
        **dict.fromkeys(("created_at", "updated_at"), created),
    )
    found = {**doc.model_dump(by_alias=True, exclude=DESK_ONLY), "assignments": []}
    swept(found, created)
    return found


@dataclass
class OrderSeeder:
    """Work orders of one court, numbered per year as the server's counter would."""

    db: seed.Db
    senders: list[str]
    assignees: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    numbers: seed.Numbers | None = None
    count: int = 0

    def order(self, created: dt.datetime, who: Who | None = None) -> dict[str, Any]:
        """An order created at ``created`` (``who``: by default a litigant's, pending)."""
        created = to_ms(created)
        self.numbers = self.numbers or seed.Numbers(self.db, f"workorder_no|{shapes.COURT}")
        seq = self.numbers.next(created.astimezone(shapes.SHANGHAI).year)
        return order_doc(self.rng, seq, created, who or Who(self.rng.choice(self.senders)))

    def advance(self, doc: dict[str, Any], status: str, now: dt.datetime) -> dict[str, Any]:
        """Take a new order to ``status`` as the API would, then as the sweep by ``now``."""
        if status in ("replied", "closed"):
            self._reply(doc, now)
        if status == "closed":
            self._close(doc, now)
        swept(doc, now)
        return doc

    def _reply(self, doc: dict[str, Any], now: dt.datetime) -> None:
        at = to_ms(doc["created_at"] + dt.timedelta(seconds=self.rng.uniform(60, 4 * 86400)))
        at = min(at, now)
        reply = {"id": str(ObjectId()), "side": "court", "by": doc["assignee_id"], "at": at}
        doc["thread"].append({**doc["thread"][0], **reply, "name": "王法官", "content": "已收到"})
        doc.update(status="replied", first_replied_at=at, updated_at=at, version=2)
        doc["first_reply_seconds"] = (at - doc["created_at"]).total_seconds()
        doc["first_reply_on_time"] = at <= doc["first_reply_due_at"]

    def _close(self, doc: dict[str, Any], now: dt.datetime) -> None:
        after = dt.timedelta(hours=self.rng.uniform(1, 48))
        at = min(to_ms(doc["first_replied_at"] + after), now)
        doc.update(status="closed", closed_at=at, updated_at=at, version=3)
        doc.update(closed_by=doc["assignee_id"], closed_on_time=at <= doc["close_due_at"])
        if self.rng.random() < 0.7:
            score = self.rng.choice((5, 5, 5, 4, 4, 3, 2, 1))
            doc.update(rating={"score": score, "comment": None, "at": at}, rating_score=score)

    def insert(self, docs: Iterable[dict[str, Any]]) -> None:
        self.count += seed.insert_batches(self.db["workorders"], docs)
        if self.numbers:
            self.numbers.commit()

    def past(self, now: dt.datetime) -> dict[str, Any]:
        created = now - dt.timedelta(seconds=self.rng.uniform(3600, 365 * 86400))
        roll = self.rng.random()
        assignee = None if roll < 0.08 else self.rng.choice(self.assignees)
        status = "assigned" if roll < 0.2 else "replied" if roll < 0.35 else "closed"
        status = "pending" if assignee is None else status
        who = Who(self.rng.choice(self.senders), assignee)
        return self.advance(self.order(created, who), status, now)


def overdue_doc(seeder: OrderSeeder, due: dt.datetime, far: dt.datetime) -> dict[str, Any]:
    """Unassigned, its assignment deadline passed at ``due``, every other step at ``far``."""
    doc = seeder.order(due - dt.timedelta(hours=1))
    far = to_ms(far)
    for step in doc["steps"]:
        step["at"] = due if (step["kind"], step["level"]) == ("assign", 1) else far
    doc.update(assign_due_at=due, overdue_at=due, sweep_at=due)
    doc.update(first_reply_due_at=far, close_due_at=far)
    return doc


def hold_sweep(db: seed.Db, hold: bool) -> None:
    """Take the server's sweep lease for the bench, or give it back (expired)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1 if hold else -1)
    lease = {"$set": {"owner": "bench", "expires_at": until}}
    db["leases"].update_one({"_id": "workorder-sweep"}, lease, upsert=True)


def wait_swept(db: seed.Db, last: list[ObjectId], timeout: float) -> None:
    """Until the last orders inserted are escalated (the sweep takes them in order)."""
    until = time.monotonic() + timeout
    # by _id alone: SecantusDB scans the collection for {_id: {$in}} with any other field
    query, level = {"_id": {"$in": last}}, {"escalation_level": 1}
    while any(d["escalation_level"] == 0 for d in db["workorders"].find(query, level)):
        if time.monotonic() > until:
            raise seed.SeedError(f"orders still not escalated after {timeout:.0f} s")
        time.sleep(0.25)


def escalation_waits(
    db: seed.Db, far: dt.datetime, since: dt.datetime, count: int
) -> tuple[float, float]:
    """p50 and p99 (ms) from ``since`` to each escalation, once all were escalated and told."""
    for _ in range(120):
        found = db["workorders"].find({"sweep_at": to_ms(far)}, {"escalations": 1})
        once = [d["escalations"][0]["at"] for d in found if len(d["escalations"]) == 1]
        waits = sorted((at - since).total_seconds() * 1000 for at in once)
        told = db["inbox"].count_documents({"kind": "workorder_escalated"})
        if len(waits) == count and told == count:
            return waits[len(waits) // 2], waits[max(0, -(-99 * len(waits) // 100) - 1)]
        time.sleep(5)
    raise seed.SeedError(f"{len(waits)} orders escalated once and {told} notices, expected {count}")


def run_messages(bench: Bench, stack: Stack, filings: Filings, user_ids: list[ObjectId]) -> None:
    litigant, reader = filings.filers[0], filings.filers[1]
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage("messages: a judge and a supervisor (API sign-in), judges inserted"):
            staff, supervisor, assignees = make_staff(stack.api, db)
        with bench.stage("messages: a case of the litigant through the API, assigned"):
            case_id = cs.api_case(stack.api, litigant, filings.clerk, db)
            body = {"judge_id": staff.user_id, "clerk_id": filings.clerk.user_id}
            seed.call(f"{stack.api}/api/v1/cases/{case_id}/assign", body, filings.clerk.token)
            case = db["cases"].find_one({"_id": ObjectId(case_id)}) or {}
        seeder = OrderSeeder(db, [str(i) for i in user_ids], assignees)
        judge = staff.user_id
        with bench.stage("check a message sent through the API against a seeded one"):
            url, body = f"{stack.api}{MESSAGES_PATH}", {"case_id": case_id, **MESSAGE}
            sent, now = seed.call(url, body, litigant.token, status=201), dt.datetime.now(dt.UTC)
            on_case = (case_id, str(case["case_no"]))
            like = seeder.order(now, Who(litigant.user_id, judge, on_case))
            api_doc = db["workorders"].find_one({"_id": ObjectId(sent["id"])})
            stored = bson.decode(bson.encode(like))  # as inserted: the enums as strings
            seed.check_shapes("work orders", [(api_doc, stored, "work order")])
        with bench.stage(f"insert {MINE} messages of a reader; GET /messages against raw"):
            now = dt.datetime.now(dt.UTC)
            at = [now - dt.timedelta(minutes=i) for i in range(MINE)]
            seeder.insert([seeder.order(t, Who(reader.user_id, judge)) for t in at])
            mine = db["workorders"].find(wo.mine_filter(reader.user_id), {"_id": 1})
            expected = [str(d["_id"]) for d in mine.sort("_id", -1).limit(PAGE)]
            seed.check_page(f"{stack.api}{MESSAGES_PATH}", reader.token, expected)
        message_pairs(bench, stack, case_id, judge, litigant, reader)
        sweep_rate(bench, seeder, bench.opts.open_orders)
        statistics(bench, stack, seeder, supervisor.token)
    bench.fact("work orders seeded", seeder.count)


def message_pairs(
    bench: Bench, stack: Stack, case_id: str, judge: str, litigant: fs.Filer, reader: fs.Filer
) -> None:
    url, rng = f"{stack.api}{MESSAGES_PATH}", random.Random(3)
    body = {"case_id": case_id, **MESSAGE}
    payload = bench.workdir / "message.json"
    payload.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    run = wrk(bench, "post.lua", (token_file(bench, litigant.token, "message"), str(payload)))

    # the server's group commits are one per process: here one per load's event loop
    groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommits] = (
        weakref.WeakKeyDictionary()
    )

    async def create_one(db: raw.Db) -> bool:
        mine = groups.setdefault(asyncio.get_running_loop(), GroupCommits(db))
        return await create(db, mine, ObjectId(case_id), judge, rng)

    names, token = ("POST /messages", "raw message create"), litigant.token
    # one transaction at a time on the counter (a group's), in the server as in the raw row
    row = Row(names, "message_post", url, token, create_one, body, 201, run=run, at_once=1)
    pair(bench, row)
    json_type = {"Content-Type": "application/json"}
    sent = (payload.read_bytes(), {"Authorization": f"Bearer {token}", **json_type})
    name = f"POST /messages {bench.opts.peak_rate}/s"
    paced.run(bench, paced.Peak(name, "message_peak", url, lambda _: sent, 201))
    names = ("GET /messages", "raw message list")
    pair(bench, Row(names, "message_list", url, reader.token, lambda d: my_page(d, reader.user_id)))


async def my_page(db: raw.Db, sender: str) -> list[dict[str, Any]]:
    """``MessageService.list_mine``'s first page."""
    cursor = db["workorders"].find(wo.mine_filter(sender), wo.SUMMARY_EXCLUDE).sort("_id", -1)
    return await cursor.limit(PAGE + 1).to_list()


async def create(
    db: raw.Db, groups: GroupCommits, case_id: ObjectId, judge: str, rng: random.Random
) -> bool:
    """``MessageService.create``'s database calls, in order (the content check is WeChat's),
    the transaction grouped as the service groups it: the orders waiting for the court's
    counter written together (``GroupCommits.group``)."""
    counters = Counters(db)
    case = await db["cases"].find_one({"_id": case_id})
    if case is None:
        return False
    now = to_ms(dt.datetime.now(dt.UTC))
    key = f"workorder_no|{shapes.COURT}|{now.astimezone(shapes.SHANGHAI).year}"

    async def work(session: AsyncClientSession, whos: list[tuple[dt.datetime, Who]]) -> list[int]:
        first = await counters.take(key, session, len(whos))
        docs = [order_doc(rng, first + i, at, who) for i, (at, who) in enumerate(whos)]
        await WorkOrderStore(db, ZONES).insert_many(docs, session)  # the orders and rollups
        orders = [WorkOrderDoc.model_validate(doc) for doc in docs]
        notices = WorkOrderService.notices
        found = [n for o in orders for n in notices([judge], o, announcement(o), set())]
        await raw.notifier(db).notify_many(found, session=session)
        return [doc["seq"] for doc in docs]

    who = Who(case["filer_id"], judge, (str(case_id), case["case_no"]))
    await groups.group(key, work).run((now, who))
    return True


def sweep_rate(bench: Bench, seeder: OrderSeeder, count: int) -> None:
    """Hold the sweep while ``count`` overdue orders go in, release it, time the sweep."""
    db, label, now = seeder.db, size_label(count), dt.datetime.now(dt.UTC)
    due, far = to_ms(now - dt.timedelta(minutes=1)), now + FAR
    with bench.inserting(count, "open orders past their assignment deadline"):
        hold_sweep(db, True)
        docs = [overdue_doc(seeder, due, far) for _ in range(count)]
        seeder.insert(docs)
    with bench.stage(f"escalation sweep through {label} orders (the server's own)"):
        hold_sweep(db, False)
        since, began = dt.datetime.now(dt.UTC), time.perf_counter()
        wait_swept(db, [d["_id"] for d in docs[-10:]], timeout=max(600.0, count / 20))
        took = time.perf_counter() - began
        waits = escalation_waits(db, far, since, count)
    bench.note(f"escalation sweep: {count} orders in {took:.1f} s, each escalated and told once")
    name = f"escalation sweep {label}"
    bench.record(raw.LoadResult(name, count, took, count / took, waits[0], waits[1]), "sweep")
    settle(bench, "the escalation sweep", limit=max(300.0, count / 50))


def statistics(bench: Bench, stack: Stack, seeder: OrderSeeder, token: str) -> None:
    """Grow the orders to --orders; the API's totals against the raw ones; the pair."""
    orders, now = bench.opts.orders, dt.datetime.now(dt.UTC)
    label = size_label(orders)
    left = orders - seeder.db["workorders"].estimated_document_count()
    with bench.inserting(left, f"work orders, to {label} (a year of messages in every state)"):
        seeder.insert(seeder.past(now) for _ in range(left))
    rollups.rebuild(bench)  # the seeded orders went in behind the API's back
    first, last = (now - dt.timedelta(days=400)).date(), now.date()
    url = f"{stack.api}{STATS_PATH}?from={first}&to={last}&group_by=assignee"
    head = [wo.match_stage(shapes.calendar(), [shapes.COURT], first, last)]
    names = (f"GET workorder stats {label}", f"raw stats aggregation {label}")
    found: dict[str, Any] = {}

    async def raw_call(db: raw.Db) -> bool:
        found.update(await raw_stats(db, head))
        return True

    row = Row(names, "stats", url, token, raw_call, timeout=3600)
    with bench.stage(f"check GET {STATS_PATH} against the raw aggregations at {label}"):
        report, lone = raw.alone(bench, row)
        compare_stats(report["total"], found)
    command = {"aggregate": "workorders", "pipeline": [*head, {"$count": "n"}], "cursor": {}}
    bench.note(f"{names[0]}: plan of the first stage: {seed.explain(seeder.db, command)}")
    pair(bench, row, lone)
    rollups.year_row(bench, stack.api, token, seeder.assignees, bench.opts.rollup_orders)


async def raw_stats(db: raw.Db, head: list[dict[str, Any]]) -> dict[str, Any]:
    """``WorkOrderStats.stats``' two aggregations by assignee; the totals compared."""
    now = dt.datetime.now(dt.UTC)
    totals = {"received": 0, "replied": 0, "rated": 0, "groups": 0}
    async for row in await db["workorders"].aggregate(wo.counts_pipeline(head, KEY, now)):
        for key in ("received", "replied", "rated"):
            totals[key] += int(row[key])
        totals["groups"] += 1
    n, values = 0, {}
    pipeline = wo.percentile_pipeline(head, KEY, totals["groups"] > 1)
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
        raise seed.SeedError(f"GET /workorders/stats differs from the raw aggregations: {wrong}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)
