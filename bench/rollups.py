"""The statistics' rollups in the bench: the backfill over the seeded orders (they are
inserted behind the API's back), and a year's report at a size seeded as rollups only (the
rollups' number, not the orders', is what the report reads): README, "Work-order statistics".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

from bench import raw, seed, shapes
from bench.report import size_label
from bench.stack import DATABASE
from server.platform.db import close
from server.platform.mongo import connect
from server.workorders import rollups
from server.workorders.store import WorkOrderStore

if TYPE_CHECKING:
    from bench.run import Bench

STATS_PATH = "/api/v1/workorders/stats"
TIMES = 5  # requests alone; the median is the row's latency
LIMIT_S = 1.0  # issue 17: a year's report over 1M orders in under 1 s


def rebuild(bench: Bench) -> None:
    """``microcourt rollups rebuild``'s work over the seeded orders (the server idle)."""

    async def run() -> int:
        client = connect(bench.db_uri)
        try:
            store = WorkOrderStore(client[DATABASE], rollups.zones(shapes.settings()))
            return await store.rebuild_rollups()
        finally:
            await close(client)

    began = time.perf_counter()
    with bench.stage("rebuild the statistics' rollups from the seeded orders"):
        cells = asyncio.run(run())
    took = time.perf_counter() - began
    bench.fact("rollups rebuilt (cells, s)", {"cells": cells, "seconds": round(took, 2)})
    bench.note(f"rollups rebuilt from the seeded orders: {cells} cells in {took:.1f} s")


def year_of_cells(
    first: dt.date, orders: int, assignees: list[str], rng: random.Random
) -> list[dict[str, Any]]:
    """The by-assignee cells of 365 days from ``first`` holding ``orders`` orders in all:
    8 % unassigned, 85 % of the rest answered, about every fifth closed and rated."""
    per_day, cells = orders // 365, list[dict[str, Any]]()
    keys: list[str | None] = [None, *assignees]
    for i in range(365):
        day = (first + dt.timedelta(days=i)).isoformat()
        g: dict[str, dict[str, object]] = {}
        for n, key in zip(_split(per_day, len(keys), rng), keys, strict=True):
            replied = 0 if key is None else int(n * 0.85)
            seconds = [rng.uniform(60, 5 * 86400) for _ in range(replied)]
            g[rollups.key_name(key)] = {
                "key": key,
                **{"received": n, "replied": replied, "on_time": int(replied * 0.9)},
                **{"closed": replied // 5, "rated": replied // 5, "rating_sum": replied // 5 * 4},
                "s": rollups.pack(seconds),
                "w": {},
                "o": {},
            }
        cid = f"{shapes.COURT}|assignee|{day}"
        cells.append({"_id": cid, "court_id": shapes.COURT, "by": "assignee", "day": day, "g": g})
    return cells


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    first = total * 8 // 100  # the desk's unassigned
    rest = [total - first] + [0] * (parts - 2)
    for _ in range((total - first) // 2):  # uneven, as judges' loads are
        a, b = rng.randrange(parts - 1), rng.randrange(parts - 1)
        if a != b and rest[a] > 0:
            rest[a] -= 1
            rest[b] += 1
    return [first, *rest]


def year_row(bench: Bench, api: str, token: str, assignees: list[str], orders: int) -> None:
    """A year's report by assignee over ``orders`` orders' rollups, seeded for the year that
    ended 800 days ago (no seeded order is that old), timed alone: the row and its target."""
    label = size_label(orders)
    first = dt.date.today() - dt.timedelta(days=800)
    last = first + dt.timedelta(days=364)
    with bench.stage(f"seed a year of rollups: {label} orders' worth, by assignee"):
        cells = year_of_cells(first, orders, assignees, random.Random(11))
        with seed.client(bench.db_uri) as mongo:
            for i in range(0, len(cells), 20):
                mongo[DATABASE]["workorder_rollups"].insert_many(cells[i : i + 20])
    url = f"{api}{STATS_PATH}?from={first}&to={last}&group_by=assignee"
    times, report = [], {}
    for _ in range(TIMES):
        began = time.perf_counter()
        report = seed.call(url, None, token, timeout=120)
        times.append(time.perf_counter() - began)
    seeded = sum(k["received"] for c in cells for k in c["g"].values())
    if report["total"]["received"] != seeded:
        raise seed.SeedError(f"the year's report counts {report['total']['received']} orders")
    took = statistics.median(times)
    name = f"GET workorder stats year {label} (rollups)"
    bench.record(
        raw.LoadResult(name, TIMES, sum(times), 1 / took, took * 1000, max(times) * 1000),
        "stats_year",
    )
    bench.fact(f"{name} alone (s)", {"median": took, "max": max(times), "cells": len(cells)})
    bench.note(f"{name}: {took * 1000:.0f} ms alone (median of {TIMES}), {len(cells)} cells")
