"""The statistics' aggregations, raw: what ``WorkOrderStats.stats`` runs for a supervisor of
the court (group by assignee), with the server's own pipelines (``match_stage``,
``counts_pipeline``, ``percentile_pipeline``), and the check of the API's answer."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pymongo import MongoClient

from bench import shapes
from bench.raw import Db
from bench.seed import SeedError
from bench.stack import DATABASE
from models.workorders import GroupBy
from server.workorders.stats import (
    KEYS,
    _quantiles,
    counts_pipeline,
    match_stage,
    percentile_pipeline,
)

KEY = KEYS[GroupBy.assignee]


def stats_head(first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """``WorkOrderStats._match`` of one court: created from ``first`` to ``last`` inclusive."""
    return [match_stage(shapes.calendar(), [shapes.COURT], first, last)]


async def raw_stats(db: Db, head: list[dict[str, Any]]) -> dict[str, Any]:
    """Both aggregations; the totals the check compares."""
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
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    with client:
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
