"""A row pair: one request alone each, then wrk and the raw load (or the lone requests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from bench import raw
from bench.seed import call, client
from bench.stack import DATABASE

if TYPE_CHECKING:
    from bench.run import Bench

BENCH = Path(__file__).resolve().parent
IDLE_MS = 50.0  # the database is idle again when a point read takes less than this
ONE_AT_A_TIME = "one request at a time instead (the row's requests/s is 1 / latency)"
Names = tuple[str, str]  # (API row, raw row); their result keys likewise
RawCall = Callable[[raw.Db], Awaitable[Any]]


def wrk(bench: Bench, script: str, args: tuple[str, ...], seconds: int | None = None) -> raw.WrkRun:
    """wrk with one of the bench's Lua scripts and a 30 s timeout."""
    o, script_path = bench.opts, BENCH / script
    return raw.WrkRun(
        bench.wrk, o.threads, o.connections, seconds or o.duration, script_path, args, 30
    )


def token_file(bench: Bench, token: str, name: str) -> str:
    path = bench.workdir / f"token-{name}.txt"
    path.write_text(f"{token}\n")
    return str(path)


@dataclass(frozen=True)
class Row:
    """An API row and its raw row (results ``key``, ``raw_{key}``): alone, ``url`` with
    ``token`` (POST ``body`` if any, answered ``status``) and ``raw_call``; loaded, ``run``
    (else me.lua on ``url``) after ``warm``, and ``raw_ops`` (else ``raw_call`` repeated)."""

    names: Names
    key: str
    url: str
    token: str
    raw_call: RawCall
    body: dict[str, Any] | None = None
    status: int = 200
    timeout: float = 30
    run: raw.WrkRun | None = None
    warm: Callable[[], object] | None = None  # a warm-up (None: ``run`` for --warmup s)
    raw_ops: raw.OpFactory | None = None


def pair(bench: Bench, row: Row, lone: tuple[float, float] | None = None) -> None:
    """Probe (or the ``lone`` times), then wrk and the raw load, each settled."""
    names, keys = row.names, (row.key, f"raw_{row.key}")
    lone = lone or probe(bench, row, keys)
    if lone is None:
        return
    if not round_fits(bench, names[0], max(lone)):
        for name, k, took in zip(names, keys, lone, strict=True):
            bench.record(raw.LoadResult(name, 1, took, 1 / took, took * 1000, took * 1000), k)
        return
    run = row.run or wrk(bench, "me.lua", (token_file(bench, row.token, row.key),))
    bench.record_wrk(run, names[0], row.url, row.key, row.warm)
    settle(bench, f"the {names[0]} load")
    bench.record_raw(names[1], keys[1], row.raw_ops or (lambda db, _: lambda: row.raw_call(db)))
    settle(bench, f"the {names[1]} load")


def probe(bench: Bench, row: Row, keys: Names) -> tuple[float, float] | None:
    """One request alone through the API, one raw: their seconds (None if one failed)."""
    names = row.names
    try:
        began = time.perf_counter()
        call(row.url, row.body, row.token, status=row.status, timeout=row.timeout)
        api_s = time.perf_counter() - began
        raw_s = asyncio.run(raw.time_once(bench.db_uri, DATABASE, row.raw_call))
    except Exception as e:
        for name, key in zip(names, keys, strict=True):
            problem = f"one request alone failed: {type(e).__name__}: {e}"
            bench.record(raw.LoadResult(name, problem=problem), key)
        return None
    bench.fact(f"{names[0]} alone (s)", {"api": api_s, "raw": raw_s})
    bench.note(
        f"{names[0]}, one request alone: API {api_s * 1000:.0f} ms, raw {raw_s * 1000:.0f} ms "
        f"(one at a time, API/raw = {raw_s / api_s:.2f})"
    )
    return api_s, raw_s


def round_fits(bench: Bench, name: str, lone: float, instead: str = ONE_AT_A_TIME) -> bool:
    """Whether ``connections`` requests of ``lone`` seconds, one after another as SecantusDB
    serves them, take at most half the load (else nothing would complete); if not, says so."""
    o = bench.opts
    round_s = lone * o.connections
    if round_s * 2 <= o.duration:  # concurrency costs more than the sum of lone requests
        return True
    bench.note(
        f"{name}: {o.connections} connections x {lone:.2f} s = ~{round_s:.0f} s per round on "
        f"the database, more than half the {o.duration} s load: measured {instead}"
    )
    return False


def settle(bench: Bench, after: str, limit: float = 300) -> None:
    """Wait for the work a load left behind: queries wrk gave up on, the outbox's sends."""
    began = time.perf_counter()
    with client(bench.db_uri) as mongo:
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
