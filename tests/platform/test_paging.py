"""``first_page``: pages read in time windows come out exactly as one sorted query would
give them, across window edges, ties and cursors, on the real database."""

from __future__ import annotations

import datetime as dt
import os
import random
from typing import Any

import pytest
from bson import ObjectId
from pymongo import DESCENDING

from server.platform.db import Database
from server.platform.mongo import WINDOWS, first_page

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def _times() -> list[dt.datetime]:
    """Times on every window edge and either side of it, ties, the future and the distant
    past: where a window read could lose or repeat a document."""
    out = [NOW, NOW, NOW + dt.timedelta(hours=2), NOW - dt.timedelta(days=3650)]
    for reach in WINDOWS:
        if reach is None:
            continue
        edge = NOW - reach
        out += [edge, edge, edge - dt.timedelta(microseconds=1000), edge + dt.timedelta(seconds=1)]
    rng = random.Random(7)
    out += [NOW - dt.timedelta(seconds=rng.uniform(0, 5 * 365 * 86400)) for _ in range(40)]
    return out


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("indexed", [True, False], ids=["windows", "whole"])
async def test_pages_match_one_sorted_query(db: Database, indexed: bool) -> None:
    col = db["paged"]
    await col.create_index([("k", 1), ("at", DESCENDING), ("_id", DESCENDING)])
    docs = [{"_id": ObjectId(), "k": "mine", "at": at} for at in _times()]
    docs += [{"_id": ObjectId(), "k": "other", "at": NOW}]  # outside the scope
    await col.insert_many(docs)
    expected = sorted((d for d in docs if d["k"] == "mine"), key=lambda d: (d["at"], d["_id"]))
    expected.reverse()

    for size in (1, 3, 20, 500):
        seen: list[Any] = []
        after = None
        while True:
            rows = await first_page(
                col,
                {"k": "mine"},
                {"at": 1},
                size + 1,
                field="at",
                now=NOW,
                after=after,
                indexed_scope=indexed,
            )
            assert [r["_id"] for r in rows] == [d["_id"] for d in expected[len(seen) :]][: size + 1]
            page = rows[:size]
            seen += [r["_id"] for r in page]
            if len(rows) <= size:
                break
            after = page[-1]
        assert seen == [d["_id"] for d in expected], size


def _id_at(at: dt.datetime) -> ObjectId:
    """An ObjectId made at ``at`` (to the second, as ObjectIds are)."""
    return ObjectId(ObjectId.from_datetime(at).binary[:4] + os.urandom(8))


@pytest.mark.gen_test(timeout=60)
async def test_pages_by_id_match_one_sorted_query(db: Database) -> None:
    """Newest first by ``_id``, whose ObjectIds carry their time: the work-order lists."""
    col = db["paged"]
    await col.create_index([("k", 1), ("_id", DESCENDING)])
    docs = [{"_id": _id_at(at), "k": "mine"} for at in _times()]
    docs += [
        {"_id": ObjectId.from_datetime(NOW - reach), "k": "mine"} for reach in WINDOWS if reach
    ]
    docs += [{"_id": _id_at(NOW), "k": "other"}]
    await col.insert_many(docs)
    expected = sorted((d["_id"] for d in docs if d["k"] == "mine"), reverse=True)
    for size in (1, 7, 500):
        seen: list[Any] = []
        after = None
        while True:
            rows = await first_page(col, {"k": "mine"}, {}, size + 1, now=NOW, after=after)
            assert [r["_id"] for r in rows] == expected[len(seen) : len(seen) + size + 1]
            seen += [r["_id"] for r in rows[:size]]
            if len(rows) <= size:
                break
            after = rows[size - 1]
        assert seen == expected, size


@pytest.mark.gen_test(timeout=30)
async def test_an_empty_scope_reads_every_window_and_finds_nothing(db: Database) -> None:
    col = db["paged"]
    await col.insert_one({"k": "other", "at": NOW})
    assert await first_page(col, {"k": "mine"}, {}, 21, field="at", now=NOW) == []
    assert await first_page(col, {"k": "mine"}, {}, 21, now=NOW) == []
