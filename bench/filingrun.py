"""The online-filing part of the run: seed pending filings, a clerk, filers and drafts; then
load the review queue's first page and filing submission, each through the API and raw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from bench import filingseed as fs
from bench import raw, shapes
from bench.loadgen import LoadResult, WrkRun
from bench.seed import SeedError, SignedIn, http_json
from bench.stack import DATABASE, Stack

if TYPE_CHECKING:
    from bench.run import Bench

BENCH = Path(__file__).resolve().parent
POOLS = ("api warmup", "api measured", "raw warmup", "raw measured")
KEYS = {
    "GET review queue": "queue",
    "raw queue find": "raw_queue",
    "POST submit": "submit",
    "raw submit": "raw_submit",
}
WRK_TIMEOUT = 30  # seconds: a slow answer is measured, not counted as an error
IDLE_MS = 50.0  # the database is idle again when a point read takes less than this


@dataclass(frozen=True)
class Filings:
    clerk: SignedIn
    filers: list[fs.Filer]
    pools: dict[str, list[tuple[str, ObjectId]]]  # the first of each: for the probes


def pool_sizes(bench: Bench) -> list[int]:
    """Drafts for each submit load: the most it could submit at ``--submit-cap`` per second."""
    o = bench.opts
    warm, measured = (o.submit_cap * s + o.connections for s in (o.warmup, o.duration))
    return [warm, measured, warm, measured]


def seed_filings(bench: Bench, stack: Stack, filer_ids: list[ObjectId]) -> Filings:
    o = bench.opts
    cipher = shapes.Cipher(stack.keys.data_key, stack.keys.hash_key.encode())
    with fs.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        with bench.stage(f"insert {o.filings} pending filings with pymongo"):
            pending = fs.insert_pending(db, cipher, [str(i) for i in filer_ids], o.filings)
        bench.fact("pending_filings", {**asdict(pending), "sample_id": str(pending.sample_id)})
        bench.note(
            f"seeded {pending.count} pending filings ({pending.green} green) in "
            f"{pending.seconds:.1f} s ({pending.count / max(pending.seconds, 1e-9):.0f}/s)"
        )
        with bench.stage(f"sign in a clerk of {shapes.COURT} (inserted, argon2 password)"):
            clerk = fs.make_clerk(stack.api, db)
        with bench.stage(f"sign in {o.filers} filers: identity and one PDF each, via the API"):
            filers = fs.make_filers(stack.api, stack.emulator, o.filers)
        pools = seed_drafts(bench, db, cipher, filers)
        with bench.stage("check the API's draft and filing against the seeded ones"):
            fs.check_shapes(stack.api, filers[0], (pools[POOLS[0]][0][1], pending.sample_id), db)
        with bench.stage("explain the review queue's query: IXSCAN"):
            explain(bench, db)
        with bench.stage(f"check GET {fs.QUEUE_PATH} against the raw query"):
            fs.check_queue(stack.api, clerk, db)
    return Filings(clerk, filers, pools)


def seed_drafts(
    bench: Bench, db: Any, cipher: shapes.Cipher, filers: list[fs.Filer]
) -> dict[str, list[tuple[str, ObjectId]]]:
    sizes = pool_sizes(bench)
    with bench.stage(f"insert {sum(sizes)} drafts with pymongo"):
        began = time.perf_counter()
        pairs = fs.insert_drafts(db, cipher, filers, sum(sizes))
        seconds = time.perf_counter() - began
    bench.fact("drafts", {"count": len(pairs), "seconds": seconds, "pools": sizes})
    bench.note(f"seeded {len(pairs)} drafts of {len(filers)} filers in {seconds:.1f} s")
    return dict(zip(POOLS, fs.split(pairs, sizes), strict=True))


def explain(bench: Bench, db: Any) -> None:
    stages = fs.explain_queue(db)
    names = [s.get("stage", "?") for s in stages]
    index = next((s.get("indexName") for s in stages if s.get("stage") == "IXSCAN"), None)
    blocking = "SORT" in names
    bench.fact("queue_plan", {"stages": names, "index": index, "blocking_sort": blocking})
    bench.note(
        f"review-queue plan: {' <- '.join(names)} ({index or 'no index'}); IXSCAN "
        f"{'yes' if index else 'NO'}; "
        + ("blocking SORT: every pending filing is read and sorted" if blocking else "no SORT")
    )
    if index is None:
        raise SeedError(f"the review queue's query does not use an index: {names}")


# ---- the loads


def load_filings(bench: Bench, stack: Stack, filings: Filings) -> None:
    load_queue(bench, stack, filings)
    load_submit(bench, stack, filings)


def load_queue(bench: Bench, stack: Stack, filings: Filings) -> None:
    def api_call() -> None:
        call_api(f"{stack.api}{fs.QUEUE_PATH}", filings.clerk.token, None)

    if not probe(bench, stack, ("GET review queue", "raw queue find"), api_call, raw.queue_page):
        return
    o = bench.opts
    tokens = bench.workdir / "clerk-token.txt"
    tokens.write_text(f"{filings.clerk.token}\n")
    script, args = BENCH / "me.lua", (str(tokens),)
    run = WrkRun(bench.wrk, o.threads, o.connections, o.duration, script, args, WRK_TIMEOUT)
    bench.record_wrk(run, "GET review queue", f"{stack.api}{fs.QUEUE_PATH}", "queue")
    settle(bench, stack, filings, "the review-queue load")
    bench.record_raw("raw queue find", "raw_queue", raw.queue_ops())


def load_submit(bench: Bench, stack: Stack, filings: Filings) -> None:
    (token, api_draft), (_, raw_draft) = (filings.pools[p][0] for p in (POOLS[0], POOLS[2]))

    def api_call() -> None:
        call_api(f"{stack.api}/api/v1/filings/{api_draft}/submit", token, {})

    async def raw_call(db: raw.Db) -> None:
        if not await raw.submit(db, raw_draft):
            raise SeedError(f"raw submit of {raw_draft}: draft not found")

    if not probe(bench, stack, ("POST submit", "raw submit"), api_call, raw_call):
        return
    o = bench.opts
    warm, measured = (
        submit_run(bench, filings, pool, seconds)
        for pool, seconds in ((POOLS[0], o.warmup), (POOLS[1], o.duration))
    )
    bench.record_wrk(measured, "POST submit", stack.api, "submit", warm=warm)
    settle(bench, stack, filings, "the API submit load")
    drafts = {
        phase: [i for _, i in filings.pools[pool][1:]]
        for phase, pool in (("warmup", POOLS[2]), ("measured", POOLS[3]))
    }
    bench.record_raw("raw submit", "raw_submit", raw.submit_ops(drafts))
    settle(bench, stack, filings, "the raw submit load")


def submit_run(bench: Bench, filings: Filings, pool: str, seconds: int) -> WrkRun:
    """wrk with submit.lua over one pool of drafts, written to a file of its own."""
    o = bench.opts
    path = bench.workdir / f"drafts-{pool.replace(' ', '-')}.txt"
    path.write_text("".join(f"{token} {i}\n" for token, i in filings.pools[pool][1:]))
    args = (str(path), str(min(o.threads, o.connections)))
    script = BENCH / "submit.lua"
    return WrkRun(bench.wrk, o.threads, o.connections, seconds, script, args, WRK_TIMEOUT)


def call_api(url: str, token: str, body: dict[str, Any] | None, timeout: float = 30) -> None:
    status, answer = http_json(url, body, fs.bearer(token), timeout=timeout)
    if status != 200:
        raise SeedError(f"{'POST' if body is not None else 'GET'} {url}: {status} {answer}")


def probe(
    bench: Bench,
    stack: Stack,
    names: tuple[str, str],
    api_call: Callable[[], None],
    raw_call: Callable[[raw.Db], Awaitable[Any]],
    keys: dict[str, str] = KEYS,
) -> bool:
    """One request alone through the API, one raw: whether the loads can run in time.

    SecantusDB runs one query at a time, so ``connections`` requests in flight take about
    ``connections`` times as long as one; if that exceeds the load's duration, nothing would
    complete and the database would be busy for minutes after: the loads are not run."""
    o, api_name = bench.opts, names[0]
    try:
        began = time.perf_counter()
        api_call()
        api_s = time.perf_counter() - began
        raw_s = asyncio.run(raw.time_once(stack.db_uri, DATABASE, raw_call))
    except Exception as e:
        return not_run(bench, names, f"one request alone failed: {type(e).__name__}: {e}", keys)
    bench.fact(f"{api_name} alone (s)", {"api": api_s, "raw": raw_s})
    bench.note(
        f"{api_name}, one request alone: API {api_s * 1000:.0f} ms, raw {raw_s * 1000:.0f} ms "
        f"(one at a time, API/raw = {raw_s / api_s:.2f})"
    )
    round_s = max(api_s, raw_s) * o.connections
    if round_s * 2 <= o.duration:  # concurrency costs more than the sum of lone requests
        return True
    bench.note(
        f"{api_name}: {o.connections} connections x {max(api_s, raw_s):.2f} s = ~{round_s:.0f} s "
        f"per round on the database, more than half the {o.duration} s load: measured one request "
        "at a time instead (the row's requests/s is 1 / latency)"
    )
    serially(bench, names, (api_s, raw_s), keys)
    return False


def serially(
    bench: Bench, names: tuple[str, str], seconds: tuple[float, float], keys: dict[str, str] = KEYS
) -> None:
    """Rows from the lone requests: SecantusDB serves one query at a time, so concurrency would
    only queue them; the ratio of one request's latencies is what can be measured."""
    for name, took in zip(names, seconds, strict=True):
        bench.record(
            LoadResult(name, requests=1, seconds=took, rps=1 / took, p50_ms=took * 1000,
                       p99_ms=took * 1000),
            keys[name],
        )  # fmt: skip


def not_run(bench: Bench, names: tuple[str, str], why: str, keys: dict[str, str] = KEYS) -> bool:
    for name in names:
        bench.record(LoadResult(name, problem=why), keys[name])
    return False


def settle(bench: Bench, stack: Stack, filings: Filings, after: str, limit: float = 300) -> None:
    """Wait for the work a load left behind: queries still running for requests wrk gave up
    on, and the outbox worker's sends of the notices just queued."""
    began = time.perf_counter()
    with fs.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        quiet = 0
        while quiet < 2 and time.perf_counter() - began < limit:
            start = time.perf_counter()
            db["users"].find_one({"_id": ObjectId(filings.clerk.user_id)})
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
