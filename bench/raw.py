"""The raw driver: pymongo's AsyncMongoClient doing what an endpoint does in the database, from
as many asyncio tasks as wrk has connections, for the same time (see bench/README.md)."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import PyMongoError

from bench import shapes
from bench.loadgen import LoadResult
from server.notify.inbox import NotificationService
from server.platform.clock import SystemClock

Db = AsyncDatabase[dict[str, Any]]
SyncDb = Database[dict[str, Any]]
Op = Callable[[], Awaitable[bool]]  # one operation; False: nothing found or matched
OpFactory = Callable[[Db, str], Op]  # (database, "warmup" or "measured") -> operation


class Exhausted(Exception):
    pass


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    misses: int = 0
    failures: int = 0
    exhausted: int = 0
    late: int = 0
    last_error: str = ""


#: the server's heartbeat timeout (``platform.mongo.connect``): with the driver's default a busy
#: SecantusDB answers a heartbeat late and the driver cancels the raw row's operation in flight
#: (the raw statistics at 1M orders, after 9 min)
HEARTBEAT_MS = 30000


def percentile_ms(sorted_seconds: list[float], pct: float) -> float:
    if not sorted_seconds:
        return 0.0
    index = max(0, math.ceil(pct / 100 * len(sorted_seconds)) - 1)  # nearest rank
    return sorted_seconds[index] * 1000


async def _worker(op: Op, until: float, tally: Tally) -> None:
    while (start := time.perf_counter()) < until:
        try:
            found = await op()
        except Exhausted:
            tally.exhausted += 1
            return
        except PyMongoError as e:
            tally.failures += 1
            tally.last_error = f"{type(e).__name__}: {e}"[:300]
            continue
        end = time.perf_counter()
        if end > until:  # finished after the deadline: not counted, as wrk does not
            tally.late += 1
            return
        tally.latencies.append(end - start)
        tally.misses += not found


async def drive(op: Op, tasks: int, seconds: float) -> Tally:
    tally = Tally()
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_worker(op, until, tally) for _ in range(tasks)))
    return tally


async def measure(
    name: str, uri: str, database: str, ops: OpFactory, tasks: int, seconds: int, warmup: int
) -> LoadResult:
    """A warm-up (thrown away), then the measured run, each with its own operation; counted
    as wrk counts (what completes within ``seconds``)."""
    async with connect(uri, tasks) as client:
        db = client[database]
        if warmup > 0:
            await drive(ops(db, "warmup"), tasks, warmup)
        tally = await drive(ops(db, "measured"), tasks, seconds)
    return result(name, tally, float(seconds))


def connect(uri: str, tasks: int = 1) -> AsyncMongoClient[dict[str, Any]]:
    pool = max(100, tasks)
    return AsyncMongoClient(uri, tz_aware=True, maxPoolSize=pool, connectTimeoutMS=HEARTBEAT_MS)


async def time_once(uri: str, database: str, call: Callable[[Db], Awaitable[Any]]) -> float:
    """Seconds ``call`` takes alone (on a connection already open)."""
    async with connect(uri) as client:
        await client.admin.command("ping")
        began = time.perf_counter()
        await call(client[database])
        return time.perf_counter() - began


def result(name: str, tally: Tally, elapsed: float) -> LoadResult:
    lat = sorted(tally.latencies)
    errors = {"driver_errors": tally.failures, "not_found": tally.misses}
    if tally.exhausted:
        errors["drafts_exhausted"] = tally.exhausted
    rps, p50, p99 = (
        len(lat) / elapsed if elapsed else 0.0,
        *(percentile_ms(lat, p) for p in (50, 99)),
    )
    return LoadResult(name, len(lat), elapsed, rps, p50, p99, errors, tally.last_error)


def find_one_ops(ids: list[ObjectId]) -> OpFactory:
    def factory(db: Db, phase: str) -> Op:
        pick, users = random.Random().choice, db["users"]

        async def op() -> bool:
            return await users.find_one({"_id": pick(ids)}) is not None

        return op

    return factory


def notifier(db: Db) -> NotificationService:
    return NotificationService(db, shapes.settings(), SystemClock())
