"""Load: wrk (install, run, parse), the result every load reports, the raw driver, and a row
pair: one request alone each, then wrk and the raw load (or the lone requests) (README)."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from bench import seed, shapes
from bench.stack import DATABASE
from server.notify.inbox import NotificationService
from server.platform.clock import SystemClock
from server.platform.mongo import DURABLE

if TYPE_CHECKING:
    from bench.run import Bench

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h)", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
# submit.lua "found no draft", notify.lua "found no order": a pool used up
_EXHAUSTED = re.compile(r"^\w+\.lua: (\d+) requests found no (\w+)$", re.M)


class WrkError(Exception):
    pass


@dataclass
class LoadResult:
    name: str
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and self.requests > 0 and not any(self.errors.values())

    def as_json(self) -> dict[str, Any]:
        found = {**asdict(self), "ok": self.ok, "requests_per_second": round(self.rps, 1)}
        del found["rps"]
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in found.items()}


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get (Debian package ``wrk``) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise WrkError("wrk is not installed; install it (Debian/Ubuntu: apt-get install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        print(f"bench: wrk not found; running {' '.join(argv)}", flush=True)
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise WrkError(f"{' '.join(argv)} failed; install wrk by hand")
    found = shutil.which("wrk")
    if not found:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    print(f"bench: installed {found}", flush=True)
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return ((out.stdout or out.stderr).splitlines() or [""])[0].strip()


def parse_wrk(name: str, text: str) -> LoadResult:
    """Requests/s, p50, p99 and errors from ``wrk --latency`` output (wrk or wrk2 style)."""
    rps, total = _RPS.search(text), _TOTAL.search(text)
    percentiles = {float(p): float(v) * _UNIT_MS[u] for p, v, u in _PERCENTILE.findall(text)}
    if not (rps and total and 50.0 in percentiles and 99.0 in percentiles):
        return LoadResult(name, problem="could not parse wrk output")
    socket_errors, non_2xx = _SOCKET.search(text), _NON_2XX.search(text)
    counts = [int(n) for n in socket_errors.groups()] if socket_errors else [0, 0, 0, 0]
    errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    errors["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    if exhausted := _EXHAUSTED.search(text):
        errors[f"{exhausted.group(2)}s_exhausted"] = int(exhausted.group(1))
    seconds = float(total.group(2)) * _UNIT_MS[total.group(3)] / 1000
    rate, p50, p99 = float(rps.group(1)), percentiles[50.0], percentiles[99.0]
    return LoadResult(name, int(total.group(1)), seconds, rate, p50, p99, errors)


@dataclass(frozen=True)
class WrkRun:
    wrk: str
    threads: int
    connections: int
    duration: int
    script: Path | None = None
    script_args: tuple[str, ...] = ()
    timeout: int | None = None  # seconds; wrk's default is 2

    def argv(self, url: str, seconds: int) -> list[str]:
        threads = min(self.threads, self.connections)
        argv = [self.wrk, f"-t{threads}", f"-c{self.connections}", f"-d{seconds}s", "--latency"]
        if self.timeout:
            argv += ["--timeout", f"{self.timeout}s"]
        if self.script:
            argv += ["-s", str(self.script)]
        return [*argv, url, *(["--", *self.script_args] if self.script_args else [])]

    def run(self, name: str, url: str, warmup: int) -> tuple[LoadResult, str]:
        """A warm-up (thrown away), then the measured run; the result and wrk's own output."""
        if warmup > 0:
            subprocess.run(self.argv(url, warmup), capture_output=True, check=False)
        argv = self.argv(url, self.duration)
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return LoadResult(name, problem=f"wrk exit {out.returncode}: {out.stderr.strip()}"), ""
        return parse_wrk(name, out.stdout), out.stdout


Db = AsyncDatabase[dict[str, Any]]
Session = AsyncClientSession
Op = Callable[[], Awaitable[Any]]  # one operation; its answer falsy: nothing found or matched
OpFactory = Callable[[Db, str], Op]  # (database, "warmup" or "measured") -> operation


class Exhausted(Exception):
    pass


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    misses: int = 0
    failures: int = 0
    exhausted: int = 0
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
    """A warm-up (thrown away), then the measured run; counted as wrk counts."""
    async with connect(uri, tasks) as client:
        db = client[database]
        if warmup > 0:
            await drive(ops(db, "warmup"), tasks, warmup)
        tally = await drive(ops(db, "measured"), tasks, seconds)
    return result(name, tally, float(seconds))


def connect(uri: str, tasks: int = 1) -> AsyncMongoClient[dict[str, Any]]:
    pool = max(100, tasks)
    # the raw rows write as the server does: acknowledged once on disk (server.platform.mongo)
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        maxPoolSize=pool,
        connectTimeoutMS=HEARTBEAT_MS,
        w=DURABLE.document["w"],
        journal=True,
    )


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
    rps = len(lat) / elapsed if elapsed else 0.0
    p50, p99 = (percentile_ms(lat, p) for p in (50, 99))
    return LoadResult(name, len(lat), elapsed, rps, p50, p99, errors, tally.last_error)


def find_one_ops(ids: list[ObjectId]) -> OpFactory:
    """``users.find_one`` by an id drawn from ``ids``."""
    return lambda db, _: lambda: db["users"].find_one({"_id": random.choice(ids)})


def notifier(db: Db) -> NotificationService:
    return NotificationService(db, shapes.settings(), SystemClock())


BENCH = Path(__file__).resolve().parent
IDLE_MS = 50.0  # the database is idle again when a point read takes less than this
ONE_AT_A_TIME = "one request at a time instead (the row's requests/s is 1 / latency)"
Names = tuple[str, str]  # (API row, raw row); their result keys likewise
RawCall = Callable[[Db], Awaitable[Any]]


def wrk(bench: Bench, script: str, args: tuple[str, ...], seconds: int | None = None) -> WrkRun:
    """wrk with one of the bench's Lua scripts and a 30 s timeout."""
    o, script_path = bench.opts, BENCH / script
    return WrkRun(bench.wrk, o.threads, o.connections, seconds or o.duration, script_path, args, 30)


def token_file(bench: Bench, token: str, name: str) -> str:
    path = bench.workdir / f"token-{name}.txt"
    path.write_text(f"{token}\n")
    return str(path)


@dataclass(frozen=True)
class Row:
    """An API row and its raw row (results ``key``, ``raw_{key}``): alone, ``url`` with
    ``token`` (POST ``body`` if any, answered ``status``) and ``raw_call``; loaded, ``run``
    (else me.lua on ``url``) after ``warm``, and ``raw_ops`` (else ``raw_call`` repeated);
    ``at_once``, see ``round_fits``."""

    names: Names
    key: str
    url: str
    token: str
    raw_call: RawCall
    body: dict[str, Any] | None = None
    status: int = 200
    timeout: float = 30
    run: WrkRun | None = None
    warm: Callable[[], object] | None = None  # a warm-up (None: ``run`` for --warmup s)
    raw_ops: OpFactory | None = None
    at_once: int = 0  # how many the server runs at a time (``round_fits``); 0: all


def pair(bench: Bench, row: Row, lone: tuple[float, float] | None = None) -> None:
    """One request alone each (or the ``lone`` times), then wrk and the raw load, each settled."""
    names, keys = row.names, (row.key, f"raw_{row.key}")
    if lone is None:
        try:
            lone = alone(bench, row)[1]
        except Exception as e:
            problem = f"one request alone failed: {type(e).__name__}: {e}"
            for name, key in zip(names, keys, strict=True):
                bench.record(LoadResult(name, problem=problem), key)
            return
    if not round_fits(bench, names[0], max(lone), at_once=row.at_once):
        for name, k, took in zip(names, keys, lone, strict=True):
            bench.record(LoadResult(name, 1, took, 1 / took, took * 1000, took * 1000), k)
        return
    run = row.run or wrk(bench, "me.lua", (token_file(bench, row.token, row.key),))
    bench.record_wrk(run, names[0], row.url, row.key, row.warm)
    settle(bench, f"the {names[0]} load")
    bench.record_raw(names[1], keys[1], row.raw_ops or (lambda db, _: lambda: row.raw_call(db)))
    settle(bench, f"the {names[1]} load")


#: requests alone per side of a read row: their median is its one-request latency, which the
#: growth ratios compare (a loaded p50 at one size against a lone one at the other would not)
LONE = 5
LONE_SECONDS = 1.0  # a slower row (the statistics) is timed once


def alone(bench: Bench, row: Row) -> tuple[Any, tuple[float, float]]:
    """Requests alone through the API and raw (``LONE`` of each for a read, unless they take
    over ``LONE_SECONDS``; one for a write):
    the API's answer and their median seconds, kept in ``bench.lone`` by row name."""
    times: list[float] = []
    while len(times) < (LONE if row.body is None else 1) and sum(times) < LONE_SECONDS:
        began = time.perf_counter()
        answer = seed.call(row.url, row.body, row.token, status=row.status, timeout=row.timeout)
        times.append(time.perf_counter() - began)
    raws = [asyncio.run(time_once(bench.db_uri, DATABASE, row.raw_call)) for _ in times]
    api_s, raw_s = statistics.median(times), statistics.median(raws)
    bench.lone |= {row.names[0]: api_s, row.names[1]: raw_s}
    bench.fact(f"{row.names[0]} alone (s)", {"api": api_s, "raw": raw_s, "requests": len(times)})
    bench.note(
        f"{row.names[0]}, alone (median of {len(times)}): API {api_s * 1000:.0f} ms, raw "
        f"{raw_s * 1000:.0f} ms (one at a time, API/raw = {raw_s / api_s:.2f})"
    )
    return answer, (api_s, raw_s)


def round_fits(
    bench: Bench, name: str, lone: float, instead: str = ONE_AT_A_TIME, at_once: int = 0
) -> bool:
    """Whether ``connections`` requests of ``lone`` seconds, one after another as SecantusDB
    serves them, take at most half the load (else nothing would complete); if not, says so.
    ``at_once``: the server runs at most that many of them at a time (its transactions'
    turns), the others waiting their turn, so they complete steadily: a round is that many,
    and the load must hold five rounds for a rate (the smoke's 1 s loads did not: its raw
    callback row completed none, twice)."""
    o = bench.opts
    together = min(o.connections, at_once or o.connections)
    round_s = lone * together
    # concurrency costs more than the sum of lone requests
    if round_s * (5 if at_once else 2) <= o.duration:
        return True
    bench.note(
        f"{name}: {together} at once x {lone:.2f} s = ~{round_s:.0f} s per round on "
        f"the database, more than half the {o.duration} s load: measured {instead}"
    )
    return False


def settle(bench: Bench, after: str, limit: float = 300) -> None:
    """Wait for the work a load left behind: queries wrk gave up on, the outbox's sends."""
    began = time.perf_counter()
    with seed.client(bench.db_uri) as mongo:
        db, quiet = mongo[DATABASE], 0
        while quiet < 2 and time.perf_counter() - began < limit:
            start = time.perf_counter()
            db["users"].find_one({"_id": ObjectId()})  # a point read
            slow = (time.perf_counter() - start) * 1000 > IDLE_MS
            sending = db["outbox"].find_one({"status": {"$in": ["pending", "sending"]}}, {"_id": 1})
            quiet = 0 if slow or sending else quiet + 1
            time.sleep(0.1 if quiet == 0 else 0.02)
    waited = time.perf_counter() - began
    bench.fact(f"busy after {after} (s)", round(waited, 2))
    if waited >= limit:
        bench.note(f"database or outbox still busy {limit:.0f} s after {after}")
    elif waited > 1.0:
        bench.note(f"database and outbox busy for {waited:.1f} s after {after}")
