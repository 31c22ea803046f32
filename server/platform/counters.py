"""Numbers counted from 1 without gaps or repeats (case numbers, work-order numbers): one
document per sequence in ``counters``, incremented in the caller's transaction, so that a
number taken by a transaction that aborts is given back with it.

Every transaction that takes a number of one sequence writes the same document, so two at
once conflict, and the loser's whole transaction is retried. In one process they queue
instead, and commit in groups (``server.platform.group_commit``): one transaction takes the
numbers of its whole group in one increment (``take`` with ``count``).
"""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.db import Database
from server.platform.mongo import change_one


class Counters:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.counters = db["counters"]

    async def take(self, key: str, session: AsyncClientSession, count: int = 1) -> int:
        """The first of the next ``count`` numbers of the sequence ``key`` (1 for a new one);
        the others follow it."""
        counter = await change_one(
            self.counters,
            {"_id": key},
            {"$inc": {"seq": count}},
            upsert=True,
            session=session,
        )
        assert counter is not None
        return int(counter["seq"]) - count + 1
