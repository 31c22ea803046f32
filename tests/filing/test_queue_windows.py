"""The review queue read in windows of deadlines (``queue_page`` on ``earliest_page``) comes out
exactly as one sorted query would give it: across every window edge, ties, long-overdue and
far-future deadlines, both green values, page by page and from any cursor position."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from bson import ObjectId

from models.filings import FilingStatus
from server.filing.store import QUEUE_SORT, queue_filter, queue_page, queue_windows
from server.platform.db import Database
from server.platform.mongo import EPOCH

NOW = dt.datetime(2026, 11, 23, 9, 30, 15, 123000, tzinfo=dt.UTC)
COURT = "c1"
MS = dt.timedelta(milliseconds=1)


def _deadlines() -> list[dt.datetime]:
    """Every window edge, twice (ties), a millisecond and a second either side of it; the
    oldest and the farthest deadlines; random ones across ten years."""
    out = [EPOCH, EPOCH, EPOCH + MS, NOW - dt.timedelta(days=3650), NOW + dt.timedelta(days=3650)]
    out += [dt.datetime(9000, 1, 1, tzinfo=dt.UTC)]
    for edge in queue_windows(NOW)[1:]:
        out += [edge, edge, edge - MS, edge + MS, edge - dt.timedelta(seconds=1)]
        out += [edge + dt.timedelta(seconds=1)]
    rng = random.Random(11)
    out += [NOW + dt.timedelta(seconds=rng.uniform(-5, 5) * 365 * 86400) for _ in range(30)]
    return [d.replace(microsecond=d.microsecond // 1000 * 1000) for d in out]


def _key(doc: dict[str, Any]) -> tuple[bool, dt.datetime, ObjectId]:
    return (not doc["green"], doc["review_deadline"], doc["_id"])


async def _seed(db: Database) -> list[dict[str, Any]]:
    """The court's pending filings, green or not at every deadline, and some that are not in
    its queue (another court's, a draft); the queue as one sorted query reads it."""
    submitted = FilingStatus.submitted.value
    docs = [
        {
            "_id": ObjectId(),
            "court_id": COURT,
            "status": submitted,
            "green": g,
            "review_deadline": d,
        }
        for d in _deadlines()
        for g in (True, False)
    ]
    docs += [
        {"_id": ObjectId(), "court_id": "c2", "status": submitted, "green": True},
        {"_id": ObjectId(), "court_id": COURT, "status": FilingStatus.draft.value, "green": True},
    ]
    for doc in docs[-2:]:
        doc["review_deadline"] = NOW
    random.Random(3).shuffle(docs)
    await db["filings"].insert_many(docs)
    expected = await db["filings"].find(queue_filter(COURT)).sort(QUEUE_SORT).to_list()
    assert [d["_id"] for d in expected] == [d["_id"] for d in sorted(expected, key=_key)]
    assert len(expected) == len(docs) - 2
    return expected


@pytest.mark.gen_test(timeout=120)
async def test_pages_match_one_sorted_query(db: Database) -> None:
    expected = [d["_id"] for d in await _seed(db)]
    for size in (1, 3, 20, 500):
        seen: list[ObjectId] = []
        after = None
        while True:
            rows = await queue_page(db["filings"], COURT, after, size + 1, now=NOW)
            assert [r["_id"] for r in rows] == expected[len(seen) : len(seen) + size + 1], size
            page = rows[:size]
            seen += [r["_id"] for r in page]
            if len(rows) <= size:
                break
            last = page[-1]
            after = (last["green"], last["review_deadline"], last["_id"])
        assert seen == expected, size


@pytest.mark.gen_test(timeout=60)
async def test_any_position_reads_what_follows_it(db: Database) -> None:
    """A position no filing holds any more (decided between two pages), at any instant: the
    page is what follows it in the queue's order."""
    expected = await _seed(db)
    rng = random.Random(5)
    for _ in range(25):
        pick = rng.choice(expected)
        shift = rng.choice([dt.timedelta(0), MS, -MS, dt.timedelta(microseconds=400)])
        when = pick["review_deadline"] + shift
        oid = rng.choice([pick["_id"], ObjectId()])
        position = (pick["green"], when, oid)
        rest = [d["_id"] for d in expected if _key(d) > (not pick["green"], _ms(when), oid)]
        rows = await queue_page(db["filings"], COURT, position, 7, now=NOW)
        assert [r["_id"] for r in rows] == rest[:7], position


def _ms(when: dt.datetime) -> dt.datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest.mark.gen_test(timeout=30)
async def test_an_empty_queue_reads_every_window_and_finds_nothing(db: Database) -> None:
    await db["filings"].insert_one({"court_id": "c2", "status": "submitted", "green": False})
    assert await queue_page(db["filings"], COURT, None, 21, now=NOW) == []
