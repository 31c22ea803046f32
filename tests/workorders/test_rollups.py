"""The statistics' rollups against the orders: a year of mixed channels, courts, assignees
and categories, stored as orders from before the rollups (then the backfill) and changed
afterwards (then the rollups kept in each change's transaction): every report the rollups
give is the very report the aggregation over the orders gives, whatever the grouping, range,
court, or time of asking. (tests/workorders/conftest.py also checks, after every work-order
test, that the rollups kept are the rollups the orders make.)"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from typing import Any

import pytest
from bson import ObjectId
from tornado.ioloop import IOLoop

from models.workorders import Category, Channel, GroupBy, StatsQuery
from server.app import Services
from server.platform.clock import SHANGHAI, FixedClock
from server.platform.config import load_settings
from server.platform.db import in_transaction
from server.platform.mongo import connect
from server.workorders import rollups
from tests.factories import TEST_KEYS, Staff, clean_env, uid

COURTS = ("bj-chaoyang", "sh-pudong")
YEAR = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
RANGES = [YEAR, (dt.date(2026, 3, 1), dt.date(2026, 3, 31)), (dt.date(2026, 7, 15),) * 2]


def order(rng: random.Random, i: int, now: dt.datetime) -> dict[str, Any]:
    """An order of 2026 in any state, its times on the millisecond (as stored)."""
    day = dt.datetime(2026, 1, 1, tzinfo=SHANGHAI) + dt.timedelta(days=rng.randrange(365))
    created = (day + dt.timedelta(milliseconds=rng.randrange(86_400_000))).astimezone(dt.UTC)
    due = rng.choice(
        [
            created + dt.timedelta(hours=rng.choice([4, 24, 72])),
            now + dt.timedelta(milliseconds=rng.randrange(-86_400_000, 86_400_000)),
        ]
    )
    seconds = rng.choice([None, None, 60.0, 300.0, rng.randrange(1, 400_000) + 0.125])
    status = rng.choice(["pending", "assigned"] if seconds is None else ["replied", "closed"])
    late = rng.choice([None, due, now - dt.timedelta(days=1), now + dt.timedelta(hours=2)])
    return {
        "_id": ObjectId(),
        **{"no": f"R{i}", "seq": i, "year": 2026, "sender_id": "s", "thread": [], "steps": []},
        **{"excerpt": "", "assign_due_at": due, "close_due_at": due, "version": 1},
        "court_id": rng.choice(COURTS),
        "created_at": created,
        "updated_at": created,
        "assignee_id": None if status == "pending" else rng.choice(["j1", "j2", "j3"]),
        "category": rng.choice(list(Category)).value,
        "status": status,
        "first_reply_due_at": due,
        "first_reply_seconds": seconds,
        "first_reply_on_time": None if seconds is None else seconds < 90_000,
        "overdue_at": None if status == "closed" else late,
        "rating_score": rng.choice([None, 1, 5]) if status == "closed" else None,
        "called_back": rng.random() < 0.2,
        **({} if rng.random() < 0.2 else {"channel": rng.choice(list(Channel)).value}),
    }


async def compare(services: Services, caller: Any, court_id: str | None = None) -> int:
    """Every grouping and range: the rollups' report is the orders'; the rows compared."""
    stats, compared = services.workorder_stats, 0
    for group_by in GroupBy:
        for first, last in RANGES:
            query = StatsQuery.model_validate(
                {"from": first, "to": last, "group_by": group_by, "court_id": court_id}
            )
            rolled, reference = (
                await stats.stats(caller, query),
                await stats.reference(caller, query),
            )
            assert rolled.model_dump() == reference.model_dump(), (group_by, first, last)
            compared += len(reference.rows)
    return compared


@pytest.mark.gen_test(timeout=600)
async def test_a_year_of_orders_reports_the_same_from_rollups(
    staff: Staff, services: Services, clock: FixedClock
) -> None:
    clock.set(dt.datetime(2026, 12, 31, 8, tzinfo=dt.UTC))
    rng = random.Random(17)
    docs = [order(rng, i, clock.now()) for i in range(1200)]
    await services.db["workorders"].insert_many(docs)
    store = services.workorders.store
    assert await store.rebuild_rollups() == await store.rebuild_rollups()  # idempotent
    supervisor = await services.users.get(uid(await staff("clerk", supervisor=True)))
    sysadmin = await services.users.get(uid(await staff("admin", court_id=None)))
    assert await compare(services, supervisor) > 30
    assert await compare(services, sysadmin) > 40
    assert await compare(services, sysadmin, "sh-pudong") > 20
    # later in the day: deadlines pass, so due and overdue_now move on
    clock.set(dt.datetime(2026, 12, 31, 20, tzinfo=dt.UTC))
    assert await compare(services, sysadmin) > 40

    # changes through the store: reassigned, answered, closed, rated, called back, overdue
    for raw in rng.sample(docs, 150):
        doc = await store.load(str(raw["_id"]))
        sets: dict[str, Any] = {"assignee_id": rng.choice(["j1", "j4"]), "called_back": True}
        if doc.first_reply_seconds is None:
            sets.update(first_reply_seconds=rng.choice([60.0, 7.5]), first_reply_on_time=True)
        sets.update(
            status="closed", overdue_at=None, rating_score=rng.choice([None, 2])
        ) if rng.random() < 0.5 else sets.update(overdue_at=clock.now())
        update = {"$set": sets, "$inc": {"version": 1}}
        await in_transaction(
            services.db, lambda s, d=doc, u=update: store.change_on_version(d, u, s)
        )
    assert await compare(services, sysadmin) > 40
    assert await compare(services, supervisor) > 30


@pytest.mark.gen_test(timeout=120)
async def test_deadlines_are_kept_by_the_minute_and_a_report_is_as_of_one(
    staff: Staff, services: Services, clock: FixedClock
) -> None:
    noon = dt.datetime(2026, 12, 31, 4, tzinfo=dt.UTC)  # 12:00 in Beijing
    rng = random.Random(5)
    ms = [rng.randrange(-60_000, 120_000) for _ in range(300)]
    deadlines = [noon + dt.timedelta(milliseconds=m) for m in ms]
    docs = []
    for i, due in enumerate(deadlines):
        doc = order(rng, i, noon)
        doc.update(created_at=noon - dt.timedelta(hours=1), court_id=COURTS[0], status="assigned")
        doc.update(assignee_id="j1", first_reply_due_at=due, overdue_at=due, rating_score=None)
        doc.update(first_reply_seconds=None, first_reply_on_time=None)
        docs.append(doc)
    await services.db["workorders"].insert_many(docs)
    await services.workorders.store.rebuild_rollups()
    cells = services.db["workorder_rollups"].find({"_id": {"$regex": "assignee"}})
    (cell,) = [c async for c in cells if "g" in c]
    (kept,) = cell["g"].values()
    assert len(kept["w"]) <= 3 and len(kept["o"]) <= 3  # 300 deadlines, 3 minutes
    supervisor = await services.users.get(uid(await staff("clerk", supervisor=True)))
    day = {"from": noon.date(), "to": noon.date(), "group_by": "assignee"}
    query = StatsQuery.model_validate(day)
    for now in (noon + dt.timedelta(seconds=30.5), noon + dt.timedelta(seconds=61)):
        clock.set(now)
        minute = now.replace(second=0, microsecond=0)
        report = await services.workorder_stats.stats(supervisor, query)
        assert report.generated_at == minute
        passed = sum(d <= minute for d in deadlines)  # not those within the minute yet
        assert 0 < passed < len(deadlines)
        assert (report.total.due, report.total.overdue_now) == (passed, passed)
        reference = await services.workorder_stats.reference(supervisor, query)
        assert report.model_dump() == reference.model_dump()


def test_the_rebuild_command_backfills_and_may_run_again(io_loop: IOLoop, mongo_uri: str) -> None:
    name = f"rollups_{os.getpid()}"
    env = clean_env(
        MICROCOURT_MONGODB__URI=mongo_uri,
        MICROCOURT_MONGODB__DATABASE=name,
        MICROCOURT_SECURITY__TOKEN_SECRET=TEST_KEYS.token_secret.decode(),
        MICROCOURT_SECURITY__DATA_KEY="a" * 43 + "=",
        MICROCOURT_SECURITY__HASH_KEY=TEST_KEYS.hash_key.decode(),
    )
    rng = random.Random(3)
    now = dt.datetime(2026, 12, 31, 8, tzinfo=dt.UTC)
    docs = [order(rng, i, now) for i in range(60)]
    client = connect(mongo_uri)
    db = client[name]
    command = [sys.executable, "-m", "server.cli", "rollups", "rebuild"]

    async def cells() -> dict[str, Any]:
        return {raw["_id"]: raw async for raw in db["workorder_rollups"].find({})}

    try:
        io_loop.run_sync(lambda: db["workorders"].insert_many(docs))
        built = rollups.build(docs, rollups.zones(load_settings()), {})
        expected = {cid: rollups.packed(c) for cid, c in built.items()}
        for _ in range(2):  # the second run finds the same orders and leaves the same cells
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert f"{len(expected)} cells" in done.stdout
            assert io_loop.run_sync(cells) == expected
    finally:
        io_loop.run_sync(lambda: client.drop_database(name))
        io_loop.run_sync(client.close)
