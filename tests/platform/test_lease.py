"""Leases: one process at a time runs a leased periodic job; a stopped holder hands over at
once, a dead one when its lease runs out."""

from __future__ import annotations

import pytest

from server.platform.clock import FixedClock
from server.platform.db import Database
from server.platform.lease import Lease
from server.platform.periodic import Periodic
from tests.factories import START
from tests.waiting import until


@pytest.mark.gen_test(timeout=30)
async def test_one_process_runs_a_leased_job_and_hands_it_over(db: Database) -> None:
    clock = FixedClock(START)
    rounds = {"a": 0, "b": 0}

    def job(who: str) -> Periodic:
        async def count() -> None:
            rounds[who] += 1

        return Periodic(f"job-{who}", count, 0.01, Lease(db, "job", 30, clock, owner=who))

    first, second = job("a"), job("b")
    first.start()
    await until(lambda: rounds["a"] >= 1)  # the first holds the lease
    second.start()
    started = rounds["a"]
    await until(lambda: rounds["a"] >= started + 5)  # the second tried as often, in vain
    assert rounds["b"] == 0, rounds
    await first.stop()  # gives the lease back: the other takes over at once
    before = rounds["a"]
    await until(lambda: rounds["b"] >= 5)
    assert rounds["a"] == before, rounds
    await second.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_dead_holders_lease_runs_out(db: Database) -> None:
    clock = FixedClock(START)
    dead, alive = Lease(db, "job", 30, clock, owner="dead"), Lease(db, "job", 30, clock, "alive")
    assert await dead.hold() and not await alive.hold()
    clock.advance(seconds=29)
    assert await dead.keep() and not await alive.hold()  # renewed: 30 s from now
    clock.advance(seconds=31)  # the holder died without giving it back
    assert await alive.hold() and not await dead.keep()
    assert (await db["leases"].find_one({"_id": "job"}) or {})["owner"] == "alive"
