"""``change_one`` returns exactly the state its own update produced, and
``read_decide_write`` reads again after a lost race, then answers 409: on the real database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.platform.db import Database, LostRace, read_decide_write, won
from server.platform.errors import Conflict
from server.platform.mongo import change_one
from server.workorders.errors import WorkOrderBusy, WorkOrderClosed


class Intruded:
    """The collection, but another writer changes the document right after our update (once),
    before our read: without the transaction the read would return the intruder's state."""

    def __init__(self, col: Any) -> None:
        self.col = col
        self.intruder: asyncio.Task[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.col, name)

    async def update_one(self, *args: Any, **kwargs: Any) -> Any:
        result = await self.col.update_one(*args, **kwargs)
        if self.intruder is None:
            other = {"$set": {"writer": "other", "n": 100}}
            self.intruder = asyncio.ensure_future(self.col.update_one({"_id": 1}, other))
            await asyncio.sleep(0.3)  # it lands now, or waits for our transaction to end
        return result


@pytest.mark.gen_test(timeout=30)
async def test_change_one_returns_its_own_state_under_a_concurrent_writer(db: Database) -> None:
    col = db["changed"]
    await col.insert_one({"_id": 1, "n": 0, "writer": None})
    spy = Intruded(col)
    mine = {"$set": {"writer": "me"}, "$inc": {"n": 1}}

    got = await change_one(spy, {"_id": 1}, mine)  # type: ignore[arg-type]

    assert spy.intruder is not None
    await spy.intruder
    assert got is not None and got["writer"] == "me"
    # our update landed first (1) or, retried after the intruder's, on top of it (101)
    assert got["n"] in (1, 101)
    final = await col.find_one({"_id": 1})
    assert final is not None
    assert (final["writer"], final["n"]) in (("other", 100), ("me", 101))
    assert (final["writer"] == "me") == (got["n"] == 101)


@pytest.mark.gen_test(timeout=30)
async def test_change_one_in_the_callers_transaction_and_upserted(db: Database) -> None:
    col = db["changed"]
    async with db.client.start_session() as session:

        async def work(s: Any) -> Any:
            return await change_one(col, {"_id": "c"}, {"$inc": {"seq": 1}}, upsert=True, session=s)

        assert (await session.with_transaction(work))["seq"] == 1
    assert (await change_one(col, {"_id": "c"}, {"$inc": {"seq": 1}}))["seq"] == 2  # type: ignore[index]
    assert await change_one(col, {"_id": "nobody"}, {"$inc": {"seq": 1}}) is None


busy = WorkOrderBusy  # any typed 409 will do


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("races", [1, 2])
async def test_read_decide_write_reads_again_after_a_lost_race(db: Database, races: int) -> None:
    col = db["decided"]
    await col.insert_one({"_id": 1, "version": 0, "stamps": []})
    reads = 0

    async def read() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        doc = await col.find_one({"_id": 1})
        assert doc is not None
        return doc

    async def decide_write(doc: dict[str, Any]) -> dict[str, Any]:
        if reads <= races:  # another writer gets there between our read and our write
            await col.update_one({"_id": 1}, {"$inc": {"version": 1}, "$push": {"stamps": "x"}})
        where = {"_id": 1, "version": doc["version"]}
        return won(
            await change_one(col, where, {"$inc": {"version": 1}, "$push": {"stamps": "me"}})
        )

    done = await read_decide_write(read, decide_write, busy)

    assert reads == races + 1
    assert done["stamps"] == ["x"] * races + ["me"]
    assert done["version"] == races + 1


@pytest.mark.gen_test(timeout=30)
async def test_read_decide_write_answers_409_after_every_race_lost(db: Database) -> None:
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        return reads

    async def decide_write(doc: int) -> int:
        raise LostRace

    with pytest.raises(Conflict) as refused:
        await read_decide_write(read, decide_write, busy, attempts=3)
    assert (refused.value.status, refused.value.code, reads) == (409, "workorder_busy", 3)


@pytest.mark.gen_test(timeout=30)
async def test_read_decide_write_passes_the_decisions_own_errors(db: Database) -> None:
    async def read() -> int:
        return 1

    async def decide_write(doc: int) -> int:
        raise WorkOrderClosed()

    with pytest.raises(Conflict) as refused:
        await read_decide_write(read, decide_write, busy)
    assert refused.value.code == "workorder_closed"
