"""The statistics' aggregations, raw: what ``WorkOrderStats.stats`` runs for a supervisor of
the court (group by assignee), with the same pipelines, and the check of the API's answer."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import shapes
from pymongo import MongoClient
from raw import Db
from seed import SeedError
from stack import DATABASE

PERCENTILES = (0.5, 0.9)
KEY = "$assignee_id"


def end_of_day(day: dt.date) -> dt.datetime:
    return shapes.end_of_day(day)


def stats_head(first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """``WorkOrderStats._match`` of one court: created from ``first`` to ``last`` inclusive."""
    created = {"$gt": end_of_day(first - dt.timedelta(days=1)), "$lte": end_of_day(last)}
    return [{"$match": {"court_id": shapes.COURT, "created_at": created}}]


def _present(field: str) -> dict[str, Any]:
    return {"$ne": [{"$ifNull": [f"${field}", None]}, None]}


def _count(condition: dict[str, Any]) -> dict[str, Any]:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def counts_pipeline(head: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    replied = _present("first_reply_seconds")
    group = {
        "_id": KEY, "received": {"$sum": 1}, "replied": _count(replied),
        "closed": _count({"$eq": ["$status", "closed"]}),
        "due": _count({"$or": [replied, {"$lte": ["$first_reply_due_at", now]}]}),
        "on_time": _count({"$eq": ["$first_reply_on_time", True]}),
        "overdue_now": _count({"$and": [_present("overdue_at"), {"$lte": ["$overdue_at", now]}]}),
        "rated": _count(_present("rating_score")), "rating_sum": {"$sum": "$rating_score"},
    }  # fmt: skip
    return [*head, {"$group": group}]


def _targets(n: str) -> list[Any]:
    out: list[Any] = []
    for p in PERCENTILES:
        r = {"$multiply": [p, {"$subtract": [n, 1]}]}
        out += [{"$add": [{"$floor": r}, 1]}, {"$add": [{"$ceil": r}, 1]}]
    return out


def _window(field: str, direction: int, by_group: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"sortBy": {"s": direction, "_id": direction},
                            "output": {field: {"$documentNumber": {}}}}  # fmt: skip
    if by_group:
        spec["partitionBy"] = "$g"
    return {"$setWindowFields": spec}


def percentile_pipeline(head: list[dict[str, Any]], several: bool) -> list[dict[str, Any]]:
    """Numbered within each group, and (with ``several`` groups) over all of them."""
    windows = [_window("up", 1, True), _window("down", -1, True)]
    whole: dict[str, Any] = {"all_up": "$up", "all_n": "$n"}
    if several:
        windows += [_window("all_up", 1, False), _window("all_down", -1, False)]
        whole = {"all_n": {"$subtract": [{"$add": ["$all_up", "$all_down"]}, 1]}}
    return [
        *head,
        {"$match": {"first_reply_seconds": {"$ne": None}}},
        {"$project": {"g": KEY, "s": "$first_reply_seconds"}},
        *windows,
        {"$set": {"n": {"$subtract": [{"$add": ["$up", "$down"]}, 1]}}},
        {"$set": whole},
        {"$match": {"$expr": {"$or": [{"$in": ["$up", _targets("$n")]},
                                      {"$in": ["$all_up", _targets("$all_n")]}]}}},
        {"$project": {"_id": 0, "g": 1, "s": 1, "up": 1, "n": 1, "all_up": 1, "all_n": 1}},
    ]  # fmt: skip


def quantile(n: int, values: dict[int, float], p: float) -> float | None:
    if n < 1:
        return None
    r = p * (n - 1)
    low, high = math.floor(r) + 1, math.ceil(r) + 1
    return values[low] + (r - math.floor(r)) * (values[high] - values[low])


async def raw_stats(db: Db, head: list[dict[str, Any]]) -> dict[str, Any]:
    """Both aggregations; the totals the check compares."""
    now = dt.datetime.now(dt.UTC)
    totals = {"received": 0, "replied": 0, "rated": 0, "groups": 0}
    async for row in await db["workorders"].aggregate(counts_pipeline(head, now)):
        for key in ("received", "replied", "rated"):
            totals[key] += int(row[key])
        totals["groups"] += 1
    n, values = 0, {}
    pipeline = percentile_pipeline(head, totals["groups"] > 1)
    cursor = await db["workorders"].aggregate(pipeline, allowDiskUse=True)
    async for row in cursor:
        n = int(row["all_n"])
        values[int(row["all_up"])] = float(row["s"])
    return {**totals, "p50": quantile(n, values, 0.5), "p90": quantile(n, values, 0.9)}


def compare_stats(api_total: dict[str, Any], raw: dict[str, Any]) -> None:
    """The API's totals are the raw aggregations' (the counts that do not move with time)."""
    pairs = {
        "received": (api_total["received"], raw["received"]),
        "replied": (api_total["replied"], raw["replied"]),
        "rated": (api_total["rated"], raw["rated"]),
        "median": (api_total["median_first_reply_seconds"], raw["p50"]),
        "p90": (api_total["p90_first_reply_seconds"], raw["p90"]),
    }
    wrong = {k: v for k, v in pairs.items() if not _same(*v)}
    if wrong:
        raise SeedError(f"GET /workorders/stats differs from the raw aggregations: {wrong}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def explain_stats(uri: str, head: list[dict[str, Any]]) -> str:
    """The plan of the first stage, as ``STAGE(index) <- ...``."""
    with MongoClient(uri, tz_aware=True) as client:
        db = client[DATABASE]
        command = {"aggregate": "workorders", "pipeline": [*head, {"$count": "n"}], "cursor": {}}
        found = db.command("explain", command, verbosity="queryPlanner")
    plan = (found.get("stages") or [{}])[0].get("$cursor", found).get("queryPlanner", {})
    stage = plan.get("winningPlan", {})
    names = []
    while stage:
        index = f"({stage['indexName']})" if stage.get("indexName") else ""
        names.append(f"{stage.get('stage', '?')}{index}")
        stage = stage.get("inputStage")
    return " <- ".join(names) or "unknown"
