"""The online-filing stages: the seed and its checks, the review queue and submit rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from bson import ObjectId

from bench import filingseed as fs
from bench import raw, shapes
from bench.loadgen import WrkRun
from bench.pairs import pair, wrk
from bench.seed import SeedError, SignedIn, call, check_plan, client
from bench.stack import DATABASE, Stack

if TYPE_CHECKING:
    from bench.run import Bench

POOLS = ("api warmup", "api measured", "raw warmup", "raw measured")


@dataclass(frozen=True)
class Filings:
    clerk: SignedIn
    filers: list[fs.Filer]
    pools: dict[str, list[tuple[str, ObjectId]]]  # the first of each: for the probes


def seed_filings(bench: Bench, stack: Stack, filer_ids: list[ObjectId]) -> Filings:
    o, cipher = bench.opts, stack.cipher
    with client(stack.db_uri) as mongo:
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
        # drafts for each submit load: the most it could submit at --submit-cap a second
        warm, measured = (o.submit_cap * s + o.connections for s in (o.warmup, o.duration))
        sizes = [warm, measured, warm, measured]
        with bench.stage(f"insert {sum(sizes)} drafts with pymongo"):
            pools = dict(zip(POOLS, fs.insert_drafts(db, cipher, filers, sizes), strict=True))
        with bench.stage("check the API's draft and filing against the seeded ones"):
            fs.check_shapes(stack.api, filers[0], (pools[POOLS[0]][0][1], pending.sample_id), db)
        check_plan(bench, db, "the review queue's query", fs.QUEUE_COMMAND)
        with bench.stage(f"check GET {fs.QUEUE_PATH} against the raw query"):
            fs.check_queue(stack.api, clerk, db)
    return Filings(clerk, filers, pools)


def load_filings(bench: Bench, stack: Stack, filings: Filings) -> None:
    url = f"{stack.api}{fs.QUEUE_PATH}"
    names = ("GET review queue", "raw queue find")
    pair(bench, names, ("queue", "raw_queue"), url, filings.clerk.token, raw.queue_page)
    (token, api_draft), (_, raw_draft) = (filings.pools[p][0] for p in (POOLS[0], POOLS[2]))

    async def raw_call(db: raw.Db) -> None:
        if not await raw.submit(db, raw_draft):
            raise SeedError(f"raw submit of {raw_draft}: draft not found")

    o = bench.opts
    drafts = {
        phase: [i for _, i in filings.pools[pool][1:]]
        for phase, pool in (("warmup", POOLS[2]), ("measured", POOLS[3]))
    }
    submit = f"{stack.api}/api/v1/filings/{api_draft}/submit"
    pair(
        bench,
        ("POST submit", "raw submit"),
        ("submit", "raw_submit"),
        stack.api,
        token,
        raw_call,
        api_call=lambda: call(submit, {}, token),
        run=submit_run(bench, filings, POOLS[1], o.duration),
        warm=submit_run(bench, filings, POOLS[0], o.warmup),
        raw_ops=raw.submit_ops(drafts),
    )


def submit_run(bench: Bench, filings: Filings, pool: str, seconds: int) -> WrkRun:
    path = bench.workdir / f"drafts-{pool.replace(' ', '-')}.txt"
    path.write_text("".join(f"{token} {i}\n" for token, i in filings.pools[pool][1:]))
    return wrk(bench, "submit.lua", (str(path), str(bench.opts.threads)), seconds)
