"""The review queue read chunk by chunk (server/filing/queue_chunks.py): the same pages as one
sorted query whatever the chunks, and a page that reads a bounded number of filings however
many are pending.

"Read" is what SecantusDB costs: it materialises every match of a query's filter before its
sort and limit, so the reads of a page are the filings matched by the filters of its queries
(counted here with ``count_documents`` on each filter the store sent)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from bson import ObjectId

from models.filings import FilingStatus
from server.filing.queue_chunks import CAP, CHUNK, FIRST, Chunks, key_of, order
from server.filing.store import FilingStore, queue_page
from server.platform.db import Database
from tests.filing.test_queue_windows import COURT, NOW, _key, _seed

LIMIT = 21  # the API's default page and one more


@pytest.mark.gen_test(timeout=120)
async def test_pages_over_any_chunks_match_one_sorted_query(db: Database) -> None:
    expected = await _seed(db)
    ids = [d["_id"] for d in expected]
    rng = random.Random(17)
    keys = [key_of(d) for d in expected]
    # starts at filings' positions and at positions no filing holds (decided since)
    starts = rng.sample(keys, 25) + [(g, d, ObjectId()) for g, d, _ in rng.sample(keys, 10)]
    starts = [FIRST, *sorted(set(starts), key=order)]
    chunks = Chunks(starts, [0] * len(starts))
    for size in (1, 3, 20, 500):
        seen: list[ObjectId] = []
        after = None
        while True:
            rows = await queue_page(db["filings"], COURT, after, size + 1, now=NOW, chunks=chunks)
            assert [r["_id"] for r in rows] == ids[len(seen) : len(seen) + size + 1], size
            seen += [r["_id"] for r in rows[:size]]
            if len(rows) <= size:
                break
            after = key_of(rows[size - 1])
        assert seen == ids, size
    for pick in rng.sample(expected, 15):  # any position, held or not
        position = (pick["green"], pick["review_deadline"], rng.choice([pick["_id"], ObjectId()]))
        held = dict(zip(_FIELDS, position, strict=True))
        rest = [d["_id"] for d in expected if _key(d) > _key(held)]
        rows = await queue_page(db["filings"], COURT, position, 7, now=NOW, chunks=chunks)
        assert [r["_id"] for r in rows] == rest[:7], position


_FIELDS = ("green", "review_deadline", "_id")


class Counting:
    """The filings collection, recording each filter a read sends."""

    def __init__(self, col: Any) -> None:
        self.col = col
        self.filters: list[dict[str, Any]] = []

    def find(self, filt: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.filters.append(filt)
        return self.col.find(filt, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.col, name)

    async def reads(self) -> int:
        """What the recorded queries cost the server: every filing they matched."""
        return sum([await self.col.count_documents(f) for f in self.filters])


def _filing(rng: random.Random, deadline: dt.datetime, green: bool) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "court_id": COURT,
        "case_kind": "civil",
        "filer_id": "f",
        "status": FilingStatus.submitted.value,
        "green": green,
        "review_deadline": deadline,
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }


async def _pending(db: Database, count: int, rng: random.Random) -> None:
    """``count`` pending filings over 12 days of deadlines (each the end of a day, so
    thousands share one), a tenth green."""
    days = [NOW.replace(hour=15, minute=59, second=59, microsecond=999000)]
    days += [days[0] + dt.timedelta(days=d) for d in range(-3, 9)]
    docs = [_filing(rng, rng.choice(days), rng.random() < 0.1) for _ in range(count)]
    for at in range(0, count, 5000):
        await db["filings"].insert_many(docs[at : at + 5000])


async def _page_reads(
    store: FilingStore, monkeypatch: pytest.MonkeyPatch, after: Any = None
) -> tuple[int, list[Any]]:
    counting = Counting(store._col)
    monkeypatch.setattr(store, "_col", counting)
    try:
        found = await store.pending_for_court(COURT, after, LIMIT, NOW)
    finally:
        monkeypatch.setattr(store, "_col", counting.col)
    return await counting.reads(), found


@pytest.mark.gen_test(timeout=600)
async def test_a_page_reads_a_bounded_number_at_1k_and_20k_pending(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng, store, bound = random.Random(23), FilingStore(db), LIMIT + 2 * CAP
    await _pending(db, 1000, rng)
    await store.pending_for_court(COURT, None, LIMIT, NOW)  # the court's chunks, built once
    small, _ = await _page_reads(store, monkeypatch)
    await db["filing_queue_chunks"].delete_many({})  # the seed went behind the service's back
    await _pending(db, 19_000, rng)
    unchunked = Counting(db["filings"])
    whole = await queue_page(unchunked, COURT, None, LIMIT, now=NOW)
    assert await unchunked.reads() > bound  # what a page cost before the chunks
    await store.pending_for_court(COURT, None, LIMIT, NOW)
    large, first = await _page_reads(store, monkeypatch)
    assert [f.id for f in first] == [r["_id"] for r in whole]
    assert small <= bound and large <= bound, (small, large)
    middle = first[-1]  # a later page: bounded the same
    later, _ = await _page_reads(
        store, monkeypatch, (middle.green, middle.review_deadline, middle.id)
    )
    assert later <= bound, later


@pytest.mark.gen_test(timeout=300)
async def test_submissions_split_their_chunk_so_reads_stay_bounded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filings submitted one by one into one deadline (as on a busy day): each counted into
    its chunk, which splits above ``CAP``; the pages over them stay bounded."""
    rng, store = random.Random(29), FilingStore(db)
    await _pending(db, 200, rng)
    await store.pending_for_court(COURT, None, LIMIT, NOW)
    day = NOW - dt.timedelta(days=30)  # ahead of every other filing: the head of the queue
    for _ in range(6 * CAP):
        doc = await store.insert(_filing(rng, day, True))
        await store.queue_grew([doc], NOW)
    chunks = Chunks.from_doc(await db["filing_queue_chunks"].find_one({"_id": COURT}))
    assert max(chunks.counts) <= CAP and len(chunks.starts) >= 6 * CAP // CHUNK
    reads, first = await _page_reads(store, monkeypatch)
    assert all(f.review_deadline == day for f in first) and len(first) == LIMIT
    assert reads <= LIMIT + 2 * CAP, reads


@pytest.mark.gen_test(timeout=120)
async def test_drained_chunks_are_dropped(db: Database) -> None:
    rng, store = random.Random(31), FilingStore(db)
    await _pending(db, 6 * CHUNK, rng)
    await store.pending_for_court(COURT, None, LIMIT, NOW)
    before = Chunks.from_doc(await db["filing_queue_chunks"].find_one({"_id": COURT}))
    head = await db["filings"].find({}).to_list()
    head.sort(key=lambda d: order(key_of(d)))
    gone = [d["_id"] for d in head[: 3 * CHUNK]]  # decided: the first three chunks drained
    await db["filings"].update_many({"_id": {"$in": gone}}, {"$set": {"status": "accepted"}})
    first = await store.pending_for_court(COURT, None, LIMIT, NOW)
    assert [f.id for f in first] == [d["_id"] for d in head[3 * CHUNK : 3 * CHUNK + LIMIT]]
    after = Chunks.from_doc(await db["filing_queue_chunks"].find_one({"_id": COURT}))
    assert len(after.starts) == len(before.starts) - 2  # the first chunk always stays


@pytest.mark.gen_test(timeout=120)
async def test_a_first_page_past_many_drained_chunks(db: Database) -> None:
    """Seventeen chunks drained at the head: the first page is what follows, read once more
    after they were dropped."""
    rng, store = random.Random(37), FilingStore(db)
    await _pending(db, 21 * CHUNK, rng)
    await store.pending_for_court(COURT, None, LIMIT, NOW)
    head = await db["filings"].find({}).to_list()
    head.sort(key=lambda d: order(key_of(d)))
    gone = [d["_id"] for d in head[: 17 * CHUNK]]
    await db["filings"].update_many({"_id": {"$in": gone}}, {"$set": {"status": "accepted"}})
    expected = [d["_id"] for d in head[17 * CHUNK :][:LIMIT]]
    assert [f.id for f in await store.pending_for_court(COURT, None, LIMIT, NOW)] == expected
    assert [f.id for f in await store.pending_for_court(COURT, None, LIMIT, NOW)] == expected


@pytest.mark.gen_test(timeout=300)
async def test_a_group_of_submissions_is_counted_at_once_and_splits_every_full_chunk(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group's filings counted in one call (``queue_grew`` of many, as a court's group of
    submissions is): each into its chunk, two chunks filled above ``CAP`` at once, both
    split; the counts are exact and the first page is the sorted query's."""
    rng, store = random.Random(41), FilingStore(db)
    await _pending(db, 200, rng)
    await store.pending_for_court(COURT, None, LIMIT, NOW)
    head, tail = NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=60)
    group = [await store.insert(_filing(rng, head, True)) for _ in range(60)]
    group += [await store.insert(_filing(rng, tail, False)) for _ in range(60)]
    rng.shuffle(group)
    await store.queue_grew(group, NOW)
    chunks = Chunks.from_doc(await db["filing_queue_chunks"].find_one({"_id": COURT}))
    assert max(chunks.counts) <= CAP and sum(chunks.counts) == 320
    whole = await queue_page(db["filings"], COURT, None, LIMIT, now=NOW)
    reads, first = await _page_reads(store, monkeypatch)
    assert [f.id for f in first] == [r["_id"] for r in whole]
    assert reads <= LIMIT + 2 * CAP, reads
