"""The microcourt benchmark: one command, one run, one table (see bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from bson import ObjectId

from bench import processes, raw
from bench.cases import run_cases
from bench.filing import load_filings, seed_filings
from bench.messages import run_messages
from bench.payments import run_payments
from bench.report import OUT, Stage, finish
from bench.seed import SeedError, SignedIn, api_login, call, client, insert_users
from bench.stack import DATABASE, Stack

T = TypeVar("T")
Warm = Callable[[], object] | None  # a warm-up before a wrk load (None: the load's own script)
# option: (full run, smoke, help); each --option overrides both
SIZES: dict[str, tuple[int, int, str]] = {
    "users": (10_000, 200, "users in the database"),
    "tokens": (50, 20, "users signed in through the API"),
    "filings": (100_000, 500, "pending filings"),
    "filers": (50, 8, "litigants who submit drafts"),
    "submit_cap": (600, 300, "submits/s there are drafts for"),
    "cases": (10_000, 300, "cases in the database"),
    "pay_cap": (100, 100, "callbacks/s there are orders for"),
    "connections": (64, 8, "wrk connections = driver tasks"),
    "duration": (5, 1, "seconds per measured load"),
    "warmup": (2, 1, "seconds of warm-up before each load"),
    "open_orders": (2_000, 300, "orders past a deadline to sweep"),
    "orders": (5_000, 1500, "work orders for the statistics"),
    "rollup_orders": (1_000_000, 100_000, "orders' worth of a year's statistics rollups"),
    "peak_rate": (34, 34, "writes/s of the peak rows (the national peak's filings/s)"),
    "peak_seconds": (10, 3, "seconds of each peak row"),
}
# the case rows' second size: their growth is the p50 ratio between the two sizes (the
# issue's 10k and 100k; with the embedded database's stall mended, inserts run ~1,000 a
# second and the run fits its 15 minutes: README "Performance")
CASES_LARGE = (100_000, 600)
# 1,380,000 + 23,456,789 x 0.9% = 1,591,111.101 fen -> 1,591,111; halved 795,556 fen
FEE_ESTIMATE = (
    "/api/v1/fees/estimate?kind=property&amount_fen=123456789&procedure=simplified"
    "&court_id=bj-chaoyang"
)
FEE_EXPECTED = 795_556


class Options(argparse.Namespace):
    """The command line; the sizes (``SIZES``: users, tokens, ...) are ints."""

    smoke: bool
    cases_large: int
    threads: int  # at most ``connections``
    json_path: Path
    keep: bool
    only_messages: bool

    def __getattr__(self, size: str) -> int:  # SIZES' names, set by parse_args
        raise AttributeError(size)

    def case_sizes(self) -> list[int]:
        return [n for n in (self.cases, self.cases_large) if n]


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a few seconds, small sizes; for CI")
    for name, (full, smoke, what) in SIZES.items():
        flag = f"--{name}".replace("_", "-")
        p.add_argument(flag, type=int, help=f"{what} ({full}; smoke {smoke})")
    p.add_argument(
        "--cases-large",
        type=int,
        help=f"then the case rows at this many ({CASES_LARGE[0]}; smoke {CASES_LARGE[1]}; 0: no)",
    )
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--only-messages", action="store_true", help="only the message rows")
    p.add_argument("--json", dest="json_path", type=Path, help="results (bench/out/results.json)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    o = p.parse_args(argv, namespace=Options())
    if o.cases_large is None:
        o.cases_large = CASES_LARGE[o.smoke]
    for name, default in SIZES.items():
        setattr(o, name, int(getattr(o, name) or default[o.smoke]))
    if o.tokens > o.users or min(getattr(o, k) for k in SIZES) < 1 or o.threads < 1:
        p.error("sizes must be positive and --tokens at most --users")
    if o.cases_large and o.cases_large <= o.cases:
        p.error("--cases-large must be more than --cases")
    if o.orders <= o.open_orders or o.filers < 2:
        p.error("--orders must be more than --open-orders, and --filers at least 2")
    o.threads = min(o.threads, o.connections)
    o.json_path = o.json_path or OUT / ("smoke.json" if o.smoke else "results.json")
    return o


class Abort(Exception):
    pass


@dataclass
class Bench:
    opts: Options
    workdir: Path
    stages: list[Stage] = field(default_factory=list)
    results: dict[str, raw.LoadResult] = field(default_factory=dict)
    wrk: str = ""
    server_exit: dict[str, int | None] = field(default_factory=dict)
    wrk_output: dict[str, str] = field(default_factory=dict)
    db_uri: str = ""
    notes: list[str] = field(default_factory=list)  # printed under the table
    facts: dict[str, Any] = field(default_factory=dict)  # seeding and checks, for the JSON
    began: float = field(default_factory=time.monotonic)  # for the run's time (a target)
    lone: dict[str, float] = field(default_factory=dict)  # row -> median s of it alone

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        say(f"{name} ...")
        began = time.perf_counter()
        try:
            yield
        except Exception as e:
            self.stages.append(Stage(name, False, f"{type(e).__name__}: {e}"))
            raise Abort(f"{name}: {e}") from e
        seconds = round(time.perf_counter() - began, 2)
        self.stages.append(Stage(name, True, seconds=seconds))
        if seconds >= 1:
            say(f"  done in {seconds:.1f} s")

    @contextmanager
    def inserting(self, count: int, what: str) -> Iterator[None]:
        """The stage ``insert {count} {what}``; its time kept and its rate noted."""
        began = time.perf_counter()
        with self.stage(f"insert {count} {what}"):
            yield
        took = time.perf_counter() - began
        self.fact(f"insert {what} (s)", round(took, 1))
        self.note(f"inserted {count} {what} in {took:.1f} s ({count / max(took, 1e-9):.0f}/s)")

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  {text}")

    def fact(self, key: str, value: Any) -> None:
        self.facts[key] = value

    def record(self, result: raw.LoadResult, key: str) -> None:
        self.results[key] = result
        detail = "" if result.ok else (result.problem or str(result.errors))
        self.stages.append(Stage(f"load {result.name}", result.ok, detail))
        rate = f"{result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
        failed = "" if result.ok else f"  FAILED: {detail}"
        say(f"  {result.name}: {rate}, {result.requests} requests{failed}")

    # ---- the stages

    def execute(self) -> None:
        with self.stage("wrk installed"):
            self.wrk = raw.ensure_wrk()
        stack = Stack(self.workdir)
        try:
            with self.stage("start SecantusDB and microcourt serve"):
                stack.start()
            say(f"  api {stack.api}, emulator {stack.emulator}, db {stack.db_uri}")
            self.db_uri = stack.db_uri
            signed_in, user_ids = self.seed(stack)
            # the foundation rows first, before bulk seeding leaves the database flushing
            if not self.opts.only_messages:
                self.load(stack, signed_in, user_ids)
            filings = seed_filings(self, stack, user_ids)
            if not self.opts.only_messages:
                load_filings(self, stack, filings)
                run_cases(self, stack, filings, user_ids)
                run_payments(self, stack, filings)
            run_messages(self, stack, filings, user_ids)
        finally:
            stack.stop()
            self.server_exit = dict(stack.exit_codes)

    def seed(self, stack: Stack) -> tuple[list[SignedIn], list[ObjectId]]:
        o = self.opts
        with self.stage(f"sign in {o.tokens} users through the API"), ThreadPoolExecutor(8) as pool:
            phones = range(1, o.tokens + 1)
            signed_in = list(pool.map(lambda n: api_login(stack.api, stack.emulator, n), phones))
        with self.inserting(o.users - o.tokens, "users with pymongo"):
            with client(stack.db_uri) as mongo:
                ids = insert_users(mongo[DATABASE], o.users - o.tokens, stack.keys.data_key)
            if len(ids) != o.users:
                raise SeedError(f"expected {o.users} litigants, found {len(ids)}")
        with self.stage("check GET /healthz, GET /api/v1/me and the fee estimate"):
            check_endpoints(stack.api, signed_in[0])
        return signed_in, ids

    def load(self, stack: Stack, signed_in: list[SignedIn], user_ids: list[ObjectId]) -> None:
        o = self.opts
        tokens = self.workdir / "tokens.txt"
        tokens.write_text("".join(f"{s.token}\n" for s in signed_in))
        plain, authed, post = processes.runs(self, tokens)
        say(f"load: {o.connections} connections, {o.duration} s each after {o.warmup} s warm-up")
        raw.settle(self, "seeding the users")  # the database quiet again: it shares the CPUs
        processes.edge_rows(self, stack, plain, authed)
        self.record_raw("raw find_one", "raw_find_one", raw.find_one_ops(user_ids))
        self.record_wrk(plain, "GET fee estimate", f"{stack.api}{FEE_ESTIMATE}", "fees")
        self.record_wrk(post, "POST subscriptions", f"{stack.api}{processes.WRITE_PATH}", "write")
        processes.two_processes(self, stack, tokens)

    def record_wrk(self, run: raw.WrkRun, name: str, url: str, key: str, warm: Warm = None) -> None:
        """``run``, after a warm-up: ``warm()``, else ``run`` itself for --warmup s."""
        self.say_load(name)
        try:
            if warm is not None:
                warm()
            result, output = run.run(name, url, 0 if warm else self.opts.warmup)
        except OSError as e:
            result, output = raw.LoadResult(name, problem=f"cannot run wrk: {e}"), ""
        self.record(result, key)
        self.wrk_output[name] = output

    def say_load(self, name: str) -> None:
        say(f"wrk {name} ...")

    def record_raw(self, name: str, key: str, ops: raw.OpFactory) -> None:
        o = self.opts
        say(f"{name} ...")
        work = raw.measure(name, self.db_uri, DATABASE, ops, o.connections, o.duration, o.warmup)
        self.record_async(name, key, work)

    def record_async(self, name: str, key: str, work: Coroutine[Any, Any, raw.LoadResult]) -> None:
        """``work``'s result, or its failure, as the row ``name``."""
        try:
            result = asyncio.run(interruptible(work))
        except Exception as e:
            result = raw.LoadResult(name, problem=f"{type(e).__name__}: {e}")
        self.record(result, key)


async def interruptible(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``; SIGTERM cancels it cleanly (Ctrl-C already does, by asyncio.run)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _terminated)


def check_endpoints(api: str, user: SignedIn) -> None:
    health, me = call(f"{api}/healthz"), call(f"{api}/api/v1/me", token=user.token)
    fee = call(f"{api}{FEE_ESTIMATE}").get("fee_fen")
    for ok, message in (
        (health.get("status") == "ok", f"GET /healthz: {health}"),
        (me.get("id") == user.user_id and me.get("role") == "litigant", f"/me: {me}"),
        (fee == FEE_EXPECTED, f"fee estimate: {fee} fen, expected {FEE_EXPECTED}"),
    ):
        if not ok:
            raise SeedError(message)


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def _terminated(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds through the same clean-up as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    workdir = Path(tempfile.mkdtemp(prefix="microcourt-bench-"))
    bench, aborted = Bench(opts, workdir), ""
    try:
        try:
            bench.execute()
        except Abort as e:
            aborted = str(e)
            say(f"FAILED: {e}")
        return finish(bench, aborted)
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    finally:
        if opts.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
