"""Rate limits are counted in the database: two processes (two apps on one database) share
one allowance, a window's count ends with the window, and a refused key is refused without a
database round trip until its window ends; hits on one key at once share the database's
writes, each still counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from tornado.web import Application

from server.app import Services
from server.platform.clock import FixedClock
from server.platform.db import Database
from server.platform.errors import RateLimited
from server.platform.ratelimit import COLLECTION, RateLimiter


async def _allowed(limiter: RateLimiter, key: str) -> bool:
    try:
        await limiter.hit(key)
    except RateLimited:
        return False
    return True


@pytest.mark.gen_test
async def test_two_apps_share_one_login_allowance(
    services: Services, other_app: Application, settings
) -> None:  # type: ignore[no-untyped-def]
    other: Services = other_app.settings["services"]
    limit = settings.security.login_attempts_per_minute
    here, there = services.auth.login_limiter, other.auth.login_limiter
    results = [await _allowed(here if i % 2 else there, "wx:10.0.0.1") for i in range(limit + 2)]
    assert results == [True] * limit + [False, False]
    # another key has its own allowance, in either process
    assert await _allowed(there, "wx:10.0.0.2")


@pytest.mark.gen_test
async def test_a_window_ends(db: Database, clock: FixedClock) -> None:
    a = RateLimiter.shared(db, "t", 2, 60, clock)
    b = RateLimiter.shared(db, "t", 2, 60, clock)
    assert [await _allowed(a, "k"), await _allowed(b, "k"), await _allowed(a, "k")] == [
        True,
        True,
        False,
    ]
    with pytest.raises(RateLimited) as refused:
        await b.hit("k")
    assert 0 < refused.value.details["retry_after_seconds"] <= 60
    clock.advance(seconds=60)
    assert await _allowed(b, "k")
    stored = await db[COLLECTION].find({}).to_list(None)
    assert all(doc["expires_at"] is not None for doc in stored)
    assert sorted(doc["n"] for doc in stored) == [1, 4]


@pytest.mark.gen_test
async def test_a_refused_key_costs_no_round_trip(db: Database, clock: FixedClock) -> None:
    limiter = RateLimiter.shared(db, "cheap", 1, 60, clock)
    assert await _allowed(limiter, "k")
    assert not await _allowed(limiter, "k")
    await db[COLLECTION].delete_many({})  # the database forgets; this process still refuses
    assert not await _allowed(limiter, "k")
    assert await db[COLLECTION].count_documents({}) == 0


class _Statements(monitoring.CommandListener):
    """The ``findAndModify`` statements a client sends (the limiter's writes)."""

    def __init__(self) -> None:
        self.writes = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.writes += event.command_name == "findAndModify"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.gen_test(timeout=60)
async def test_a_burst_on_one_key_shares_writes_and_counts_each_hit(
    db: Database, mongo_uri: str, clock: FixedClock
) -> None:
    statements = _Statements()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, event_listeners=[statements]
    )
    try:
        limiter = RateLimiter.shared(client[db.name], "burst", 30, 60, clock)
        allowed = await asyncio.gather(*(_allowed(limiter, "k") for _ in range(50)))
        assert allowed.count(True) == 30  # exactly the limit, as one hit at a time
        assert await _allowed(limiter, "other")  # another key has its own allowance
        stored = await db[COLLECTION].find({}, {"n": 1}).to_list(None)
        assert sorted(d["n"] for d in stored) == [1, 50]  # every hit counted once
        # at once, they waited for one another's writes instead of each writing alone
        assert statements.writes < 10, statements.writes
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_failed_write_fails_each_hit_waiting_on_it(
    db: Database, mongo_uri: str, clock: FixedClock
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=300
    )
    limiter = RateLimiter.shared(client[db.name], "gone", 30, 60, clock)
    await client.close()  # the database unreachable to this limiter
    results = await asyncio.gather(*(limiter.hit("k") for _ in range(5)), return_exceptions=True)
    assert len(results) == 5 and all(isinstance(r, Exception) for r in results), results
    assert not limiter._writing and not limiter._queued  # nothing left waiting
