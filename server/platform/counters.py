"""Numbers counted from 1 without gaps or repeats (case numbers, work-order numbers): one
document per sequence in ``counters``, incremented in the caller's transaction, so that a
number taken by a transaction that aborts is given back with it."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.db import Database
from server.platform.mongo import change_one


class Counters:
    def __init__(self, db: Database) -> None:
        self.counters = db["counters"]

    async def take(self, key: str, session: AsyncClientSession) -> int:
        """The next number of the sequence ``key`` (1 for a new one)."""
        counter = await change_one(
            self.counters,
            {"_id": key},
            {"$inc": {"seq": 1}},
            upsert=True,
            session=session,
        )
        assert counter is not None
        return int(counter["seq"])
