"""The microcourt benchmark: one command, one run, one table.

    python3 tasks.py bench [--smoke] [--users N] [--duration S] [--connections C] ...

Starts SecantusDB and ``microcourt serve`` as in production, seeds users, then drives
GET /healthz and GET /api/v1/me with wrk and the raw driver's find_one with pymongo, and
prints requests/s, p50, p99 and the ratios (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from loadgen import LoadResult, WrkRun, ensure_wrk, raw_find_one, wrk_version
from report import Stage, summarize_log, table, target_line, write_json
from report import ratios as compute_ratios
from seed import Seeded, SignedIn, http_json, insert_users, litigant_ids, sign_in
from stack import DATABASE, Stack

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
SMOKE = {"users": 200, "tokens": 20, "connections": 8, "duration": 1, "warmup": 1}
T = TypeVar("T")
FULL = {"users": 10_000, "tokens": 50, "connections": 64, "duration": 10, "warmup": 2}


@dataclass(frozen=True)
class Options:
    smoke: bool
    users: int
    tokens: int
    connections: int
    threads: int
    duration: int
    warmup: int
    json_path: Path
    keep: bool


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a few seconds, small sizes; for CI")
    p.add_argument("--users", type=int, help="users in the database (10000; smoke 200)")
    p.add_argument("--tokens", type=int, help="users signed in through the API (50; smoke 20)")
    p.add_argument("--connections", type=int, help="wrk connections = driver tasks (64; 8)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--duration", type=int, help="seconds per measured load (10; smoke 1)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up before each load (2; 1)")
    p.add_argument("--json", type=Path, help="results file (bench/out/results.json)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    sizes = {k: getattr(args, k) or v for k, v in (SMOKE if args.smoke else FULL).items()}
    if sizes["tokens"] > sizes["users"] or min(sizes.values()) < 1 or args.threads < 1:
        p.error("sizes must be positive and --tokens at most --users")
    default_json = OUT / ("smoke.json" if args.smoke else "results.json")
    return Options(
        smoke=args.smoke,
        threads=args.threads,
        json_path=args.json or default_json,
        keep=args.keep,
        **sizes,
    )


class Abort(Exception):
    """A stage failed and the ones after it cannot run."""


@dataclass
class Bench:
    opts: Options
    workdir: Path
    stages: list[Stage] = field(default_factory=list)
    results: dict[str, LoadResult] = field(default_factory=dict)
    wrk: str = ""
    server_exit: dict[str, int | None] = field(default_factory=dict)
    wrk_output: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        say(f"{name} ...")
        try:
            yield
        except Exception as e:
            self.stages.append(Stage(name, False, f"{type(e).__name__}: {e}"))
            raise Abort(f"{name}: {e}") from e
        self.stages.append(Stage(name, True))

    def record(self, result: LoadResult) -> None:
        key = {"healthz": "healthz", "GET /me": "me"}.get(result.name, "raw_find_one")
        self.results[key] = result
        detail = "" if result.ok else (result.problem or str(result.errors))
        self.stages.append(Stage(f"load {result.name}", result.ok, detail))
        say(
            f"  {result.name}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, {result.requests} requests"
            + ("" if result.ok else f"  FAILED: {detail}")
        )

    # ---- the stages

    def execute(self) -> None:
        with self.stage("wrk installed"):
            self.wrk = ensure_wrk()
        stack = Stack(self.workdir)
        try:
            with self.stage("start SecantusDB and microcourt serve"):
                stack.start()
            say(f"  api {stack.api}, emulator {stack.emulator}, db {stack.db_uri}")
            self.load(stack, self.seed(stack))
        finally:
            stack.stop()
            self.server_exit = dict(stack.exit_codes)

    def seed(self, stack: Stack) -> Seeded:
        o = self.opts
        with self.stage(f"sign in {o.tokens} users through the API"):
            signed_in = sign_in(stack.api, stack.emulator, o.tokens)
        with self.stage(f"insert {o.users - o.tokens} users with pymongo"):
            insert_users(stack.db_uri, DATABASE, o.users - o.tokens, stack.keys.data_key)
            ids = litigant_ids(stack.db_uri, DATABASE)
            expect(len(ids) == o.users, f"expected {o.users} litigants, found {len(ids)}")
        with self.stage("check GET /healthz and GET /api/v1/me"):
            check_endpoints(stack.api, signed_in[0])
        return Seeded(signed_in, ids)

    def load(self, stack: Stack, seeded: Seeded) -> None:
        o = self.opts
        tokens = self.workdir / "tokens.txt"
        tokens.write_text("".join(f"{s.token}\n" for s in seeded.signed_in))
        plain = WrkRun(self.wrk, o.threads, o.connections, o.duration)
        authed = WrkRun(
            self.wrk, o.threads, o.connections, o.duration, BENCH / "me.lua", (str(tokens),)
        )
        say(f"load: {o.connections} connections, {o.duration} s each after {o.warmup} s warm-up")
        self.record_wrk(plain, "healthz", f"{stack.api}/healthz")
        self.record_wrk(authed, "GET /me", f"{stack.api}/api/v1/me")
        say("raw find_one ...")
        try:
            result = asyncio.run(
                raw_find_one(
                    stack.db_uri, DATABASE, seeded.user_ids, o.connections, o.duration, o.warmup
                )
            )
        except Exception as e:
            result = LoadResult("raw find_one", problem=f"{type(e).__name__}: {e}")
        self.record(result)

    def record_wrk(self, run: WrkRun, name: str, url: str) -> None:
        say(f"wrk {name} ...")
        try:
            result, output = run.run(name, url, self.opts.warmup)
        except OSError as e:
            result, output = LoadResult(name, problem=f"cannot run wrk: {e}"), ""
        self.record(result)
        self.wrk_output[name] = output


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
    status, body = http_json(f"{api}/healthz")
    expect(status == 200 and body.get("status") == "ok", f"GET /healthz: {status} {body}")
    status, body = http_json(f"{api}/api/v1/me", headers={"Authorization": f"Bearer {user.token}"})
    expect(status == 200, f"GET /api/v1/me: {status} {body}")
    expect(body.get("id") == user.user_id and body.get("role") == "litigant", f"/me: {body}")


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# ---- after the run


def finish(bench: Bench, aborted: str) -> int:
    o = bench.opts
    log = summarize_log(bench.workdir / "server.log")
    bench.stages.append(check_log(log.levels, log.statuses))
    bench.stages.append(check_exit(bench.server_exit))
    OUT.mkdir(parents=True, exist_ok=True)
    problems = OUT / ("smoke-server-problems.jsonl" if o.smoke else "server-problems.jsonl")
    problems.write_text("".join(f"{line}\n" for line in log.problems))
    header = (
        f"microcourt bench{' (smoke)' if o.smoke else ''}: {o.users} users, "
        f"{o.tokens} signed in, {o.connections} connections, {o.duration} s per load "
        f"after {o.warmup} s warm-up, wrk {min(o.threads, o.connections)} threads, "
        f"{os.cpu_count()} CPUs"
    )
    target, met = target_line(bench.results)
    print("\n" + table(bench.results, header) + "\n" + target + "\n")
    failed = [s for s in bench.stages if not s.ok]
    print(f"stages: {len(bench.stages) - len(failed)} of {len(bench.stages)} passed")
    for s in failed:
        print(f"FAILED stage: {s.name}: {s.detail}")
    print_log_summary(log.levels, len(log.problems), problems)
    write_json(o.json_path, payload(bench, log.as_json(), met, aborted))
    say(f"results written to {o.json_path}")
    return 1 if failed or aborted else 0


def check_log(levels: Any, statuses: Any) -> Stage:
    bad_levels = {k: v for k, v in levels.items() if k in ("error", "critical")}
    bad_status = {k: v for k, v in statuses.items() if int(k.rsplit(" ", 1)[1]) >= 400}
    ok = not bad_levels and not bad_status
    return Stage(
        "server log: no errors, no 4xx/5xx", ok, "" if ok else f"{bad_levels} {bad_status}"
    )


def check_exit(codes: dict[str, int | None]) -> Stage:
    ok = codes.get("server") == 0
    return Stage("server stopped cleanly on SIGTERM", ok, "" if ok else f"exit codes {codes}")


def print_log_summary(levels: Any, problems: int, path: Path) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "empty"
    print(f"server log: {counts}; {problems} warning/error/4xx/5xx lines -> {path}")


def payload(bench: Bench, log: dict[str, Any], met: bool | None, aborted: str) -> dict[str, Any]:
    o = bench.opts
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ok": not aborted and all(s.ok for s in bench.stages),
        "aborted": aborted or None,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(o).items()},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "wrk": wrk_version(bench.wrk) if bench.wrk else None,
        },
        "results": {k: r.as_json() for k, r in bench.results.items()},
        "ratios": compute_ratios(bench.results),
        "ratio_definitions": {
            "healthz": "baseline (1.0)",
            "me": "me_rps / healthz_rps",
            "raw_find_one": "me_rps / raw_find_one_rps",
        },
        "target": {"me_over_healthz_at_least": 0.70, "met": met},
        "stages": [asdict(s) for s in bench.stages],
        "server_exit_codes": bench.server_exit,
        "server_log": log,
        "wrk_output": bench.wrk_output,
    }


def _terminated(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds through the same clean-up as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    workdir = Path(tempfile.mkdtemp(prefix="microcourt-bench-"))
    try:
        return run(Bench(opts, workdir))
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    finally:
        if opts.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(bench: Bench) -> int:
    aborted = ""
    try:
        bench.execute()
    except Abort as e:
        aborted = str(e)
        say(f"FAILED: {e}")
    return finish(bench, aborted)


if __name__ == "__main__":
    sys.exit(main())
