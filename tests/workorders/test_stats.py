"""Work-order statistics compared with what was done: counts, rates, exact median and p90 of
the time to first reply, overdue now, average rating; each caller's scope; bad input."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest
from bson import ObjectId

from server.app import Services
from server.platform.clock import FixedClock
from server.workorders.stats import ranks
from tests.factories import Litigant, Staff, at, desk_message, error, relogin, uid

MONDAY = "2026-11-23"


def quantile(values: list[float], p: float) -> float | None:
    """What the report must say: linear interpolation between the closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {0.5: statistics.median(values), 0.9: cuts[89]}[p]


def row(rows: list[dict[str, Any]], key: str | None) -> dict[str, Any]:
    return next(r for r in rows if r["key"] == key)


@pytest.mark.gen_test(timeout=180)
async def test_statistics_match_what_was_done(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    one, two = await litigant(), await litigant()
    supervisor = await staff("clerk", supervisor=True)
    judge_a, judge_b = await staff("judge"), await staff("judge")
    far = await staff("clerk", court_id="sh-pudong", supervisor=True)
    a, b = uid(judge_a), uid(judge_b)
    # Monday 10:00: five messages; Tuesday 09:00 a sixth (and one in another court)
    o1 = await desk_message(one, "问题一", category="进度查询")
    o2 = await desk_message(one, "问题二", category="执行")
    o3 = await desk_message(two, "问题三", category="进度查询")
    o4 = await desk_message(two, "问题四", category="投诉")
    await desk_message(two, "问题五", category="其他")  # never assigned
    for order, judge in ((o1, a), (o2, a), (o3, b), (o4, b)):
        assert (await supervisor.assign_workorder(order, judge)).status == 200
    clock.set(at(23, 10, 30))
    assert (await judge_a.reply_message(o1, "答复一")).status == 201  # 1800 s, on time
    clock.set(at(23, 12))
    assert (await judge_a.reply_message(o2, "答复二")).status == 201  # 7200 s, on time
    clock.set(at(24, 9))
    await relogin(supervisor, judge_a, judge_b, far)
    o6 = await desk_message(one, "问题六", category="其他")
    assert (await supervisor.assign_workorder(o6, a)).status == 200
    assert (await one.send_message("浦东的问题", "其他", court_id="sh-pudong")).status == 201
    clock.set(at(24, 9, 10))
    assert (await judge_a.reply_message(o6, "答复六")).status == 201  # 600 s, on time
    clock.set(at(24, 11))
    assert (await judge_b.reply_message(o3, "答复三")).status == 201  # 90000 s, late
    for order, judge in ((o1, judge_a), (o2, judge_a), (o3, judge_b)):
        assert (await judge.close_workorder(order)).status == 200
    assert (await one.rate_message(o1, 5)).status == 200
    assert (await one.rate_message(o2, 3, "一般")).status == 200
    clock.set(at(25, 9))  # Wednesday: o4 unanswered and o5 unassigned are overdue
    await relogin(supervisor, judge_a, judge_b, far)

    res = await supervisor.workorder_stats(MONDAY, "2026-11-24")
    assert res.status == 200, res.body
    report = res.body
    assert (report["group_by"], report["court_ids"]) == ("assignee", ["bj-chaoyang"])
    rows = report["rows"]
    assert [r["key"] for r in rows] == [a, b, None]  # the most received first
    assert row(rows, a) == {
        "key": a,
        "name": "李四",
        "received": 3,
        "replied": 3,
        "closed": 2,
        "reply_rate": 1.0,
        "answered": 3,  # 1+N: answers that reached the sender
        "called_back": 0,
        "callback_rate": 0.0,
        "due": 3,
        "on_time": 3,
        "on_time_rate": 1.0,
        "median_first_reply_seconds": 1800.0,
        "p90_first_reply_seconds": 6120.0,
        "overdue_now": 0,
        "rated": 2,
        "average_rating": 4.0,
    }
    assert row(rows, b) == {
        "key": b,
        "name": "李四",
        "received": 2,
        "replied": 1,
        "closed": 1,
        "reply_rate": 0.5,
        "answered": 1,  # 1+N: answers that reached the sender
        "called_back": 0,
        "callback_rate": 0.0,
        "due": 2,
        "on_time": 0,
        "on_time_rate": 0.0,
        "median_first_reply_seconds": 90000.0,
        "p90_first_reply_seconds": 90000.0,
        "overdue_now": 1,
        "rated": 0,
        "average_rating": None,
    }
    assert row(rows, None) == {
        "key": None,
        "name": "服务台（未分派）",
        "received": 1,
        "replied": 0,
        "closed": 0,
        "reply_rate": 0.0,
        "answered": 0,  # 1+N: answers that reached the sender
        "called_back": 0,
        "callback_rate": 0.0,
        "due": 1,
        "on_time": 0,
        "on_time_rate": 0.0,
        "median_first_reply_seconds": None,
        "p90_first_reply_seconds": None,
        "overdue_now": 1,
        "rated": 0,
        "average_rating": None,
    }
    total = report["total"]
    assert (total["received"], total["replied"], total["closed"]) == (6, 4, 3)
    assert total["reply_rate"] == pytest.approx(4 / 6) and total["on_time_rate"] == 0.5
    # [600, 1800, 7200, 90000]: the median is the mean of the middle two; p90 at rank 3.7
    assert total["median_first_reply_seconds"] == 4500.0
    assert total["p90_first_reply_seconds"] == pytest.approx(7200 + 0.7 * 82800)
    assert (total["overdue_now"], total["rated"], total["average_rating"]) == (2, 2, 4.0)

    by_category = await supervisor.workorder_stats(MONDAY, "2026-11-24", group_by="category")
    progress = row(by_category.body["rows"], "进度查询")  # o1 (1800 s) and o3 (90000 s)
    assert (progress["received"], progress["on_time"], progress["due"]) == (2, 1, 2)
    assert progress["median_first_reply_seconds"] == 45900.0
    assert progress["p90_first_reply_seconds"] == pytest.approx(1800 + 0.9 * 88200)
    assert row(by_category.body["rows"], "投诉")["overdue_now"] == 1
    by_court = await supervisor.workorder_stats(MONDAY, "2026-11-24", group_by="court")
    assert [(r["key"], r["name"], r["received"]) for r in by_court.body["rows"]] == [
        ("bj-chaoyang", "北京市朝阳区人民法院", 6)
    ]
    one_court = by_court.body["rows"][0]
    for report_row in (one_court, by_court.body["total"]):  # one group: the same numbers
        assert report_row["median_first_reply_seconds"] == 4500.0
        assert report_row["p90_first_reply_seconds"] == pytest.approx(65160.0)
    monday = (await supervisor.workorder_stats(MONDAY, MONDAY)).body["total"]
    assert monday["received"] == 5  # o6 came on Tuesday

    # a judge sees their own orders only; another court's supervisor sees theirs
    own = (await judge_a.workorder_stats(MONDAY, "2026-11-24")).body
    assert [r["key"] for r in own["rows"]] == [a] and own["total"]["received"] == 3
    pudong = (await far.workorder_stats(MONDAY, "2026-11-24", group_by="court")).body
    assert [(r["key"], r["received"]) for r in pudong["rows"]] == [("sh-pudong", 1)]
    sysadmin = await staff("admin", court_id=None)
    every = (await sysadmin.workorder_stats(MONDAY, "2026-11-24", group_by="court")).body
    assert {r["key"]: r["received"] for r in every["rows"]} == {"bj-chaoyang": 6, "sh-pudong": 1}
    assert every["total"]["received"] == 7
    only = await sysadmin.workorder_stats(MONDAY, "2026-11-24", court_id="sh-pudong")
    assert only.body["total"]["received"] == 1


@pytest.mark.gen_test(timeout=120)
async def test_percentiles_are_exact_at_any_count_and_with_ties(
    staff: Staff, services: Services, clock: FixedClock
) -> None:
    supervisor = await staff("clerk", supervisor=True)
    rng = random.Random(5)
    now = clock.now()
    sizes = {"g1": 1, "g2": 2, "g3": 3, "g4": 10, "g5": 57, "g6": 250}
    values: dict[str, list[float]] = {}
    docs = []
    for group, size in sizes.items():
        values[group] = []
        for i in range(size + 5):  # five of each group never answered
            seconds = float(rng.choice([60, 60, 300, rng.randrange(1, 200_000)]))
            answered = i < size
            if answered:
                values[group].append(seconds)
            docs.append(
                {
                    "_id": ObjectId(),
                    "no": f"{group}-{i}",
                    "court_id": "bj-chaoyang",
                    "created_at": now,
                    "assignee_id": group,
                    "category": "其他",
                    "status": "replied",
                    "case_staff_ids": [],
                    "first_reply_seconds": seconds if answered else None,
                    "first_reply_on_time": answered,
                    "first_reply_due_at": now,
                    "overdue_at": None,
                    "rating_score": None,
                }
            )
    await services.db["workorders"].insert_many(docs)
    # stored behind the service's back, as orders from before the rollups: the backfill
    await services.workorders.store.rebuild_rollups()
    report = (await supervisor.workorder_stats(MONDAY, MONDAY)).body
    for group, found in values.items():
        got = row(report["rows"], group)
        assert got["received"] == sizes[group] + 5 and got["replied"] == sizes[group]
        assert got["median_first_reply_seconds"] == pytest.approx(quantile(found, 0.5)), group
        assert got["p90_first_reply_seconds"] == pytest.approx(quantile(found, 0.9)), group
    everything = [v for found in values.values() for v in found]
    assert report["total"]["median_first_reply_seconds"] == pytest.approx(quantile(everything, 0.5))
    assert report["total"]["p90_first_reply_seconds"] == pytest.approx(quantile(everything, 0.9))


def test_ranks_around_a_quantile() -> None:
    assert ranks(1, 0.5) == (1, 1, 0.0)
    assert ranks(4, 0.5) == (2, 3, 0.5)
    assert ranks(4, 0.9) == (3, 4, pytest.approx(0.7))
    assert ranks(11, 0.9) == (10, 10, 0.0)


@pytest.mark.gen_test(timeout=60)
async def test_statistics_refuse_bad_input_and_other_courts(staff: Staff) -> None:
    supervisor = await staff("clerk", supervisor=True)
    sysadmin = await staff("admin", court_id=None)
    nowhere = await staff("clerk", court_id=None)
    bad = [
        {"from": "2026-11-24", "to": MONDAY},  # the wrong way round
        {"from": MONDAY},
        {"from": "2026-11-31", "to": "2026-12-01"},
        {"from": MONDAY, "to": MONDAY, "group_by": "judge"},
        {"from": "1999-01-01", "to": MONDAY},
    ]
    for params in bad:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        res = await supervisor.get(f"/api/v1/workorders/stats?{query}")
        assert error(res) == (422, "validation_failed"), (params, res.body)
    other = await supervisor.workorder_stats(MONDAY, MONDAY, court_id="sh-pudong")
    assert error(other) == (403, "other_court")
    unknown = await sysadmin.workorder_stats(MONDAY, MONDAY, court_id="nowhere")
    assert error(unknown) == (422, "unknown_court")
    assert error(await nowhere.workorder_stats(MONDAY, MONDAY)) == (403, "no_court")
    empty = (await supervisor.workorder_stats(MONDAY, MONDAY)).body
    assert empty["rows"] == [] and empty["total"]["received"] == 0
    assert empty["total"]["reply_rate"] is None
    assert empty["total"]["median_first_reply_seconds"] is None
