"""The soak: mixed writes at many connections for minutes, as an operator would load it.

``python -m bench.soak --seconds 180 --connections 64`` starts the stack as the bench does
(``bench/stack.py``), seeds one court's pending filings, drafts and an assigned case
(``bench/seed.py``, ``bench/filing.py``), then drives ``--connections`` concurrent
connections of keyed writes: acceptances (``POST /review/filings/{id}/accept``), submits
(``POST /filings/{id}/submit``) and messages (``POST /messages``), mixed by ``--mix``. It
prints per kind the count, the statuses, p50/p95/p99/max and the 503s; then how many cases
still owe their acceptance documents and, per accepted case, how long its documents took
from the acceptance to the last of them served (README, "Transactions under load").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId

from bench import cases as cs
from bench import filing as fs
from bench import seed, shapes
from bench.stack import DATABASE, Stack

KINDS = ("accept", "submit", "message")
MESSAGE = {"category": "庭审安排", "content": "请问本案何时开庭？能否线上开庭？"}
JUDGE_N = fs.FILER_BASE - 2  # X-Real-Ip numbers of the staff signed in
#: the acceptance documents of a civil case with a prepaid fee
DOCUMENT_KINDS = ("受理通知书", "诉讼权利义务告知书", "举证通知书", "缴费通知书")


class Options(argparse.Namespace):
    seconds: float
    connections: int
    mix: str
    filings: int
    drafts: int
    filers: int
    timeout: float
    drain: float
    keep: bool
    json: str | None
    render_processes: int | None


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--seconds", type=float, default=180, help="how long to load (180)")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections (64)")
    p.add_argument("--mix", default="40,30,30", help="percent accept,submit,message (40,30,30)")
    p.add_argument("--filings", type=int, default=4000, help="pending filings to accept (4000)")
    p.add_argument("--drafts", type=int, default=4000, help="drafts to submit (4000)")
    p.add_argument("--filers", type=int, default=8, help="filers signed in (8)")
    p.add_argument("--timeout", type=float, default=30, help="client timeout, seconds (30)")
    p.add_argument(
        "--drain", type=float, default=120, help="seconds to wait for owed documents (120)"
    )
    p.add_argument(
        "--render-processes",
        type=int,
        help="the server's cases.render_processes (default: config.yaml's; 0: a thread)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", help="also write the figures to this file")
    return p.parse_args(argv, namespace=Options())


@dataclass
class SoakStack(Stack):
    """The bench's stack, with the server's settings the soak was told to change."""

    render_processes: int | None = None

    def server_env(self) -> dict[str, str]:
        env = super().server_env()
        if self.render_processes is not None:
            env["MICROCOURT_CASES__RENDER_PROCESSES"] = str(self.render_processes)
        return env


@dataclass
class Seeded:
    clerk: str
    litigant: str
    case_id: str
    pending: list[str]
    drafts: list[tuple[str, str]]


def seed_all(stack: Stack, o: Options) -> Seeded:
    """One court: pending filings, a clerk, filers with drafts, a case assigned to a judge."""
    started = time.monotonic()
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        user_ids = [str(i) for i in seed.insert_users(db, 100, stack.keys.data_key)]
        fs.insert_pending(db, stack.cipher, user_ids, o.filings)
        pending = [
            str(d["_id"])
            for d in db["filings"].find({"status": "submitted"}, {"_id": 1}).sort("_id", 1)
        ]
        clerk = seed.staff_login(stack.api, db, shapes.staff_doc(), fs.FILER_BASE - 1)
        judge = seed.staff_login(stack.api, db, shapes.staff_doc("judge", "王法官"), JUDGE_N)
        filers = [fs.make_filer(stack.api, stack.emulator, n) for n in range(1, o.filers + 1)]
        (pool,) = fs.insert_drafts(db, stack.cipher, filers, [o.drafts])
        case_id = cs.api_case(stack.api, filers[0], clerk, db)
        body = {"judge_id": judge.user_id, "clerk_id": clerk.user_id}
        seed.call(f"{stack.api}/api/v1/cases/{case_id}/assign", body, clerk.token)
    random.Random(5).shuffle(pending)
    drafts = [(token, str(i)) for token, i in pool]
    print(
        f"soak: seeded in {time.monotonic() - started:.0f} s: {len(pending)} pending "
        f"filings, {len(drafts)} drafts, {o.filers} filers",
        flush=True,
    )
    return Seeded(clerk.token, filers[0].token, case_id, pending, drafts)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    accepted: list[str] = field(default_factory=list)  # case ids
    exhausted: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, status: int, seconds: float) -> None:
        self.latencies[kind].append(seconds)
        self.statuses[kind][status] += 1


class Load:
    def __init__(self, api: str, seeded: Seeded, o: Options) -> None:
        self.api = api
        self.s = seeded
        self.o = o
        self.tally = Tally()
        weights = [float(w) for w in o.mix.split(",")]
        self.weights = dict(zip(KINDS, weights, strict=True))

    def request(self, kind: str) -> tuple[str, str, dict[str, Any]] | None:
        """(path, token, body) of one request of ``kind``; None when its pool is used up."""
        if kind == "accept":
            if not self.s.pending:
                return None
            return f"/api/v1/review/filings/{self.s.pending.pop()}/accept", self.s.clerk, {}
        if kind == "submit":
            if not self.s.drafts:
                return None
            token, draft = self.s.drafts.pop()
            return f"/api/v1/filings/{draft}/submit", token, {}
        return "/api/v1/messages", self.s.litigant, {"case_id": self.s.case_id, **MESSAGE}

    async def connection(self, client: httpx.AsyncClient, rng: random.Random, end: float) -> None:
        kinds, weights = list(self.weights), list(self.weights.values())
        while time.monotonic() < end:
            kind = rng.choices(kinds, weights)[0]
            made = self.request(kind)
            if made is None:
                self.tally.exhausted[kind] += 1
                continue
            path, token, body = made
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            started = time.monotonic()
            try:
                res = await client.post(f"{self.api}{path}", json=body, headers=headers)
                status = res.status_code
            except httpx.TimeoutException:
                status = 599  # the client gave up: counted, with its wait
            except httpx.HTTPError:
                status = 598
            self.tally.add(kind, status, time.monotonic() - started)
            if kind == "accept" and status == 200:
                self.tally.accepted.append(res.json()["case_id"])

    async def run(self) -> Tally:
        end = time.monotonic() + self.o.seconds
        await asyncio.gather(*(self.connect(i, end) for i in range(self.o.connections)))
        return self.tally

    async def connect(self, i: int, end: float) -> None:
        """One connection, a client of its own, as wrk's: one pool shared by the 64 held
        requests back up to ~5.5 s after a group's members were answered together (the
        server's own times showed none of that wait; httpx 0.29)."""
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(self.o.timeout)) as c:
            await self.connection(c, random.Random(i), end)


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile ``q`` of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, -(-int(q * 1000) * len(ordered) // 1000) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": quantile(values, 0.50),
        "p95": quantile(values, 0.95),
        "p99": quantile(values, 0.99),
        "max": max(values, default=0.0),
    }


def owed_count(db: seed.Db) -> int:
    """Cases whose acceptance documents are still owed (``documents_owed``; none before the
    documents were made after the commit)."""
    return db["documents_owed"].count_documents({})


def drain(stack: Stack, seconds: float) -> tuple[int, float]:
    """Wait up to ``seconds`` for the owed documents: (still owed, seconds waited)."""
    started = time.monotonic()
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        while (owed := owed_count(db)) and time.monotonic() - started < seconds:
            time.sleep(1)
    return owed, time.monotonic() - started


def document_delays(stack: Stack, case_ids: list[str]) -> tuple[list[float], Counter[int]]:
    """Per accepted case with all its documents served: seconds from its acceptance to the
    last of them; and how many cases have how many acceptance documents."""
    delays, counts = [], Counter[int]()
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        accepted = {
            str(c["_id"]): c["accepted_at"]
            for c in db["cases"].find(
                {"_id": {"$in": [ObjectId(i) for i in case_ids]}}, {"accepted_at": 1}
            )
        }
        served: dict[str, list[dt.datetime]] = defaultdict(list)
        found = db["served_documents"].find(
            {"case_id": {"$in": case_ids}, "kind": {"$in": list(DOCUMENT_KINDS)}},
            {"case_id": 1, "served_at": 1},
        )
        for d in found:
            served[d["case_id"]].append(d["served_at"])
    for case_id, at in accepted.items():
        times = served.get(case_id, [])
        counts[len(times)] += 1
        if times:
            delays.append((max(times) - at).total_seconds())
    return delays, counts


def report(
    o: Options, tally: Tally, owed: int, waited: float, delays: list[float], counts: Counter[int]
) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": o.seconds, "connections": o.connections, "mix": o.mix}
    print(f"\nsoak: {o.connections} connections for {o.seconds:.0f} s, mix {o.mix}")
    print(
        f"{'kind':<8} {'count':>6} {'503s':>5} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}"
        f" {'max s':>7}  statuses"
    )
    for kind in KINDS:
        lat = tally.latencies.get(kind, [])
        stats = summary(lat)
        codes = dict(sorted(tally.statuses.get(kind, Counter()).items()))
        n503 = codes.get(503, 0)
        print(
            f"{kind:<8} {len(lat):>6} {n503:>5} {stats['p50']:>7.3f} {stats['p95']:>7.3f}"
            f" {stats['p99']:>7.3f} {stats['max']:>7.3f}  {codes}"
        )
        out[kind] = {"count": len(lat), "statuses": codes, "503": n503, **stats}
    if tally.exhausted:
        print(f"pools used up (requests not sent): {dict(tally.exhausted)}")
    per_second = len(tally.accepted) / o.seconds if o.seconds else 0.0
    doc = summary(delays)
    print(f"acceptances answered 200: {len(tally.accepted)} ({per_second:.1f}/s)")
    print(f"cases still owing documents after a drain of {waited:.0f} s: {owed}")
    print(f"documents per accepted case: {dict(sorted(counts.items()))}")
    print(
        f"acceptance to last document served, s: p50 {doc['p50']:.2f} p99 {doc['p99']:.2f}"
        f" max {doc['max']:.2f} (over {len(delays)} cases)"
    )
    out |= {"accepted": len(tally.accepted), "owed_after_drain": owed, "drain_seconds": waited}
    out |= {"documents_per_case": dict(counts), "document_delay": doc}
    return out


def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="microcourt-soak-"))
    stack = SoakStack(workdir, render_processes=o.render_processes)
    try:
        stack.start()
        print(f"soak: stack up in {workdir}", flush=True)
        seeded = seed_all(stack, o)
        load = Load(stack.api, seeded, o)
        print(f"soak: loading for {o.seconds:.0f} s ...", flush=True)
        tally = asyncio.run(load.run())
        owed, waited = drain(stack, o.drain)
        with seed.client(stack.db_uri) as mongo:  # the seeded case is not the load's
            committed = mongo[DATABASE]["cases"].count_documents({}) - 1
        delays, counts = document_delays(stack, tally.accepted)
        out = report(o, tally, owed, waited, delays, counts)
        print(f"acceptances committed (cases made, answered or not): {committed}")
        out["committed"] = committed
        problems = workdir / "server.log"
        warnings = [  # the server logs compact JSON: "level":"warning"
            ln
            for ln in problems.read_text(errors="replace").splitlines()
            if re.search(r'"level":\s*"(warning|error)"', ln)
        ]
        print(f"server log: {len(warnings)} warning/error lines", flush=True)
        for line in warnings[:5]:
            print(f"  {line[:300]}")
        if o.json:
            Path(o.json).write_text(json.dumps(out, indent=2, default=str))
    finally:
        stack.stop()
        if not o.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"soak: kept {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
