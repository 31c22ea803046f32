"""Online filing: pending filings, clerk, filers, drafts, the checks, the filing rows (README)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from bench import raw, seed, shapes
from bench.raw import Row, pair, wrk
from bench.report import size_label
from bench.stack import DATABASE, Stack
from miniapp_stubs.wire import multipart
from models.filings import FilingDoc
from models.users import Role
from server.files.store import FileStore, Grant
from server.filing.filings import submitted_notice
from server.filing.queue_chunks import Chunks, cut, key_of, order
from server.filing.store import (
    CHUNKS,
    KEY_FIELDS,
    QUEUE_SORT,
    STARTS,
    FilingStore,
    queue_filter,
    submit_update,
)
from server.filing.store import queue_page as store_queue_page
from server.platform.group_commit import GroupCommits

if TYPE_CHECKING:
    from bench.run import Bench


BACKLOG_DAYS = 12  # pending filings were submitted over the last 12 days
QUEUE_FILTER = queue_filter(shapes.COURT)  # ReviewService.queue's, sorted by QUEUE_SORT
QUEUE_PAGE = 20  # the API's default limit
QUEUE_PATH = "/api/v1/review/filings"
FILER_BASE = 1 << 16  # X-Real-Ip numbers of the filers: after those of the /me users


@dataclass(frozen=True)
class Filer(seed.SignedIn):
    person: shapes.Person
    file_id: str


def insert_pending(
    db: seed.Db, cipher: shapes.Cipher, filer_ids: list[str], count: int
) -> tuple[int, ObjectId | None]:
    """``count`` filings awaiting review: how many are green, and a non-green one."""
    rng, now, green = random.Random(20261123), dt.datetime.now(dt.UTC), [0]

    def docs() -> Iterator[dict[str, Any]]:
        for _ in range(count):
            doc = shapes.pending_doc(cipher, rng, rng.choice(filer_ids), now, BACKLOG_DAYS)
            green[0] += doc["green"]
            yield doc

    seed.insert_batches(db["filings"], docs())
    build_chunks(db)
    sample = db["filings"].find_one({"status": "submitted", "green": False}, {"_id": 1})
    return green[0], (sample or {}).get("_id")


def build_chunks(db: seed.Db) -> None:
    """The court's queue chunks over the filings seeded behind the service's back: what its
    first page read would build (``FilingStore._build``), done here so no measured read does."""
    keys = sorted((key_of(r) for r in db["filings"].find(QUEUE_FILTER, KEY_FIELDS)), key=order)
    chunks = Chunks(*cut(keys)).doc()
    court = {"_id": shapes.COURT}
    db[CHUNKS].update_one(court, {"$set": chunks, "$inc": {"version": 1}}, upsert=True)


def make_filer(api: str, emulator: str, n: int) -> Filer:
    user, openid = seed.phone_login(api, emulator, FILER_BASE + n)
    rng = random.Random(n)
    me = shapes.person(rng, number=shapes.id_number(rng, serial=n))
    body = {"name": me.name, "id_number": me.id_number, "phone": me.phone}
    seed.call(f"{api}/api/v1/me/identity", body, user.token, method="PUT", status=202)
    # the claim, then the face verification that makes it an identity
    face = {"openid": openid, "name": me.name, "id_number": me.id_number, "outcome": "pass"}
    verified = seed.call(f"{emulator}/_emulator/face/verify", face)
    seed.call(f"{api}/api/v1/me/identity/verify", verified, user.token)
    pdf = shapes.PDF + f"filer {n}".encode()  # sent as wx.uploadFile sends it
    data, kind = multipart({"purpose": "evidence"}, "file", "借条.pdf", pdf, "application/pdf")
    form = {"Content-Type": kind}
    uploaded = seed.call(f"{api}/api/v1/files", data, user.token, headers=form, status=201)
    return Filer(user.token, user.user_id, me, uploaded["id"])


def insert_drafts(
    db: seed.Db, cipher: shapes.Cipher, filers: list[Filer], sizes: list[int]
) -> list[list[tuple[str, ObjectId]]]:
    """Drafts round-robin over the filers, as (filer's token, draft id), in pools of ``sizes``."""
    rng, now = random.Random(7), dt.datetime.now(dt.UTC)
    owners = [filers[i % len(filers)] for i in range(sum(sizes))]
    docs = [
        shapes.draft_doc(cipher, f.user_id, f.person, shapes.person(rng), [f.file_id], now)
        for f in owners
    ]
    seed.insert_batches(db["filings"], docs)  # pymongo sets each doc's _id
    pairs = [(f.token, d["_id"]) for f, d in zip(owners, docs, strict=True)]
    ends = list(itertools.accumulate(sizes))
    return [pairs[end - size : end] for size, end in zip(sizes, ends, strict=True)]


def api_filing(api: str, filer: Filer, db: seed.Db) -> tuple[Any, Any]:
    """One draft created and submitted through the API; its stored form after each step."""
    body = shapes.complaint_body(filer.person, shapes.person(random.Random(1)), [filer.file_id])
    draft = seed.call(f"{api}/api/v1/filings", body, filer.token, status=201)
    stored = db["filings"].find_one({"_id": ObjectId(draft["id"])})
    filed = seed.call(f"{api}/api/v1/filings/{draft['id']}/submit", {}, filer.token)
    if filed.get("status") != "submitted":
        raise seed.SeedError(f"submitted through the API: {filed}")
    return stored, db["filings"].find_one({"_id": ObjectId(draft["id"])})


QUEUE_COMMAND = dict(
    find="filings", filter=QUEUE_FILTER, sort=dict(QUEUE_SORT), limit=QUEUE_PAGE + 1
)
QUEUE_SMALL = 1000  # the queue is also measured at this many pending (its growth)
POOLS = ("api warmup", "api measured", "raw warmup", "raw measured")


@dataclass(frozen=True)
class Filings:
    clerk: seed.SignedIn
    filers: list[Filer]
    pools: dict[str, list[tuple[str, ObjectId]]]  # the first of each: for the probes


def seed_filings(bench: Bench, stack: Stack, filer_ids: list[ObjectId]) -> Filings:
    o, cipher = bench.opts, stack.cipher
    with seed.client(stack.db_uri) as mongo:
        db = mongo[DATABASE]
        first = min(o.filings, QUEUE_SMALL)
        filer_names = [str(i) for i in filer_ids]
        with bench.inserting(first, "pending filings with pymongo"):
            green, sample_id = insert_pending(db, cipher, filer_names, first)
        with bench.stage(f"sign in a clerk of {shapes.COURT} (inserted, argon2 password)"):
            clerk = seed.staff_login(stack.api, db, shapes.staff_doc(), FILER_BASE - 1)
        if o.filings > first:  # the queue's growth: its first page at 1k, then at the full size
            queue_row(bench, stack, clerk, size_label(first))
            with bench.inserting(o.filings - first, f"more pending filings (to {o.filings})"):
                green += insert_pending(db, cipher, filer_names, o.filings - first)[0]
        bench.fact("pending filings", {"green": green, "sample_id": str(sample_id)})
        what = f"sign in {o.filers} filers: identity and one PDF each, via the API"
        with bench.stage(what), ThreadPoolExecutor(8) as threads:
            ns = range(1, o.filers + 1)
            filers = list(threads.map(lambda n: make_filer(stack.api, stack.emulator, n), ns))
        # drafts for each submit load: the most it could submit at --submit-cap a second
        warm, measured = (o.submit_cap * s + o.connections for s in (o.warmup, o.duration))
        sizes = [warm, measured, warm, measured]
        with bench.inserting(sum(sizes), "drafts with pymongo"):
            pools = dict(zip(POOLS, insert_drafts(db, cipher, filers, sizes), strict=True))
        with bench.stage("check the API's draft and filing against the seeded ones"):
            theirs = api_filing(stack.api, filers[0], db)
            ours = [db["filings"].find_one({"_id": i}) for i in (pools[POOLS[0]][0][1], sample_id)]
            seed.check_shapes("filings", list(zip(theirs, ours, ("draft", "filed"), strict=True)))
        seed.check_plan(bench, db, "the review queue's query", QUEUE_COMMAND)
        with bench.stage(f"check GET {QUEUE_PATH} against the raw query"):
            found = db["filings"].find(QUEUE_FILTER, {"_id": 1}).sort(QUEUE_SORT).limit(QUEUE_PAGE)
            seed.check_page(f"{stack.api}{QUEUE_PATH}", clerk.token, [str(d["_id"]) for d in found])
    return Filings(clerk, filers, pools)


def queue_row(bench: Bench, stack: Stack, clerk: seed.SignedIn, size: str = "") -> None:
    """The review queue's pair (with ``size``: its rows named and keyed by it)."""
    names = ("GET review queue", "raw queue find")
    if size:
        names = (f"{names[0]} {size}", f"{names[1]} {size}")
    key = f"queue_{size}" if size else "queue"
    pair(bench, Row(names, key, f"{stack.api}{QUEUE_PATH}", clerk.token, queue_page))


def load_filings(bench: Bench, stack: Stack, filings: Filings) -> None:
    queue_row(bench, stack, filings.clerk)
    (token, api_draft), (_, raw_draft) = (filings.pools[p][0] for p in (POOLS[0], POOLS[2]))

    async def raw_call(db: raw.Db) -> None:
        if not await submit(db, raw_draft):
            raise seed.SeedError(f"raw submit of {raw_draft}: draft not found")

    url = f"{stack.api}/api/v1/filings/{api_draft}/submit"  # submit.lua: each its own
    phases = zip(("warmup", "measured"), POOLS[2:], strict=True)
    raw_ops = submit_ops({phase: [i for _, i in filings.pools[p][1:]] for phase, p in phases})
    warm_run, run = (submit_run(bench, filings, p) for p in POOLS[:2])
    names = ("POST submit", "raw submit")

    def warm() -> object:
        return warm_run.run(names[0], url, 0)

    pair(bench, Row(names, "submit", url, token, raw_call, {}, run=run, warm=warm, raw_ops=raw_ops))


def submit_run(bench: Bench, filings: Filings, pool: str) -> raw.WrkRun:
    seconds = bench.opts.warmup if "warmup" in pool else bench.opts.duration
    path = bench.workdir / f"drafts-{pool.replace(' ', '-')}.txt"
    path.write_text("".join(f"{token} {i}\n" for token, i in filings.pools[pool][1:]))
    return wrk(bench, "submit.lua", (str(path), str(bench.opts.threads)), seconds)


async def queue_page(db: raw.Db) -> list[dict[str, Any]]:
    """``ReviewService.queue``'s reads for one page and one more: the court's chunks, then
    the store's own reads of them."""
    now = dt.datetime.now(dt.UTC)
    chunks = Chunks.from_doc(await db[CHUNKS].find_one({"_id": shapes.COURT}, STARTS))
    return await store_queue_page(
        db["filings"], shapes.COURT, None, QUEUE_PAGE + 1, now=now, chunks=chunks
    )


def submit_ops(pools: dict[str, list[ObjectId]]) -> raw.OpFactory:

    def factory(db: raw.Db, phase: str) -> raw.Op:
        drafts: Iterator[ObjectId] = iter(pools[phase])
        groups = GroupCommits(db)  # the server's are one per process: here one per load

        async def op() -> bool:
            if (filing_id := next(drafts, None)) is None:
                raise raw.Exhausted
            return await submit(db, filing_id, groups)

        return op

    return factory


async def submit(db: raw.Db, filing_id: ObjectId, groups: GroupCommits | None = None) -> bool:
    """``FilingService.submit``'s database calls, in the same order, with its builders, the
    transaction grouped as the service groups it (``FilingService._file_group``): the
    court's submissions waiting meanwhile filed together, then counted into the review
    queue once per group."""
    doc = await db["filings"].find_one({"_id": filing_id})
    if doc is None or doc["status"] != "draft":
        return False
    now = dt.datetime.now(dt.UTC)
    deadline = shapes.review_deadline(now)
    update = submit_update(doc["filer_id"], "submitted", now, deadline)
    store = FilingStore(db)

    async def file_group(
        session: AsyncClientSession, moves: list[tuple[FilingDoc, dict[str, Any]]]
    ) -> list[FilingDoc | None]:
        moved = await store.move_each(moves, session)
        filed = [d for d in moved if d is not None]
        grants = [Grant(d.evidence, court_ids=[d.court_id]) for d in filed]
        await FileStore(db).grant_each(grants, session)
        notices = [submitted_notice(d) for d in filed]
        clerks = [Role.clerk.value]
        await raw.notifier(db).notify_court_staff_many(
            shapes.COURT, clerks, notices, session=session
        )
        return moved

    async def queued(_moves: object, moved: list[FilingDoc | None]) -> None:
        # after the commit, as the service: the filings counted into their queue chunks
        await store.queue_grew([d for d in moved if d is not None], dt.datetime.now(dt.UTC))

    group = (groups or GroupCommits(db)).group("filing_submit", file_group, queued)
    return await group.run((FilingDoc.model_validate(doc), update)) is not None
